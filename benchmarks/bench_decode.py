"""Reading the T sampled frames of a clip: the library's seek-or-grab against other strategies, and PyAV.

Strategies, on the same generated clips as bench_analyze (720p / 1080p, mp4v / H.264, 10 s at 25 fps;
T = 20 and 40 indices spread over the whole clip, as the analysis samples them):
- `ours`: detector.video.read_frames (grab through short gaps, seek across long ones; per codec);
- `seek`: OpenCV, a seek before every wanted frame;
- `grab`: OpenCV, grab() through every frame, retrieve() only the wanted ones;
- `pairs`: detector.video.read_frame_pairs, the same frames plus each one's successor (what a model whose
  stream pairs "next" frames, the default, needs): its ratio is the price of the successors;
- `pyav`: PyAV (`pip install av`, optional), decode in order with FFmpeg's frame+slice threads,
  convert only the wanted frames to RGB, stop after the last one.
Each strategy's frames are compared with `ours` (mean absolute difference in grey levels; a different
frame differs by far more than a different YUV->RGB conversion does). Ratios are of medians of
interleaved runs in one process, the order rotating each round, so a CPU shared with other work slows
all strategies alike.

    python benchmarks/bench_decode.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analyze import make_clip  # noqa: E402

from detector.machine import cpu_name  # noqa: E402
from detector.video import probe, read_frame_pairs, read_frames, sample_indices  # noqa: E402


def ours(path: Path, idx: list[int]) -> np.ndarray:
    return read_frames(path, idx, probe(path))[0]


def opencv(path: Path, idx: list[int], gap: int) -> np.ndarray:
    return read_frames(path, idx, probe(path), max_grab_gap=gap)[0]


def pyav(path: Path, idx: list[int]) -> np.ndarray:
    import av

    want, out = set(idx), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads
        for i, frame in enumerate(container.decode(stream)):
            if i in want:
                out[i] = frame.to_ndarray(format="rgb24")
                if len(out) == len(want):
                    break
    return np.stack([out[i] for i in idx])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    try:
        import av  # noqa: F401

        have_av = True
    except ImportError:
        have_av = False
    print(f"CPU {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; OpenCV "
          f"{cv2.__version__}; PyAV {'present' if have_av else 'absent: pip install av'}")
    strategies = {"ours": ours, "seek": lambda p, i: opencv(p, i, 0), "grab": lambda p, i: opencv(p, i, 1 << 62),
                  "pairs": lambda p, i: read_frame_pairs(p, i, probe(p))[0]}
    if have_av:
        strategies["pyav"] = pyav
    tmp = Path(tempfile.mkdtemp())
    print(f"{'clip':<26}{'T':>4} | " + " | ".join(f"{k:>14}" for k in strategies) + " | frames vs ours (MAD)")
    for size in ("1280x720", "1920x1080"):
        w, h = map(int, size.split("x"))
        for clip in make_clip(tmp, w, h):
            n = probe(clip).frame_count
            for t in (20, 40):
                idx = sample_indices(n, t)
                ref = ours(clip, idx)
                times = {k: [] for k in strategies}
                names = list(strategies)
                for r in range(a.repeats):  # the order rotates: the first reader of a round pays for the page cache
                    for k in names[r % len(names):] + names[:r % len(names)]:
                        f = strategies[k]
                        t0 = time.perf_counter()
                        f(clip, idx)
                        times[k].append(time.perf_counter() - t0)
                med = {k: statistics.median(v) for k, v in times.items()}
                mad = {k: float(np.abs(f(clip, idx).astype(np.int16) - ref).mean()) for k, f in strategies.items()
                       if k != "ours"}
                cells = " | ".join(f"{med[k]:6.3f} s {med['ours'] / med[k]:4.2f}x" for k in strategies)
                print(f"{clip.name:<26}{t:>4} | {cells} | " + ", ".join(f"{k} {v:.2f}" for k, v in mad.items()),
                      flush=True)
    print("(x: how many times faster than ours)")


if __name__ == "__main__":
    main()
