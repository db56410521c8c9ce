"""Stage timings of one analysis against the reference way, cold CLI wall time and batch throughput.

Ours: the library's analysis (detector.pipeline.prepare + classify): T frames spread over the whole clip,
read with seek-or-grab (detector.video.read_frames); the default face detector (BlazeFace; `--detector
hog` for the previous one: dlib HOG on a 480-px copy); model in bf16 autocast where the CPU has it.
Reference way (the widely copied ResNeXt-LSTM app): the first T frames read in order, face_recognition
HOG at full resolution with its default upsample=1, model in fp32. Both classify the same number of
frames, so the model column compares precision, not work. Ratios are of medians taken in the same run
(interleaved), so a CPU shared with other jobs slows both sides alike; the absolute seconds are not
comparable across runs.

Then: the cold CLI (`python -m detector analyze CLIP`, a new process: imports, model load, analysis)
wall time, and the batch throughput of one CLI call on a folder of clips (clips per minute and seconds
of video per second of wall time).

Clips are generated here: a GRID test clip (CC BY 4.0, tests/fixtures/README.md) scaled up and placed on
a 1280x720 / 1920x1080 canvas, 10 s at 25 fps, written as mp4v and as H.264 (imageio-ffmpeg).

    python benchmarks/bench_analyze.py [--repeats 5] [--detector blazeface] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.faces import FaceConfig  # noqa: E402
from detector.machine import cpu_name  # noqa: E402
from detector.pipeline import DEFAULT_FRAMES, AnalysisConfig, Detector, classify, get_detector, prepare  # noqa: E402


def fixture_faces() -> list[np.ndarray]:
    """Every frame of the committed GRID test clip, BGR: the face the benchmark clips are made of."""
    src = cv2.VideoCapture(str(ROOT / "tests" / "fixtures" / "s4_bbae9n.mpg"))
    faces = []
    while True:
        ok, f = src.read()
        if not ok:
            break
        faces.append(f)
    src.release()
    return faces


def make_mp4v(path: Path, width: int, height: int, seconds: float = 10.0, fps: float = 25.0) -> Path:
    """The fixture's face scaled to 60 % of the height on a grey canvas, swaying left and right; mp4v."""
    faces = fixture_faces()
    scale = height * 0.6 / faces[0].shape[0]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(int(seconds * fps)):
        f = cv2.resize(faces[i % len(faces)], None, fx=scale, fy=scale)
        canvas = np.full((height, width, 3), 90, np.uint8)
        y, x = (height - f.shape[0]) // 2, (width - f.shape[1]) // 2 + int(40 * np.sin(i / 20))
        canvas[y:y + f.shape[0], x:x + f.shape[1]] = f
        vw.write(canvas)
    vw.release()
    return path


def make_clip(out: Path, width: int, height: int, seconds: float = 10.0, fps: float = 25.0) -> tuple[Path, Path]:
    mp4v = make_mp4v(out / f"clip_{width}x{height}_mp4v.mp4", width, height, seconds, fps)
    import imageio_ffmpeg

    h264 = out / f"clip_{width}x{height}_h264.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(mp4v), "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", "-crf", "23", str(h264)], check=True)
    return mp4v, h264


def ours(path: Path, t: int, det: Detector, detector: str) -> dict:
    cfg = AnalysisConfig(frames=t, faces=FaceConfig(detector=detector))
    t0 = time.perf_counter()
    prep = prepare(path, cfg)
    t2 = time.perf_counter()
    report = classify(prep, cfg, detector=det)
    t3 = time.perf_counter()
    # decode includes probe + sha256; faces = detection + tracking; model = crops + model + report.
    return {"decode": prep.timings["decode"], "faces": prep.timings["faces"], "model": t3 - t2,
            "total": t3 - t0, "tracks": len(report.faces)}


def reference(path: Path, t: int, det: Detector) -> dict:
    import face_recognition

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < t:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    t1 = time.perf_counter()
    crops = []
    for f in frames:
        locs = face_recognition.face_locations(f)  # full resolution, upsample=1 (its default)
        if locs:
            top, right, bottom, left = locs[0]
            crops.append(cv2.resize(f[top:bottom, left:right], (112, 112)))
    t2 = time.perf_counter()
    if crops:
        det.p_fake(det.features(np.stack(crops)))
    t3 = time.perf_counter()
    return {"decode": t1 - t0, "faces": t2 - t1, "model": t3 - t2, "total": t3 - t0, "tracks": int(bool(crops))}


def median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cold_cli(clip: Path, args: list[str]) -> tuple[float, float]:
    """Wall time of a fresh `python -m detector analyze` process, and its own reported analysis total."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "detector", "analyze", str(clip), "--json", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t
    import json

    return wall, json.loads(out)["timings_s"]["total"]


def startup(args: list[str]) -> float:
    """Seconds from process start until the analysis can begin (imports + argument parsing, no model)."""
    code = ("import time, sys; t = time.perf_counter(); from detector.cli import build_parser; "
            "import detector.pipeline, detector.faces, detector.video; "
            "build_parser(training=False).parse_args(['analyze', 'x.mp4', *sys.argv[1:]]); "
            "print(time.perf_counter() - t)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--frames", default=f"20,{DEFAULT_FRAMES}")  # the old default beside the product's
    ap.add_argument("--detector", default="blazeface")
    ap.add_argument("--batch", type=int, default=8, help="clips in the batch-throughput folder")
    a = ap.parse_args()
    base = get_detector()
    fast = Detector(base.model, base.spec, "auto")
    slow = Detector(base.model, base.spec, "fp32")
    tmp = Path(tempfile.mkdtemp())
    print(f"CPU {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"model {base.spec.display_name}, bf16 autocast: {fast.use_bf16}; face detector {a.detector}; "
          f"medians of {a.repeats} interleaved runs after warm-up")
    print(f"{'clip':<26}{'T':>4} | {'ours: decode faces model total':>34} | {'reference':>34} | total ratio")
    fmt = lambda d: f"{d['decode']:7.3f} {d['faces']:7.3f} {d['model']:7.3f} {d['total']:7.3f}"  # noqa: E731
    clips = []
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        clips += make_clip(tmp, w, h)
        for clip in clips[-2:]:
            for t in map(int, a.frames.split(",")):
                ours(clip, t, fast, a.detector)  # warm-up
                o, r = [], []
                for _ in range(a.repeats):  # interleaved: a load spike hits both sides
                    o.append(ours(clip, t, fast, a.detector))
                    r.append(reference(clip, t, slow))
                o, r = median(o), median(r)
                print(f"{clip.name:<26}{t:>4} | {fmt(o):>34} | {fmt(r):>34} | {r['total'] / o['total']:5.2f}x "
                      f"(faces {r['faces'] / o['faces']:.1f}x, decode {r['decode'] / o['decode']:.2f}x)", flush=True)

    big = clips[-1]  # the largest H.264 clip
    det_args = ["--detector", a.detector]
    starts = [startup(det_args) for _ in range(3)]
    colds = [cold_cli(big, det_args) for _ in range(3)]
    wall, total = statistics.median(c[0] for c in colds), statistics.median(c[1] for c in colds)
    print(f"cold CLI on {big.name}, T={DEFAULT_FRAMES} (the product's default; medians of 3): start-up before work "
          f"{statistics.median(starts):.2f} s (imports + parsing, a fresh process), wall {wall:.2f} s, of which "
          f"the analysis reported {total:.2f} s")

    folder = tmp / "batch"
    folder.mkdir()
    for i in range(a.batch):
        shutil.copy(clips[i % len(clips)], folder / f"{i:02d}_{clips[i % len(clips)].name}")
    seconds = a.batch * 10.0
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "detector", "analyze", str(folder), "--json", *det_args], cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, check=True)
    wall = time.perf_counter() - t
    print(f"batch: {a.batch} clips ({a.sizes}, mp4v/H.264, 10 s each), one CLI call, T={DEFAULT_FRAMES}: "
          f"wall {wall:.1f} s, {a.batch / wall * 60:.1f} clips/min, {seconds / wall:.1f}x real time (model loaded "
          "once; the next clip is read while the model runs)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
