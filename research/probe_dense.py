"""Does telling the backbone *where* a fake was changed make what it learns transfer? (issue 15, stop 34)

A frame-level probe, not the product's training. The default's ResNeXt50 is fine-tuned (stem, layer1 and
layer2 frozen; layer3, layer4, a frame head trained) on the pack's paired frames: each real frame of the
training identities and a fresh fake of it from the families (families.fake_frame). With `--dense W` a
1x1-conv head on layer3 (7x7 at 112 px) also learns the pair's difference map: |fake - real| after both
went through the *same* augmentation (so the map is the manipulation, not the flip or the zoom), blurred and
saturating at `--sat` grey levels, area-pooled to 7x7; reals' map is 0. Why: pixel-level supervision of where
the blend is (Face X-ray, Li et al. CVPR 2020) taught blending traces that carried to unseen face-swap data
sets, where a clip-level label alone lets the net learn any cue that happens to separate the pairs.

Both arms (`--dense 0` and `--dense W`) start from the same weights, draw the same batches (same seed) and run
for the same wall time; `devset_quick.py score RUN/stage1_best.pt` then reads each on the dev set (mean
frame logit of backbone + frame head), and this script prints the frame ROC-AUC per family on held-out
identities (train_pack.val_frames).

    python research/probe_dense.py data/pack --run runs/dense1 --dense 1 --sat 12 --minutes 35 --threads 1
    python research/probe_dense.py data/pack --run runs/dense0 --dense 0 --sat 12 --minutes 35 --threads 1
    python research/probe_dense.py data/pack --run runs/smooth50 --dense 0 --smooth 0.5 --sat 12 --minutes 30

(the stop-34 runs: the first two side by side, one thread each; the learning rate follows a plain cosine to 0
over the wall time, not train.cosine_lr's warm-up and 2 % floor.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.training import families as F  # noqa: E402
from detector.training.pack import load_pack  # noqa: E402
from detector.training.loop import _autocast, _to_tensor, augment, frame_logits  # noqa: E402
from detector.training.train_pack import (  # noqa: E402
    PackConfig,
    _draw_real,
    _family,
    _pool,
    _swap_partner,
    auc_by_family,
    val_frames,
)
from detector.weights import DEFAULT_WEIGHTS, load_weights  # noqa: E402

MAP = 7  # layer3's side at 112 px


def diff_map(real: np.ndarray, fake: np.ndarray, sat: float) -> np.ndarray:
    """float32 (MAP, MAP) in [0, 1]: where fake differs from real (uint8 (S, S, 3) RGB, aligned)."""
    d = np.abs(fake.astype(np.float32) - real.astype(np.float32)).mean(-1)
    d = cv2.GaussianBlur(d, (0, 0), 1.5)
    return np.clip(cv2.resize(d, (MAP, MAP), interpolation=cv2.INTER_AREA) / sat, 0, 1)


def smooth(img: np.ndarray, p: dict) -> np.ndarray:
    """What real-world pipelines do to real faces before anyone analyses them: an edge-preserving denoise (webcam
    and phone "beauty" filters) and a low-resolution source up-scaled. uint8 (S, S, 3) RGB in and out."""
    s = img.shape[0]
    out = cv2.bilateralFilter(np.ascontiguousarray(img), 5, p["colour"], 3)
    small = cv2.resize(out, (max(8, int(s * p["scale"])),) * 2, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (s, s), interpolation=cv2.INTER_CUBIC)


def dense_batch(pool, pc: PackConfig, half: int, sat: float, rng: np.random.Generator, smooth_p: float = 0.0):
    """uint8 (2 half, S, S, 3) RGB (reals, then their fakes), labels (2 half,), maps float32 (2 half, MAP, MAP).

    smooth_p: the share of pairs whose real *and* fake frame both get the same `smooth` (a real face made smooth
    by its pipeline must not read as a generator's output; the fake keeps whatever trace survives it)."""
    reals, fakes, maps = [], [], []
    while len(reals) < half:
        img, lms, ident = _draw_real(pool, pc.still_share, rng)
        fam, other = _swap_partner(pool, _family(pc, rng), ident, rng)
        fake = F.fake_frame(fam, img, lms, rng, other, match=pc.frame_match)
        seed = int(rng.integers(1 << 62))  # the same augmentation for both: the map is the manipulation
        r, f = augment(img, np.random.default_rng(seed)), augment(fake, np.random.default_rng(seed))
        if smooth_p and rng.random() < smooth_p:  # no draw when off: the batches stay those of earlier runs
            p = {"colour": float(rng.uniform(15, 45)), "scale": float(rng.uniform(0.35, 0.8))}
            r, f = smooth(r, p), smooth(f, p)
        maps.append(diff_map(r, f, sat))
        reals.append(F.degrade(r, rng))
        fakes.append(F.degrade(f, rng))
    y = np.r_[np.zeros(half, np.int64), np.ones(half, np.int64)]
    m = np.concatenate([np.zeros((half, MAP, MAP), np.float32), np.stack(maps)])
    return np.stack(reals + fakes), y, m


class Probe(nn.Module):
    """The default's backbone with a frame head on layer4 (pooled) and a map head on layer3."""

    def __init__(self) -> None:
        super().__init__()
        model, self.spec = load_weights(DEFAULT_WEIGHTS)
        self.normalize, self.backbone = model.normalize, model.backbone
        self.head = nn.Linear(self.backbone.num_features, 2)
        self.map_head = nn.Conv2d(1024, 1, 1)
        self.frozen = (self.backbone.conv1, self.backbone.bn1, self.backbone.layer1, self.backbone.layer2)
        for mod in self.frozen:
            mod.requires_grad_(False)

    def train(self, mode: bool = True) -> Probe:
        super().train(mode)
        for mod in self.frozen:  # their batch-norm statistics stay the default's
            mod.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, S, S) RGB uint8 -> frame logits (B, 2), map logits (B, MAP, MAP)."""
        b = self.backbone
        h = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(self.normalize(x)))))))
        h3 = b.layer3(h)  # the trunk's own forward, stopped here once for the map head
        return self.head(b.layer4(h3).mean((2, 3))), self.map_head(h3)[:, 0]

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB uint8 -> (B, 2048) pooled layer4 features, as ResNeXtLSTM.frame_features."""
        return self.backbone(self.normalize(x)).mean((2, 3))


def frame_auc(model: Probe, xv: np.ndarray, yv: np.ndarray, fv: np.ndarray) -> dict:
    """Frame ROC-AUC per family on the fixed validation frames xv uint8 (N, 1, S, S, 3) RGB."""
    p = torch.softmax(frame_logits(model, model.head, xv[:, 0], "cpu"), -1)[:, 1]
    return auc_by_family(yv, p.numpy(), fv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack", type=Path)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--dense", type=float, default=1.0, help="weight of the map loss (0: the label alone)")
    ap.add_argument("--sat", type=float, default=8.0, help="grey levels of difference at which the map saturates")
    ap.add_argument("--smooth", type=float, default=0.0, help="share of pairs smoothed alike (`smooth`)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(a.seed)
    a.run.mkdir(parents=True, exist_ok=True)
    stills, clips = load_pack(a.pack)
    pc = PackConfig()
    train, val = _pool(stills, clips, "train"), _pool(stills, clips, "val")
    xv, yv, fv = val_frames(val, pc)
    model = Probe().to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    rng = np.random.default_rng(a.seed)
    t0, step, best, log = time.time(), 0, -1.0, open(a.run / "log.jsonl", "a")
    losses = []
    while True:
        done = time.time() - t0 > a.minutes * 60
        if step % a.eval_every == 0 or done:
            auc = frame_auc(model, xv, yv, fv)
            row = {"step": step, "s": round(time.time() - t0), "train": np.mean(losses, 0).round(4).tolist()
                   if losses else None, "val_frame_auc": auc}
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            losses = []
            if auc["all"] > best:
                best = auc["all"]
                torch.save({"backbone": model.backbone.state_dict(), "head": model.head.state_dict()},
                           a.run / "stage1_best.pt")
        if done:
            break
        model.train()
        x, y, m = dense_batch(train, pc, a.batch // 2, a.sat, rng, a.smooth)
        lr = a.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t0) / (a.minutes * 60))))
        for g in opt.param_groups:
            g["lr"] = lr
        with _autocast("cpu"):
            logits, maps = model(_to_tensor(x, "cpu"))
        cls = nn.functional.cross_entropy(logits.float(), torch.from_numpy(y))
        dense = nn.functional.binary_cross_entropy_with_logits(maps.float(), torch.from_numpy(m))
        loss = cls + a.dense * dense
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append([cls.item(), dense.item()])
        step += 1


if __name__ == "__main__":
    main()
