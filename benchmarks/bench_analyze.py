"""Stage timings of one analysis against the reference way, measured in the same process.

Ours: T frames spread over the whole clip, read with seek-or-grab (detector.video.read_frames);
HOG on a copy downscaled to a 480-px long side (upsample 1), boxes mapped back; model in bf16 autocast
where the CPU has it. Reference way (the widely copied ResNeXt-LSTM app): the first T frames read in
order, face_recognition HOG at full resolution with its default upsample=1, model in fp32.
Both classify the same number of frames, so the model column compares precision, not work.

Clips are generated here: a GRID test clip (CC BY 4.0, tests/fixtures/README.md) scaled up and placed on
a 1280x720 / 1920x1080 canvas, 10 s at 25 fps, written as mp4v and as H.264 (imageio-ffmpeg).

    python benchmarks/bench_analyze.py [--repeats 3]
"""

from __future__ import annotations

import argparse
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

from detector.faces import FaceConfig, find_face_tracks, track_crops  # noqa: E402
from detector.pipeline import Detector, get_detector  # noqa: E402
from detector.video import probe, read_frames, sample_indices  # noqa: E402


def make_clip(out: Path, width: int, height: int, seconds: float = 10.0, fps: float = 25.0) -> tuple[Path, Path]:
    src = cv2.VideoCapture(str(ROOT / "tests" / "fixtures" / "s4_bbae9n.mpg"))
    faces = []
    while True:
        ok, f = src.read()
        if not ok:
            break
        faces.append(f)
    scale = height * 0.6 / faces[0].shape[0]
    mp4v = out / f"clip_{width}x{height}_mp4v.mp4"
    vw = cv2.VideoWriter(str(mp4v), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(int(seconds * fps)):
        f = cv2.resize(faces[i % len(faces)], None, fx=scale, fy=scale)
        canvas = np.full((height, width, 3), 90, np.uint8)
        y, x = (height - f.shape[0]) // 2, (width - f.shape[1]) // 2 + int(40 * np.sin(i / 20))
        canvas[y:y + f.shape[0], x:x + f.shape[1]] = f
        vw.write(canvas)
    vw.release()
    import imageio_ffmpeg

    h264 = out / f"clip_{width}x{height}_h264.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(mp4v), "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", "-crf", "23", str(h264)], check=True)
    return mp4v, h264


def ours(path: Path, t: int, det: Detector) -> dict:
    t0 = time.perf_counter()
    info = probe(path)
    frames, _ = read_frames(path, sample_indices(info.frame_count, t), info)
    t1 = time.perf_counter()
    cfg = FaceConfig()
    tracks = find_face_tracks(frames, cfg)
    t2 = time.perf_counter()
    for tr in tracks:
        det.p_fake(det.features(track_crops(frames, tr, cfg)))
    t3 = time.perf_counter()
    return {"decode": t1 - t0, "faces": t2 - t1, "model": t3 - t2, "total": t3 - t0, "tracks": len(tracks)}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--frames", default="20,40")
    a = ap.parse_args()
    base = get_detector()
    fast = Detector(base.model, base.spec, "auto")
    slow = Detector(base.model, base.spec, "fp32")
    tmp = Path(tempfile.mkdtemp())
    print(f"model {base.spec.display_name}, bf16 autocast: {fast.use_bf16}; medians of {a.repeats} runs after warm-up")
    print(f"{'clip':<26}{'T':>4} | {'ours: decode faces model total':>34} | {'reference':>34} | total ratio")
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        for clip in make_clip(tmp, w, h):
            for t in map(int, a.frames.split(",")):
                ours(clip, t, fast)  # warm-up
                o = median([ours(clip, t, fast) for _ in range(a.repeats)])
                r = median([reference(clip, t, slow) for _ in range(a.repeats)])
                fmt = lambda d: f"{d['decode']:7.3f} {d['faces']:7.3f} {d['model']:7.3f} {d['total']:7.3f}"  # noqa: E731
                print(f"{clip.name:<26}{t:>4} | {fmt(o):>34} | {fmt(r):>34} | {r['total'] / o['total']:5.2f}x "
                      f"(faces {r['faces'] / o['faces']:.1f}x, decode {r['decode'] / o['decode']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
