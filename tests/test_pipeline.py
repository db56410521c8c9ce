import json
import subprocess
import sys

import pytest

from detector.errors import NotAVideoError
from detector.model import build_model
from detector.pipeline import AnalysisConfig, Detector, analyze_video

REQUIRED = {
    "schema_version": None, "file": {"name", "bytes", "sha256"},
    "video": {"width", "height", "fps", "frame_count", "duration_s"},
    "model": {"name", "architecture", "sequence_length", "weights_sha256", "trained_on"},
    "verdict": None, "p_fake": None, "threshold": None, "faces": None,
    "timings_s": {"decode", "faces", "model", "total"},
}


@pytest.fixture(scope="module")
def tiny_detector(tiny_spec):
    import dataclasses

    spec = dataclasses.replace(tiny_spec, weights_sha256="f" * 64)
    return Detector(build_model(spec), spec, precision="fp32")


def check_schema(d: dict) -> None:
    for key, sub in REQUIRED.items():
        assert key in d, key
        if sub:
            assert sub <= set(d[key]), (key, sub - set(d[key]))
    assert d["schema_version"] == 1
    for f in d["faces"]:
        assert {"track_id", "p_fake", "frame_indices", "boxes"} <= set(f)
        assert len(f["frame_indices"]) == len(f["boxes"])
        assert 0.0 <= f["p_fake"] <= 1.0


def test_one_face(face_clip, tiny_detector):
    r = analyze_video(face_clip, AnalysisConfig(frames=10), detector=tiny_detector)
    d = json.loads(r.to_json())
    check_schema(d)
    assert len(d["faces"]) == 1 and d["verdict"] in ("REAL", "FAKE")
    assert d["faces"][0]["frame_indices"] == d["sampling"]["indices"]
    assert d["p_fake"] == d["faces"][0]["p_fake"]
    assert r.faces[0].crops.shape == (10, 112, 112, 3)
    assert "UNTRAINED" not in " ".join(r.warnings) or not tiny_detector.spec.trained


def test_two_people_two_tracks(two_people_clip, tiny_detector):
    r = analyze_video(two_people_clip, AnalysisConfig(frames=10), detector=tiny_detector)
    assert len(r.faces) == 2
    left, right = sorted(r.faces, key=lambda f: f.boxes[0][0])
    assert left.boxes[0][2] <= 400 and right.boxes[0][0] >= 320  # one speaker per half of the 720-px frame
    # Verdict rule: FAKE iff any face reaches the threshold.
    assert r.p_fake == max(f.p_fake for f in r.faces)
    assert (r.verdict == "FAKE") == (r.p_fake >= r.threshold)


def test_no_face(no_face_clip, tiny_detector):
    r = analyze_video(no_face_clip, AnalysisConfig(frames=10), detector=tiny_detector)
    assert r.verdict == "NO_FACE" and r.p_fake is None and r.faces == []
    assert any("no face found" in w for w in r.warnings)


def test_short_clip_says_so(tmp_path, face_clip, tiny_detector):
    r = analyze_video(face_clip, AnalysisConfig(frames=100), detector=tiny_detector)
    assert r.sampling["used"] == 75 and any("only 75 frames" in w for w in r.warnings)


def test_image_input(tmp_path, face_clip, tiny_detector):
    import cv2

    from detector.video import read_frames

    frames, _ = read_frames(face_clip, [5])
    p = tmp_path / "face.png"
    cv2.imwrite(str(p), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    r = analyze_video(p, AnalysisConfig(), detector=tiny_detector)
    assert len(r.faces) == 1 and r.faces[0].frame_indices == [0] and r.video["frame_count"] == 1


def test_bad_input_is_typed(text_as_mp4, tiny_detector):
    with pytest.raises(NotAVideoError):
        analyze_video(text_as_mp4, detector=tiny_detector)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "detector", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_json_with_bundled_weights(face_clip, tmp_path):
    p = _cli("analyze", face_clip, "--json", "--frames", "10", "--out", tmp_path)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    check_schema(d)
    assert d["model"]["weights_sha256"] and d["file"]["sha256"]
    assert len(list((tmp_path / "crops").glob("face0_*.png"))) == 10
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == d["verdict"]


def test_cli_text_as_mp4_exits_2_with_one_line(text_as_mp4):
    p = _cli("analyze", text_as_mp4)
    assert p.returncode == 2
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "not a video" in lines[0] and "Traceback" not in p.stderr


def test_cli_batch_one_line_per_file(face_clip, no_face_clip, text_as_mp4):
    p = _cli("analyze", face_clip, no_face_clip, text_as_mp4, "--json", "--frames", "6")
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 3
    rows = [json.loads(x) for x in lines]
    assert rows[1]["verdict"] == "NO_FACE" and "error" in rows[2]
    assert p.returncode == 2  # one input was bad


def test_cli_summary(face_clip):
    p = _cli("analyze", face_clip, "--frames", "6")
    assert p.returncode == 0 and "face 0" in p.stdout and "model:" in p.stdout


def test_next_pairing_model_gets_each_frames_successor(face_clip, tiny_spec):
    """A model whose stream pairs "next" frames is given every sampled frame's successor, cropped with the
    same box; its verdict and its explanations are computed on those pairs, and a "sampled" model reads none."""
    import dataclasses

    import numpy as np
    import torch

    from explain.gradcam import gradcam

    torch.manual_seed(0)
    spec = dataclasses.replace(tiny_spec, residual_width=2, residual_pairs="next", weights_sha256="e" * 64)
    det = Detector(build_model(spec), spec, precision="fp32")
    r = analyze_video(face_clip, AnalysisConfig(frames=6, explain=True), detector=det)
    face = r.faces[0]
    assert face.partners is not None and face.partners.shape == face.crops.shape
    # the partners are the crops of frame i + 1 in the same boxes: GRID's next frame differs, a little
    diff = np.abs(face.partners.astype(float) - face.crops.astype(float)).mean(axis=(1, 2, 3))
    assert (diff > 0).all() and (diff < 20).all()
    m = det.margin(det.features(face.crops, face.partners))
    assert m == pytest.approx(face.margin, abs=1e-5)
    assert det.margin(det.features(face.crops)) != pytest.approx(face.margin, abs=1e-4)  # stream at 0
    cam = gradcam(det.model, face.crops, partners=face.partners)
    assert cam.logits[1] - cam.logits[0] == pytest.approx(face.margin, abs=1e-3)
    assert r.model["residual_pairs"] == "next"
    sampled = analyze_video(face_clip, AnalysisConfig(frames=6),
                            detector=Detector(build_model(tiny_spec), tiny_spec, precision="fp32"))
    assert sampled.faces[0].partners is None
