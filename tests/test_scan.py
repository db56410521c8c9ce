"""`deepfake-forensics scan`: resumable JSONL on Ray, error lines for bad files, the HTML index.

The end-to-end test starts a local Ray with 2 workers (45 s to 3.5 min on 2 shared cores: Ray's start-up and
two model loads dominate), so it is marked slow; the bookkeeping it relies on is tested without Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from detector.render.index import render_index, sort_key
from detector.scan import ScanOptions, error_row, plan, read_rows, row_key

ROOT = Path(__file__).resolve().parent.parent


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- without Ray
def test_read_rows_ignores_a_line_cut_by_a_kill(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"file": {"sha256": "a" * 64}, "verdict": "REAL"}) + "\n" + '{"file": {"sha')
    rows, cut = read_rows(out)
    assert len(rows) == 1 and cut
    assert row_key(rows[0]) == "sha256:" + "a" * 64


def test_plan_skips_done_and_repeated_content(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.mp4", "b.mp4", "c.mp4"))
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    c.write_bytes(b"one")  # same bytes as a.mp4: analysed once
    missing = tmp_path / "gone.mp4"
    done = {row_key({"file": {"sha256": __import__("hashlib").sha256(b"two").hexdigest()}})}
    todo, errors, skipped = plan([a, b, c, missing], done)
    assert [p.name for p, _ in todo] == ["a.mp4"]
    assert skipped == 2 and len(errors) == 1
    assert errors[0]["file"]["path"] == str(missing) and "cannot read" in errors[0]["error"]
    # The unreadable file is now done too (by path): a second plan adds nothing.
    todo2, errors2, skipped2 = plan([a, b, c, missing], done)
    assert not todo2 and not errors2 and skipped2 == 4


def test_error_row_names_the_file(tmp_path):
    f = tmp_path / "bad.mp4"
    f.write_bytes(b"x" * 10)
    row = error_row(f, ValueError("broken\nsecond line"), "ab" * 32)
    assert row["file"] == {"name": "bad.mp4", "path": str(f), "sha256": "ab" * 32, "bytes": 10}
    assert row["error"] == "broken" and row["error_type"] == "ValueError"


def test_index_sorted_by_p_fake_with_links():
    rows = [{"verdict": "REAL", "p_fake": 0.2, "file": {"name": "low.mp4", "sha256": "1" * 64}, "faces": [{}]},
            {"error": "not a video", "file": {"name": "bad.mp4"}},
            {"verdict": "NO_FACE", "p_fake": None, "file": {"name": "empty.mp4"}, "faces": []},
            {"verdict": "FAKE", "p_fake": 0.9, "file": {"name": "high.mp4", "sha256": "2" * 64}, "faces": [{}]}]
    assert [sort_key(r)[0] for r in rows] == [0, 2, 1, 0]
    page = render_index(rows, {3: ("r/high.html", "r/high.jpg"), 0: ("r/low.html", None)})
    order = [page.index(n) for n in ("high.mp4", "low.mp4", "empty.mp4", "bad.mp4")]
    assert order == sorted(order)
    assert "href='r/high.html'><img src='r/high.jpg'" in page and "not a video" in page


def test_scan_options_refuse_nonsense(tmp_path):
    from detector.errors import InputError

    with pytest.raises(InputError):
        ScanOptions(out=tmp_path / "r.jsonl", workers=0)
    assert ScanOptions(out=tmp_path / "r.jsonl").index_path == tmp_path / "r.html"


def test_analyze_cli_does_not_import_ray():
    code = ("import sys; from detector.cli import build_parser; build_parser(); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def _join_with(monkeypatch, tmp_path, error: BaseException) -> str:
    """The message `scan --ray ADDRESS` gives when Ray's own `ray.init` raises `error` (no cluster needed)."""
    import io

    import ray

    from detector.errors import ForensicsError
    from detector.scan import _start_ray

    def refuse(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ForensicsError) as caught:
        _start_ray(ScanOptions(out=tmp_path / "scan.jsonl", ray="10.1.2.3:6379"), io.StringIO())
    return str(caught.value)


def test_a_refused_token_is_named_not_a_missing_head(monkeypatch, tmp_path):
    """Ray 2.60 with ~/.ray/auth_token on the head refuses a node without the token: say that, not `ray start`."""
    from ray.exceptions import AuthenticationError

    reason = "InvalidAuthToken: the token presented does not match the cluster's"
    message = _join_with(monkeypatch, tmp_path, AuthenticationError(reason))
    assert "10.1.2.3:6379" in message and "AuthenticationError" in message and "InvalidAuthToken" in message
    assert "auth_token" in message and "RAY_AUTH_TOKEN" in message
    assert "ray start --head" not in message


def test_an_unreachable_head_keeps_rays_reason(monkeypatch, tmp_path):
    message = _join_with(monkeypatch, tmp_path, ConnectionError("Could not find any running Ray instance.\nmore"))
    assert "ConnectionError: Could not find any running Ray instance." in message and "more" not in message
    assert "ray start --head" in message
    other = _join_with(monkeypatch, tmp_path, RuntimeError("Version mismatch: the cluster runs Ray 2.9"))
    assert "RuntimeError: Version mismatch: the cluster runs Ray 2.9" in other and "ray start" not in other


# ---------------------------------------------------------------- on a local Ray
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_spec):
    """Untrained small weights (resnet18 trunk): the scan's bookkeeping does not need a good model."""
    from detector.model import build_model
    from detector.weights import save_weights

    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(build_model(tiny_spec), tiny_spec, path)
    return path


@pytest.mark.slow
def test_scan_on_local_ray_is_resumable(tmp_path, face_clip, no_face_clip, text_as_mp4, tiny_weights, capsys):
    from detector.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "face.mpg").write_bytes(face_clip.read_bytes())
    (folder / "no_face.mp4").write_bytes(no_face_clip.read_bytes())
    (folder / "broken.mp4").write_bytes(text_as_mp4.read_bytes())
    out = tmp_path / "out" / "results.jsonl"
    args = ["scan", str(folder), "--out", str(out), "--ray", "local", "--workers", "2", "--frames", "6",
            "--weights", str(tiny_weights)]

    assert main(args) == 2  # one file failed
    captured = capsys.readouterr()
    assert "running on Ray" in captured.err and "2 CPUs" in captured.err
    rows = _rows(out)
    by_name = {r["file"]["name"]: r for r in rows}
    assert sorted(by_name) == ["broken.mp4", "face.mpg", "no_face.mp4"]
    assert "error" in by_name["broken.mp4"] and len(by_name["broken.mp4"]["file"]["sha256"]) == 64
    assert by_name["face.mpg"]["verdict"] in ("REAL", "FAKE") and by_name["face.mpg"]["schema_version"] == 1
    assert by_name["no_face.mp4"]["verdict"] == "NO_FACE"
    assert by_name["face.mpg"]["file"]["path"] == str(folder / "face.mpg")
    index = out.with_suffix(".html").read_text()
    assert index.count("results_reports/") >= 3  # two report links + a thumbnail for the face clip
    assert len(list((out.parent / "results_reports").glob("*.html"))) == 2
    assert "throughput" in captured.out and "× real time" in captured.out

    # A second run finds every file done: no Ray, no new line.
    before = out.read_bytes()
    assert main(args) == 0
    assert out.read_bytes() == before
    assert "nothing to analyse" in capsys.readouterr().err
