"""Face detectors against HOG on real clips: recall, extra boxes, NO_FACE changes, time ratio.

For every clip, T frames are sampled as the analysis samples them; HOG (the previous default:
face_recognition on a 480-px copy, upsample 1) and each other detector run on the same frames in the
same process. A HOG box counts as found when a box of the other detector overlaps it with IoU >= 0.3.
"extra" boxes are ones HOG did not find (a HOG miss or a false positive: look at them). NO_FACE: no
track survives tracking (the analysis verdict would be NO_FACE).

Recall of each detector, on equal terms: every box that only one of HOG and the other detector found is
put to a third one, dlib's CNN (mmod, on the same 480-px copy, run only on those frames). The reference
faces are the boxes both found plus the single-detector boxes the CNN confirms (IoU >= 0.3); each
detector's recall is the share of the reference it found, and its unconfirmed boxes are its likely false
positives. (A face all three miss is missing from both recalls alike.) It also prints the median offset and
scale from BlazeFace's raw boxes to HOG's (the correction in detector/faces.py _BlazeFace.SPECS).

    python benchmarks/bench_faces.py [--devset data/devset] [--grid ../shared/data/grid --grid-every 4]

The dev set and GRID are not in the repository (see README); missing folders are skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import detector.faces as F  # noqa: E402
from detector.errors import InputError  # noqa: E402
from detector.video import VIDEO_EXTENSIONS, probe, read_frames, sample_indices  # noqa: E402


def _match(ref: list, other: list) -> tuple[int, list[tuple]]:
    """Greedy IoU >= 0.3 matching; returns (matched count, [(ref box, other box)])."""
    used, pairs = set(), []
    for r in ref:
        best = max(((F.iou(r, o), j) for j, o in enumerate(other) if j not in used), default=(0.0, -1))
        if best[0] >= 0.3:
            used.add(best[1])
            pairs.append((r, other[best[1]]))
    return len(pairs), pairs


def evaluate(clips: list[Path], frames: int, detectors: list[str]) -> None:
    stats = {d: {"hog": 0, "found": 0, "extra": 0, "time": [], "noface": [], "missed": {}, "ref": 0,
                 "rec_hog": 0, "rec_other": 0, "fp_hog": 0, "fp_other": 0} for d in detectors}
    cnn_cfg = F.FaceConfig(detector="cnn", use_encodings=False)
    hog_noface, geo = [], {"short": [], "full": []}
    for clip in clips:
        try:
            info = probe(clip)
            imgs, _ = read_frames(clip, sample_indices(info.frame_count, frames), info)
        except InputError as e:
            print(f"skip {clip.name}: {e}")
            continue
        t = time.perf_counter()
        hog = F.detect_all(imgs, F.FaceConfig(detector="hog", use_encodings=False))
        t_hog = time.perf_counter() - t
        hog_boxes = [[d.box for d in ds] for ds in hog]
        if not F.track_faces(hog, F.FaceConfig(use_encodings=False)):
            hog_noface.append(clip.name)
        for name in detectors:
            cfg = F.FaceConfig(detector=name, use_encodings=False)
            t = time.perf_counter()
            dets = F.detect_all(imgs, cfg)
            s = stats[name]
            s["time"].append((time.perf_counter() - t) / t_hog)
            for img, ref, ds in zip(imgs, hog_boxes, dets):
                other = [d.box for d in ds]
                n, pairs = _match(ref, other)
                s["hog"] += len(ref)
                s["found"] += n
                s["extra"] += len(ds) - n
                if n < len(ref):
                    s["missed"][clip.name] = s["missed"].get(clip.name, 0) + len(ref) - n
                only_hog = [r for r in ref if all(r is not p[0] for p in pairs)]
                only_other = [o for o in other if all(o is not p[1] for p in pairs)]
                cnn = [d.box for d in F.detect_all(img[None], cnn_cfg)[0]] if only_hog or only_other else []
                ok_hog, ok_other = _match(only_hog, cnn)[0], _match(only_other, cnn)[0]
                s["ref"] += n + ok_hog + ok_other
                s["rec_hog"] += n + ok_hog
                s["rec_other"] += n + ok_other
                s["fp_hog"] += len(only_hog) - ok_hog
                s["fp_other"] += len(only_other) - ok_other
            if not F.track_faces(dets, cfg):
                s["noface"].append(clip.name)
        if "blazeface" in detectors:  # raw model boxes vs HOG (correction removed), for SPECS
            for kind in geo:
                model = F._blazeface(kind)
                dx, dy, k = model.correction
                for ref, img in zip(hog_boxes, imgs):
                    raw = []
                    for b, _ in model(img, 0.5):
                        w, h = (b.x1 - b.x0) / k, (b.y1 - b.y0) / k
                        cx, cy = (b.x0 + b.x1) / 2 - dx * w, (b.y0 + b.y1) / 2 - dy * h
                        raw.append(F.Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                    for r, o in _match(ref, raw)[1]:
                        w = o.x1 - o.x0
                        geo[kind].append((((r.x0 + r.x1) - (o.x0 + o.x1)) / 2 / w,
                                          ((r.y0 + r.y1) - (o.y0 + o.y1)) / 2 / w, (r.x1 - r.x0) / w))
    print(f"HOG: NO_FACE clips {len(hog_noface)} {hog_noface}")
    for name, s in stats.items():
        rec = s["found"] / max(1, s["hog"])
        print(f"{name:>10}: found {s['found']}/{s['hog']} HOG boxes (recall vs HOG {rec:.3f}), extra {s['extra']}, "
              f"time vs HOG median {statistics.median(s['time']):.3f} (clip-level), NO_FACE clips "
              f"{len(s['noface'])} {s['noface']}")
        print(f"{'':>10}  missed HOG boxes per clip: {s['missed']}")
        ref = max(1, s["ref"])
        print(f"{'':>10}  against {s['ref']} reference faces (both, or one + CNN-confirmed): recall {name} "
              f"{s['rec_other'] / ref:.4f} vs HOG {s['rec_hog'] / ref:.4f}; unconfirmed boxes {name} "
              f"{s['fp_other']}, HOG {s['fp_hog']}")
    for kind, g in geo.items():
        if g:
            a = np.median(np.array(g), axis=0)
            print(f"BlazeFace {kind}-range raw -> HOG geometry (n={len(g)}): dx {a[0]:+.3f} dy {a[1]:+.3f} "
                  f"scale {a[2]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", type=Path, default=ROOT / "data" / "devset")
    ap.add_argument("--grid", type=Path, default=ROOT.parent / "shared" / "data" / "grid")
    ap.add_argument("--grid-every", type=int, default=4, help="use every N-th GRID clip (default 4)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--detectors", default="blazeface")
    a = ap.parse_args()
    dets = a.detectors.split(",")
    for name, folder, every in (("dev set", a.devset, 1), ("GRID", a.grid, a.grid_every)):
        clips = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)[::every]
        if not clips:
            print(f"{name}: no clips under {folder}; skipped")
            continue
        print(f"== {name}: {len(clips)} clips, T = {a.frames}", flush=True)
        evaluate(clips, a.frames, dets)


if __name__ == "__main__":
    main()
