"""Frozen features of training clips, cached once: the default's ResNeXt50 and residual stream (issue 38).

The clip stage (`train_neural`) trains only a fresh LSTM + head, so each clip's per-frame features are
computed once: `rgb` (N, T, 2048) from the frozen ResNeXt50 and `res` (2, N, T, 4 * width) from the frozen
"next"-pair residual stream, as is and with both images flipped (the training augmentation). Stored as
fp16 in a plain tensor file (torch.save of tensors only, read with weights_only=True; no pickled objects).

    python -m detector.training.neural_features neural data/neural_pack runs/neural/feat_neural.pt
    python -m detector.training.neural_features pack data/pack_next runs/neural/feat_pack.pt --pseudo-train 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from detector.training.loop import _device, cache_features
from detector.training.train_residual import cache_stream, split_next


@torch.no_grad()
def clip_features(model, x: np.ndarray, batch: int = 16, log=print) -> dict:
    """Interleaved crops uint8 (N, 2T, S, S, 3) (frame, successor, ...) -> {"rgb": (N, T, 2048) fp16,
    "res": (2, N, T, C) fp16}, in chunks of `batch` clips (memory stays flat for large N)."""
    rgb, res = [], []
    t0 = time.time()
    for i in range(0, len(x), batch):
        xf, xp = split_next(np.asarray(x[i:i + batch]))
        xf, xp = np.ascontiguousarray(xf), np.ascontiguousarray(xp)
        rgb.append(cache_features(model, xf, _device()).half())
        res.append(cache_stream(model, xf, xp).half())
        log(f"features {min(i + batch, len(x))}/{len(x)} clips ({time.time() - t0:.0f} s)")
    return {"rgb": torch.cat(rgb), "res": torch.cat(res, 1)}


def neural_features(model, folder: Path, aug_stride: int = 2, augmented: bool = True) -> dict:
    """Features of a neural pack (detector.training.neural): originals at every frame, the degraded copies
    at every `aug_stride`-th frame pair (they are an augmentation; half the frames halve their cost)."""
    from detector.training.neural import load_neural_pack

    clips, x, aug = load_neural_pack(folder)
    out = {"orig": clip_features(model, x)}
    if aug is not None and augmented:
        t = aug.shape[1] // 2
        keep = np.stack([2 * np.arange(0, t, aug_stride), 2 * np.arange(0, t, aug_stride) + 1], 1).ravel()
        out["aug"] = clip_features(model, np.asarray(aug)[:, keep])
    out["y"] = torch.tensor([c.y for c in clips])
    return out


def pack_features(model, pack: Path, pseudo_train: int, pseudo_val: int, seed: int = 0) -> dict:
    """Features of a "next" pack's stage-2 clips, built by train-residual's own `stage2_clips` (families
    reenact / swap / sbi, camera noise on real clips, its seeds), for the train and val splits."""
    from detector.cues import mouth_detail_deficit
    from detector.training.pack import load_pack
    from detector.training.train_residual import ResidualConfig, stage2_clips

    stills, clips = load_pack(pack)
    rc = ResidualConfig(pseudo_train=pseudo_train, pseudo_val=pseudo_val, seed=seed)
    out = {}
    for split in ("train", "val"):
        x, y, fam, _ = stage2_clips(stills, clips, rc, split)
        # The mouth-detail cue of each clip's frames (every second crop: the frames, not their successors), as
        # the product adds it to the margin: the calibration is fitted on the verdict's own score.
        deficit = torch.tensor([mouth_detail_deficit(np.ascontiguousarray(c[0::2])) for c in x])
        out[split] = {**clip_features(model, x), "y": torch.from_numpy(y), "family": list(map(str, fam)),
                      "deficit": deficit}
    return out


def main(argv: list[str] | None = None) -> int:
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["neural", "pack"])
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--init", type=Path, default=DEFAULT_WEIGHTS, help="weights whose backbone + stream are frozen")
    p.add_argument("--pseudo-train", type=int, default=300)
    p.add_argument("--pseudo-val", type=int, default=120)
    p.add_argument("--no-augmented", action="store_true", help="neural: skip the degraded copies' features")
    a = p.parse_args(argv)
    model, spec = load_weights(a.init)
    model.eval()
    feats = (neural_features(model, a.source, augmented=not a.no_augmented) if a.kind == "neural"
             else pack_features(model, a.source, a.pseudo_train, a.pseudo_val))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**feats, "init": spec.name, "init_sha256": spec.weights_sha256}, a.out)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
