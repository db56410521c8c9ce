"""Where does a detector stop generalising: new fakes, or new faces?

On the held-out speakers of a prepared split, frame-level ROC-AUC of real frames against
- the prepared (offline) fakes: SBI and face-swap videos made by `deepfake-forensics synth`;
- fresh crop-level fakes of the *same* held-out frames (detector/training/online_fakes.py), i.e. the kind of
  fake the model trains on, now on faces it has never seen; with and without a JPEG round trip;
- the real frames themselves after a JPEG round trip (should be ~0.5: compression is no cue).

If the model separates fresh fakes on training speakers (training loss near 0) but not on held-out
speakers, the limit is the number of training identities, not the fake generator.

    python research/bench_generalisation.py data/prepared --split val [--weights W.safetensors]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.training.evaluate import roc_auc  # noqa: E402


def frame_scores(det, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """p_fake of each frame alone (as evaluate's frame level): uint8 (N, S, S, 3) RGB -> (N,)."""
    from detector.training.evaluate import single_frame_p_fake

    with torch.inference_mode():
        return np.concatenate([single_frame_p_fake(det.model, det.features(frames[i:i + batch]))
                               for i in range(0, len(frames), batch)])


def main(argv: list[str] | None = None) -> int:
    from detector.pipeline import Detector
    from detector.training import synth
    from detector.training.online_fakes import OnlineFakes, crop_landmarks
    from detector.training.prepare import load_prepared
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prepared", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--frames-per-clip", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args(argv)

    model, spec = load_weights(a.weights)
    det = Detector(model, spec)
    x, y, rows = load_prepared(a.prepared, a.split)
    ts = np.linspace(0, x.shape[1] - 1, a.frames_per_clip).round().astype(int)
    meth = np.array([r["method"] for r in rows])
    real_clips = x[y == 0][:, ts]
    ids = [r["identity"] for r, lab in zip(rows, y) if lab == 0]
    n, t = real_clips.shape[:2]
    lms = crop_landmarks(real_clips.reshape(n * t, *x.shape[2:])).reshape(n, t, 68, 2)
    online = OnlineFakes(real_clips, lms, ids)
    rng = np.random.default_rng(a.seed)
    sbi = np.stack([online.sbi_frame(c, k, rng) for c in range(n) for k in range(t)])
    swaps = [online.swap_frame(c, k, rng) for c in range(n) for k in range(t)]
    swap = np.stack([f for f in swaps if f is not None])

    def jpeg(frames):
        return np.stack([synth.jpeg(f, int(rng.integers(60, 95))) for f in frames])

    real = real_clips.reshape(n * t, *x.shape[2:])
    p_real = frame_scores(det, real)
    sets = {"real_jpeg": jpeg(real)}
    for m in sorted(set(meth[y == 1])):
        sets[f"offline_{m}"] = x[meth == m][:, ts].reshape(-1, *x.shape[2:])
    sets.update({"online_sbi": sbi, "online_swap": swap, "online_sbi_jpeg": jpeg(sbi),
                 "online_swap_jpeg": jpeg(swap)})
    res = {"weights": spec.name, "weights_sha256": spec.weights_sha256, "split": a.split,
           "identities": sorted(set(ids)), "real_frames": int(len(real)), "frame_roc_auc": {}}
    print(f"{spec.name} ({spec.weights_sha256[:12]}), split {a.split}, {len(real)} real frames")
    for name, frames in sets.items():
        p = frame_scores(det, frames)
        auc = roc_auc(np.r_[np.zeros(len(p_real)), np.ones(len(p))], np.r_[p_real, p])
        res["frame_roc_auc"][name] = round(float(auc), 4)
        print(f"  real vs {name:18s} frame ROC-AUC {auc:.3f}  ({len(frames)} frames)")
    if a.json_out:
        a.json_out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
