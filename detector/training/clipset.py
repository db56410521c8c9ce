"""Held-out clip folders for calibration and test: real faces of many kinds, as video files.

`evaluate --clips` and `calibrate` judge a model through the product's own path (decode, faces, tracks,
model), so validation and test data must be video files too. This writes, for the held-out identities of
one split of the pack:

- `real/still/<id>.mp4`: a pseudo-clip of each held-out still (parliament, congress, NASA, studio sets)
  at the still's own 224x224 resolution: smooth head/camera motion, mild non-rigid motion, fresh noise;
- `fake/<family>/<id>.mp4`: one fake clip made from that same real clip (families.fake_clip), the family
  rotating over sbi / region / swap (from another held-out identity) / resynth / warp / animate;
- `real/clip/...` and `fake/...` for the split's speakers are added by `synth` (see docs/training.md).

Both classes are written by the same mp4v encoder, so the codec is no cue.

    deepfake-forensics clipset data/pack ../shared/data/faces --split val --out data/valclips --n 120
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from detector.training import families as F
from detector.training.pack import STILL_SCALE
from detector.training.synth import write_video


def still_landmarks(stills: np.ndarray) -> np.ndarray:
    """68-point landmarks of 2.2x-box stills uint8 (N, S, S, 3) RGB: the face box is the centred S/2.2."""
    from detector.training.online_fakes import crop_landmarks

    return crop_landmarks(stills, margin=(STILL_SCALE - 1) / 2, upscale=1)


def write_clipset(pack: Path, faces: Path, split: str, out: Path, n: int, frames: int = 20, seed: int = 0,
                  families: tuple[str, ...] = ("sbi", "region", "swap", "resynth", "warp", "animate")) -> dict:
    st = np.load(pack / "stills.npz")
    idx = np.flatnonzero(st["split"] == split)
    rng = np.random.default_rng(seed)
    idx = rng.choice(idx, min(n, len(idx)), replace=False)
    imgs = np.stack([cv2.cvtColor(cv2.imread(str(faces / p)), cv2.COLOR_BGR2RGB) for p in st["path"][idx]])
    lms = still_landmarks(imgs)
    reals = []
    for img, lm in zip(imgs, lms):
        reals.append(F.pseudo_clip(img, lm, frames, rng))
    counts: dict[str, int] = {}
    for k, (i, (fr, lm)) in enumerate(zip(idx, reals)):
        ident = str(st["identity"][i]).replace(":", "_").replace("/", "_")
        fam = families[k % len(families)]
        other = reals[(k + 1) % len(reals)] if fam in F.SWAPS else None
        fake = F.fake_clip(fam, fr, lm, rng, other)
        if fam in ("animate", "reenact"):  # grain frozen by design: degrade like the real pseudo-clip, per frame
            p = F.degrade_params(rng)
            fake = np.stack([F.degrade(f, rng, {**p, "noise": max(p["noise"], 1.5)}) for f in fake])
        write_video(out / "real" / "still" / f"{ident}.mp4", fr, 25.0, 95)
        write_video(out / "fake" / fam / f"{ident}.mp4", fake, 25.0, 95)
        counts[fam] = counts.get(fam, 0) + 1
    return {"split": split, "real_still_clips": len(reals), "fake": counts}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clipset", help="write held-out real pseudo-clips of stills and paired fakes as videos")
    p.add_argument("pack", type=Path)
    p.add_argument("faces", type=Path, help="the stills folder (../shared/data/faces)")
    p.add_argument("--split", default="val", choices=["val", "test", "train"],
                   help="train: the training identities' clips, built like the held-out folders "
                        "(train-residual --extra-clips)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--families", default="sbi,region,swap,resynth,warp,animate",
                   help="comma-separated fake families, one per real clip in turn (families.fake_clip)")
    p.set_defaults(func=lambda a: print(write_clipset(a.pack, a.faces, a.split, a.out, a.n, seed=a.seed,
                                                      families=tuple(a.families.split(",")))) or 0)
