"""The CLI's analyze path: batch order and errors with the overlapped reading/model, and a light start-up."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detector.cli import EXIT_INPUT, main
from detector.model import build_model
from detector.weights import save_weights

ROOT = Path(__file__).resolve().parent.parent


def test_batch_keeps_order_and_reports_bad_files(tmp_path, tiny_spec, face_clip, no_face_clip, text_as_mp4, capsys):
    weights = tmp_path / "w.safetensors"
    save_weights(build_model(tiny_spec), tiny_spec, weights)
    folder = tmp_path / "clips"
    folder.mkdir()
    for i, clip in enumerate([face_clip, text_as_mp4, no_face_clip]):
        shutil.copy(clip, folder / f"{i}_{clip.name}")
    code = main(["analyze", str(folder), "--json", "--frames", "6", "--weights", str(weights)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == EXIT_INPUT  # one bad file; the others are still analysed, in folder order
    assert [x["file"]["name"] for x in lines] == ["0_s4_bbae9n.mpg", "1_notes.mp4", "2_no_face.mp4"]
    assert lines[0]["verdict"] in ("REAL", "FAKE") and "error" in lines[1] and lines[2]["verdict"] == "NO_FACE"


def test_import_and_analyze_parsing_do_not_load_torch():
    code = ("import sys; import detector, detector.faces, detector.video; from detector.cli import build_parser; "
            "build_parser(training=False).parse_args(['analyze', 'x.mp4']); "
            "print(sorted(m for m in ('torch', 'torchvision', 'gradio', 'pytorch_grad_cam', 'face_recognition') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_adaptive_flag_reaches_the_analysis(face_clip, capsys):
    """`analyze --adaptive` scores the first read (the CLI's prepare + classify path, not only analyze_video):
    the report carries the rule's block, whichever way it decided."""
    code = main(["analyze", str(face_clip), "--json", "--no-provenance", "--adaptive"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["sampling"]["adaptive"]["first"] == 20
    assert r["sampling"]["decided_at"] in (20, 60)


@pytest.mark.parametrize("flag", [[], ["--no-adaptive"]])
def test_every_frame_is_scored_by_default(face_clip, capsys, flag):
    code = main(["analyze", str(face_clip), "--json", "--no-provenance", *flag])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and "adaptive" not in r["sampling"] and r["sampling"]["used"] == 60
