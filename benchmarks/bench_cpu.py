"""Fast on the CPUs people have: the figures of issue 41 as ratios measured in one process.

On a 10-s 1080p mp4v clip written here with OpenCV (a GRID test clip, CC BY 4.0, scaled onto a 1920x1080
canvas, 25 fps; nothing committed), warm (model loaded, one warm-up run of each side), default frames (60):
- `decode`: the analysis's decode stage (probe + sha256 + the 60 sampled frames and their successors, cut down
  to their face crops and display copies as they are read, faces found meanwhile; `prepare`'s own timing)
  against reading every frame of the clip once with OpenCV (`cap.read()` to the end); beside it its reader alone
  (no face work) and the stop-38 read that kept frames and successors whole (no face work either); and the peak
  memory of the decode stage against that read's;
- `analysis`: `analyze_video` without explanations (the model pass as shipped: detector/lean.py), against the
  same read-every-frame time: the adaptive frame count (opt-in, `--adaptive`; this clip is decided on its first
  20 frames), the same with the rule made never to stop (what a clip it does not decide costs), every frame
  scored (the default), and for comparison that with PyTorch's Detector (the trunk on ONNX Runtime, as before
  detector/lean.py) and with its trunk on PyTorch too (engine "torch", the path before ONNX Runtime);
- `explain`: `analyze_video(explain=True)` against `analyze_video` (both adaptive=False, so the same 60 frames;
  Grad-CAM from the analysis pass's own activations, explain/gradcam.py "cached");
- `cold`: a fresh `deepfake-forensics analyze CLIP` process (60 frames, no explanations: imports, model load,
  analysis) as shipped, where the model pass runs without PyTorch (detector/lean.py), against the same command
  made to load PyTorch's Detector (`runtime.get_detector`), as every cold analysis did before;
- `app` (`--app`): the app's API answer with explanations (its Blocks launched in this process on a local port,
  gradio_client, every returned file fetched over one connection as a browser does, warm; and with
  gradio_client's own downloads, a fresh HTTP client per file) against `analyze_video(..., explain=True)` on
  the same clip with the app's settings (60 frames, BlazeFace).
Runs are interleaved (A, B, A, B, ...) and medians of `--repeats` taken, so a CPU shared with other jobs slows
both sides alike; absolute seconds are not comparable across runs, the ratios are what is reported.

    python benchmarks/bench_cpu.py [--repeats 5] [--app] [--only decode,analysis,explain,cold]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector import adaptive  # noqa: E402
from detector.faces import FaceConfig  # noqa: E402
from detector.machine import cpu_name  # noqa: E402
from detector.pipeline import AnalysisConfig, analyze_video, get_detector  # noqa: E402


def make_clip(path: Path, width: int = 1920, height: int = 1080, seconds: float = 10.0, fps: float = 25.0) -> Path:
    """A GRID test clip's face scaled to 60 % of the height on a grey canvas, swaying; mp4v."""
    from bench_analyze import make_mp4v  # a sibling script: benchmarks/ is sys.path[0] when run

    return make_mp4v(path, width, height, seconds, fps)


def read_every_frame(path: Path) -> float:
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    while cap.read()[0]:
        pass
    cap.release()
    return time.perf_counter() - t


def decode_stage(clip: Path) -> float:
    """What `prepare` times as "decode": probe, sha256, the 60 sampled frames and their successors, decoded into
    two rings of reused buffers and each cut down to its face crops (and the frame to a display copy) on a second
    thread that finds the faces (detector/streamed.py)."""
    from detector.pipeline import prepare

    return prepare(clip, AnalysisConfig(adaptive=False), partners=True, first=False).timings["decode"]


class _Drop:
    """A frame and successor sink that gives every buffer straight back: the reader alone, no face work."""

    def __init__(self) -> None:
        from detector.streamed import BufferRing

        self.frames, self.succ = BufferRing(), BufferRing()

    def frame_buffer(self, shape):
        return self.frames.buffer(shape)

    def successor_buffer(self, shape):
        return self.succ.buffer(shape)

    def put_frame(self, idx, rgb):
        self.frames.give_back(rgb)

    def put_successor(self, idx, bgr, decoded):
        self.succ.give_back(bgr)


def reader_alone(clip: Path) -> float:
    """The decode stage's reader without the faces: probe, sha256, the 60 frames and successors through the rings."""
    from detector.hashing import sha256_file
    from detector.video import probe, sample_indices, stream_frames

    t = time.perf_counter()
    info = probe(clip)
    sha256_file(clip)
    sink = _Drop()
    stream_frames(clip, sample_indices(info.frame_count, 60), info, frames=sink, successors=sink)
    return time.perf_counter() - t


def whole_successors(clip: Path) -> float:
    """The decode stage of stop 38: the same frames kept whole, the 60 successors too, in a second array (BGR);
    no face detection."""
    from detector.hashing import sha256_file
    from detector.video import probe, read_frame_pairs, sample_indices

    t = time.perf_counter()
    info = probe(clip)
    sha256_file(clip)
    read_frame_pairs(clip, sample_indices(info.frame_count, 60), info, partner_order="BGR")
    return time.perf_counter() - t


def previous_read(clip: Path) -> float:
    """The read before issue 41, re-enacted: every wanted frame (sampled + successors) retrieved into its own
    array and converted to RGB, stacked, then copied into separate frames and partners arrays."""
    from detector.hashing import sha256_file
    from detector.video import probe, read_frames, sample_indices

    t = time.perf_counter()
    info = probe(clip)
    sha256_file(clip)
    idx = sample_indices(info.frame_count, 60)
    want = sorted(set(idx) | {i + 1 for i in idx if i + 1 < info.frame_count})
    imgs, got = read_frames(clip, want, info)
    pos = {g: k for k, g in enumerate(got)}
    frames = np.stack([imgs[pos[i]] for i in idx])
    partners = np.stack([imgs[pos.get(i + 1, pos[i])] for i in idx])
    del frames, partners
    return time.perf_counter() - t


def peak_mb(fn: Callable[[], object]) -> float:
    """Peak memory traced while `fn` runs (Python and numpy allocations; not ONNX Runtime's or torch's own)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def cold_cli(clip: Path, torch_detector: bool) -> float:
    """Wall time of a fresh CLI process analysing `clip` (see the module docstring's `cold`)."""
    before = ("import detector.pipeline as p; "
              "p.get_model = lambda w, pr, e, explain=True: p.get_detector(w, pr, e); ")
    code = ("import sys; " + (before if torch_detector else "")
            + "from detector.cli import main; raise SystemExit(main(sys.argv[1:]))")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, "analyze", str(clip), "--json"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    return time.perf_counter() - t


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Medians of `repeats` rounds, each running every side once (after one warm-up round)."""
    for f in sides.values():
        f()
    runs: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for k, f in sides.items():
            runs[k].append(f())
    return {k: statistics.median(v) for k, v in runs.items()}


def show(title: str, med: dict[str, float], base: str) -> None:
    print(title)
    for k, v in med.items():
        print(f"  {k:<38} {v:7.2f} s  {v / med[base]:5.2f}x {base}", flush=True)


def app_answer(url: str, clip: Path, downloads: Path, per_file_clients: bool = False) -> float:
    """One API call with explanations and every returned file fetched (what a client receives), in seconds.

    Default: the answer's file URLs fetched over one kept-alive HTTP connection, as a browser does.
    per_file_clients: gradio_client's own `download_files`, which opens a new httpx client (and TLS context,
    ~0.1 s on this CPU) for every file, so its figure grows with the number of files whatever the server does.
    """
    import httpx
    from gradio_client import Client, handle_file

    if per_file_clients:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))
        t = time.perf_counter()
        client.predict(handle_file(str(clip)), None, 60, "BlazeFace", True, api_name="/analyze")
        return time.perf_counter() - t
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    t = time.perf_counter()
    result = client.predict(handle_file(str(clip)), None, 60, "BlazeFace", True, api_name="/analyze")
    with httpx.Client() as http:
        for file_url in _urls(result):
            http.get(file_url).raise_for_status()
    return time.perf_counter() - t


def _urls(value: object) -> list[str]:
    """Every file URL in an API answer (FileData dicts, nested in gallery and video values)."""
    if isinstance(value, dict):
        own = [value["url"]] if isinstance(value.get("url"), str) else []
        return own + [u for v in value.values() for u in _urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in _urls(v)]
    return []


def launch_app() -> tuple[object, str]:
    """The app's Blocks launched in this process on a free local port (as tests/test_app.py does): the model it
    loads is this process's `get_detector()`, so both sides run the same warm model."""
    import socket

    import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return app.demo, f"http://127.0.0.1:{port}/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="decode,analysis,explain,cold")
    ap.add_argument("--app", action="store_true", help="also the launched app's API against analyze_video")
    a = ap.parse_args()
    parts = set(a.only.split(",")) | ({"app"} if a.app else set())
    tmp = Path(tempfile.mkdtemp(prefix="bench_cpu_"))
    clip = make_clip(tmp / "clip_1920x1080_mp4v.mp4")
    det = get_detector()
    det_torch = get_detector(engine="torch")
    print(f"CPU {cpu_name()}, {os.cpu_count()} cores, precision {det.model_info()['precision']}, engine "
          f"{det.engine}; "
          f"load average {os.getloadavg()[0]:.1f} at start (a machine shared with other jobs); clip "
          f"{clip.name}, 250 frames, {clip.stat().st_size / 2**20:.1f} MiB; medians of {a.repeats} interleaved runs")
    cfg = AnalysisConfig(faces=FaceConfig(detector="blazeface"), adaptive=True)
    full = AnalysisConfig(adaptive=False)

    stages: dict[str, list[dict[str, float]]] = {}
    decided: list[int] = []

    def run(config: AnalysisConfig, d=None, undecided: bool = False) -> float:
        """One analysis; undecided: the adaptive rule made to never stop, as for a clip it does not decide."""
        shipped = adaptive.RULE
        if undecided:
            adaptive.RULE = dataclasses.replace(shipped, distance=float("inf"))
        try:
            t = time.perf_counter()
            r = analyze_video(clip, config, detector=d)
            took = time.perf_counter() - t
        finally:
            adaptive.RULE = shipped
        engine = r.model["engine"] + ("" if "torch" in r.software else " without torch")
        key = (f"frames {config.frames}, adaptive {config.adaptive}{' (undecided)' if undecided else ''}, "
               f"explain {config.explain}, {engine}")
        stages.setdefault(key, []).append(r.timings_s)
        if config.adaptive and not undecided:
            decided.append(r.sampling["decided_at"])
        return took

    if "decode" in parts:
        med = interleaved({"read every frame once (cap.read)": lambda: read_every_frame(clip),
                           "decode stage (60 frames + successors)": lambda: decode_stage(clip),
                           "  its reader alone (no faces)": lambda: reader_alone(clip),
                           "frames kept whole (stop 38)": lambda: whole_successors(clip),
                           "previous read (list, stack, RGB partners)": lambda: previous_read(clip)}, a.repeats)
        show("decode stage against reading every frame once:", med, "read every frame once (cap.read)")
        peaks = {"frames kept whole (stop 38)": peak_mb(lambda: whole_successors(clip)),
                 "decode stage (60 frames + successors)": peak_mb(lambda: decode_stage(clip))}
        base = peaks["frames kept whole (stop 38)"]
        print("peak memory of the decode stage (tracemalloc, numpy's arrays included):")
        for k, v in peaks.items():
            print(f"  {k:<38} {v:7.0f} MB  {v / base:5.2f}x frames kept whole (stop 38)")
    if "analysis" in parts:
        med = interleaved({"read every frame once (cap.read)": lambda: read_every_frame(clip),
                           "analysis, adaptive (opt-in)": lambda: run(cfg),
                           "  the same, a clip it does not decide": lambda: run(cfg, undecided=True),
                           "analysis, every frame (the default)": lambda: run(full),
                           "  the same, PyTorch's Detector": lambda: run(full, det),
                           "  the same, its trunk on PyTorch too": lambda: run(full, det_torch)},
                          a.repeats)
        show("whole analysis (no explanations) against reading every frame once:", med,
             "read every frame once (cap.read)")
        print(f"  (the adaptive rule decided this clip at {sorted(set(decided))} frames)")
    if "explain" in parts:
        ex = AnalysisConfig(adaptive=False, explain=True)
        med = interleaved({"analysis, 60 frames": lambda: run(full),
                           "analysis + explanations, 60 frames": lambda: run(ex)}, a.repeats)
        show("explanations' price:", med, "analysis, 60 frames")
    if "cold" in parts:
        med = interleaved({"cold CLI, PyTorch's Detector (before)": lambda: cold_cli(clip, True),
                           "cold CLI as shipped (no torch)": lambda: cold_cli(clip, False)}, a.repeats)
        show("a cold `deepfake-forensics analyze` (60 frames, no explanations), wall:", med,
             "cold CLI, PyTorch's Detector (before)")
    if "app" in parts:
        demo, url = launch_app()
        try:
            ex = AnalysisConfig(explain=True)  # the app's defaults: 60 frames, BlazeFace, explanations
            med = interleaved({"analyze_video(explain=True)": lambda: run(ex),
                               "app API answer with explanations": lambda: app_answer(url, clip, tmp / "dl"),
                               "  the same, gradio_client downloading": lambda: app_answer(url, clip, tmp / "dl",
                                                                                           True)},
                              a.repeats)
            show("the app's answer against the library's:", med, "analyze_video(explain=True)")
        finally:
            demo.close()
    # Stage medians (the report's own timings_s): on a VM that hands freed memory back to its host, the decode
    # right after another analysis pays 0.5-2 s of kernel time (page faults), which the totals above include.
    print("stage medians (s) of every analysis run above:")
    for key, runs in stages.items():
        med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
        print(f"  {key}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
