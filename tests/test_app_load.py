"""The app under load: work folders removed once a response is served, queue settings from the environment.

(Peak memory and latency under 8 concurrent requests are measured by benchmarks/bench_load.py.)
"""

from __future__ import annotations

import functools
import json
import socket
import tempfile
from pathlib import Path

import gradio as gr
import pytest

import app

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "examples").glob("*.mp4"))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """mkdtemp makes its folders under tmp_path/work (inside the system temp dir, where Gradio may read)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "mkdtemp", functools.partial(tempfile.mkdtemp, dir=str(work)))
    return work


def test_work_folder_lives_until_the_response_is_taken(private_tmp, monkeypatch):
    def fake_steps(video, image, frames, face_detector, explain, progress=None, out_dir=None):
        yield ("verdict first", None)  # the verdict before the explanations: no files yet
        p = Path(out_dir) / "x.report.json"
        p.write_text("{}")
        yield ("label", str(p))

    monkeypatch.setattr(app, "analyze_steps", fake_steps)
    gen = app.serve_analyze("clip.mp4", None, 10, "HOG", True)
    assert next(gen) == ("verdict first", None)
    _label, path = next(gen)
    # Gradio copies the files while the generator is suspended here: they must still exist.
    assert Path(path).is_file()
    with pytest.raises(StopIteration):
        next(gen)  # Gradio asks for the next value after post-processing: the folder goes
    assert not any(private_tmp.iterdir())


def test_work_folder_removed_on_error(private_tmp, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 20)
    with pytest.raises(gr.Error):
        next(app.serve_analyze(str(bad), None, 10, "HOG", False))
    assert not any(private_tmp.iterdir())


def test_queue_settings_from_environment(monkeypatch):
    monkeypatch.setenv("DEEPFAKE_FORENSICS_QUEUE_SIZE", "3")
    assert app._env_int("DEEPFAKE_FORENSICS_QUEUE_SIZE", 16) == 3
    monkeypatch.setenv("DEEPFAKE_FORENSICS_QUEUE_SIZE", "lots")
    with pytest.raises(SystemExit, match="DEEPFAKE_FORENSICS_QUEUE_SIZE must be a whole number >= 1, not 'lots'"):
        app._env_int("DEEPFAKE_FORENSICS_QUEUE_SIZE", 16)
    monkeypatch.delenv("DEEPFAKE_FORENSICS_QUEUE_SIZE")
    assert app._env_int("DEEPFAKE_FORENSICS_QUEUE_SIZE", 16) == 16
    assert app.demo.delete_cache == (max(60, app.CACHE_MAX_AGE_S // 4), app.CACHE_MAX_AGE_S)


@pytest.mark.slow
def test_served_request_leaves_no_work_folder(private_tmp):
    """Through the real server: the client gets readable files, and our work folder is gone afterwards."""
    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(handle_file(str(EXAMPLES[0])), None, 10, "HOG", False, api_name="/analyze")
        assert json.loads(Path(result[7]).read_text())["schema_version"] == 1
    finally:
        app.demo.close()
    assert not [p for p in private_tmp.iterdir() if p.name.startswith("dff_")]
