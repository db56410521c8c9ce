"""Probe: does a candidate stage-1 family help on the dev set? A small frame CNN, minutes instead of an hour.

Why: a full `train-pack` run costs 40-70 minutes on 2 cores and moves the dev set by less than its own
interval; a family that is worth that run should first move a cheap model. This probe trains a small CNN
(six stride-2 convolutions, 112-px RGB frames, one logit) on the stage-1 batches of `train_pack.pack_batch`
(real stills and clip frames of training identities, each with a fresh fake made from it; the same
augmentation and codec damage on both classes) with a chosen family mix, then reports held-out synthetic
ROC-AUC per family (validation identities) and the dev set's ROC-AUC (mean frame logit over the cached
crops of `devset_quick.py cache`) with its interval. Never trained on the dev set; a probe, not a model.

Candidate family measured here (not in the product): `mouth_lowres`, the mouth and lower face replaced by a
down- and up-sampled copy of themselves (x2-x4, bilinear or bicubic), soft-masked and *not* re-sharpened:
the trace that `devset_cues.py --native` measured on lip-sync fakes (less of the finest octave).

    python research/probe_frames.py --mix base --minutes 10
    python research/probe_frames.py --mix base+mouth --minutes 10
    python research/probe_frames.py --untrained 20   # the dev set's chance band (see below)

`--untrained N` scores the dev set with N randomly initialised, untrained FrameNets (seeds 0..N-1) and
prints the spread of their ROC-AUCs: what a model that learned nothing reaches on these 74 clips, because
any random projection of the crops picks up some global difference (sharpness, colour, contrast) between
this dev set's real and fake clips, with either sign. A trained model inside that band has shown nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE, canonical, report  # noqa: E402

from detector.training import families as F  # noqa: E402
from detector.training.pack import load_pack  # noqa: E402
from detector.training.loop import TrainConfig  # noqa: E402
from detector.training.train_pack import PackConfig, _pool, auc_by_family, pack_batch, val_frames  # noqa: E402

BASE = PackConfig().weights
MIXES = {"base": BASE, "base+mouth": BASE + (("mouth_lowres", 0.25),), "mouth": (("mouth_lowres", 1.0),)}


def mouth_lowres(frame: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (S, S, 3) RGB -> the same with the mouth region rendered at 1/2-1/4 of the resolution."""
    h, w = frame.shape[:2]
    s = int(rng.choice([2, 3, 4]))
    small = cv2.resize(frame, (w // s, h // s), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=(cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))])
    mask = F._soft_mask((h, w), lms[F.MOUTH], F._face_size(lms), rng) * float(rng.uniform(0.8, 1.0))
    return F._paste(frame, up, mask)


def _with_candidate(fake_frame):
    """families.fake_frame that also knows the candidate family (unmatched, by design)."""
    def fn(family, frame, lms, rng, other=None, match=True):
        if family == "mouth_lowres":
            return mouth_lowres(frame, lms, rng)
        return fake_frame(family, frame, lms, rng, other, match)
    return fn


class FrameNet(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B,) logit."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers, c = [], 3
        for i, w in enumerate((width, width, 2 * width, 2 * width, 4 * width, 4 * width)):
            layers += [nn.Conv2d(c, w, 3, 2 if i else 1, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def _logits(net: FrameNet, x: np.ndarray) -> np.ndarray:
    net.eval()
    out = torch.cat([net(_tensor(x[i:i + 128])) for i in range(0, len(x), 128)]).numpy()
    net.train()
    return out


def chance_band(n: int, canon: int = 0) -> None:
    """Dev-set ROC-AUC of n untrained FrameNets (seeds 0..n-1; eval mode: BatchNorm is the identity)."""
    from detector.training.evaluate import roc_auc

    d = np.load(CACHE)
    x, y = d["crops"], d["label"]
    aucs = []
    for seed in range(n):
        torch.manual_seed(seed)
        p = _logits(FrameNet(), canonical(x.reshape(-1, *x.shape[2:]), canon)).reshape(x.shape[:2]).mean(1)
        aucs.append(roc_auc(y, p))
    a = np.sort(aucs)
    print(f"{n} untrained networks, dev-set ROC-AUC: min {a[0]:.3f}, median {np.median(a):.3f}, max {a[-1]:.3f}, "
          f"middle 90 % {np.quantile(a, 0.05):.3f}-{np.quantile(a, 0.95):.3f}\n{np.round(a, 3).tolist()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", default="base", choices=sorted(MIXES))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--pack", type=Path, default=ROOT / "data" / "pack")
    ap.add_argument("--untrained", type=int, default=0, metavar="N", help="only score N untrained networks")
    ap.add_argument("--canon", type=int, default=0, metavar="SIDE",
                    help="train and score on crops down-sampled to SIDE px and back (`canonical`); 0: as is")
    a = ap.parse_args()
    if not CACHE.is_file():
        sys.exit(f"{CACHE} not found: run `python research/devset_quick.py cache` first (needs data/devset)")
    torch.set_num_threads(2)
    if a.untrained:
        return chance_band(a.untrained, a.canon)
    torch.manual_seed(0)
    F.fake_frame = _with_candidate(F.fake_frame)  # pack_batch and val_frames look it up in the module
    stills, clips = load_pack(a.pack)
    train_pool, val_pool = _pool(stills, clips, "train"), _pool(stills, clips, "val")
    # The same validation frames for every mix: every family, the candidate included.
    xv, yv, fv = val_frames(val_pool, PackConfig(weights=BASE + (("mouth_lowres", 0.2),), val_frames=300))
    pc, cfg = PackConfig(weights=MIXES[a.mix]), TrainConfig()
    net = FrameNet()
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    deadline, step = time.time() + a.minutes * 60, 0
    while time.time() < deadline:
        xb, yb = pack_batch(train_pool, cfg, pc, rng)
        xb = canonical(xb, a.canon)
        loss = nn.functional.binary_cross_entropy_with_logits(net(_tensor(xb)), torch.from_numpy(yb).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    val = auc_by_family(yv, _logits(net, canonical(xv[:, 0], a.canon)), fv)
    print(f"{a.mix}: {step} steps in {a.minutes:g} min; held-out synthetic {val}", flush=True)
    d = np.load(CACHE)["crops"]
    n, t = d.shape[:2]
    tag = f"probe {a.mix}" + (f", canon {a.canon}" if a.canon else "")
    report(f"{tag}, dev set", _logits(net, canonical(d.reshape(n * t, *d.shape[2:]), a.canon)).reshape(n, t).mean(1))


if __name__ == "__main__":
    main()
