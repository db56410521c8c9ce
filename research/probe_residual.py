"""Probe: does a small model that sees pixel-level relations *between* frames transfer to the dev set?

Why: `devset_cues.py` measured that grain persisting between consecutive frames separates the dev set's
portrait animations from real clips (ROC-AUC 0.79), a relation the ResNeXt50 + LSTM cannot see because
it pools every frame to 2,048 features first. This probe trains, on the training pack's stage-2 clips
only (real clips and still pseudo-clips of training identities, each with one paired fake clip of every
family: detector/training/train_pack.clip_set), a small CNN on pairs of consecutive frames' high-pass
residuals (grey - Gaussian blur, sigma 1): input (2, 112, 112) per pair, one logit per pair, the clip's
logit is the mean over its T-1 pairs. It reports ROC-AUC on held-out validation identities per family
and on the dev set's cached crops per family. Never trained on the dev set; a probe, not a product model.

    python research/probe_residual.py [--minutes 12] [--pack data/pack] [--camera] [--coherent]
    python research/probe_residual.py --camera --families reenact --windows 3 --minutes 10 --seed 0
    python research/probe_residual.py --untrained 20 --windows 3      # this probe's chance band
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE, report, window_cache  # noqa: E402

from detector.residual import ResidualPairStream  # noqa: E402
from detector.residual import residual_pairs as stream_pairs  # noqa: E402
from detector.training.families import MATCH_BY_NAME  # noqa: E402
from detector.training.pack import load_pack  # noqa: E402
from detector.training.train_pack import PackConfig, auc_by_family, clip_set  # noqa: E402


def residual_pairs(clips: np.ndarray, chunk: int = 32) -> torch.Tensor:
    """uint8 (N, T, S, S, 3) RGB -> float (N, T-1, 2, S, S): the product stream's own input pairs
    (detector.residual.residual_pairs: high-pass of frames t-1 and t / SCALE), `chunk` clips at a time."""
    out = []
    for i in range(0, len(clips), chunk):
        x = torch.from_numpy(np.ascontiguousarray(clips[i:i + chunk])).permute(0, 1, 4, 2, 3)
        out.append(stream_pairs(x)[0])
    return torch.cat(out)


class PairNet(nn.Module):
    """(B, 2, S, S) -> (B,) logit: the product's residual-pair stream (detector/residual.py) + a linear read-out."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        stream = ResidualPairStream(width)
        self.body = nn.Sequential(*stream.body, nn.Linear(stream.num_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


@torch.no_grad()
def clip_scores(net: PairNet, pairs: torch.Tensor) -> np.ndarray:
    net.eval()
    out = [net(p.flatten(0, 1)).view(len(p), -1).mean(1) for p in pairs.split(8)]
    net.train()
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, default=ROOT / "data" / "pack")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--pseudo", type=int, default=320)
    ap.add_argument("--match", default="centre", choices=["centre", "regions"],
                    help="sharpness matching of the fake clips (train_pack.PackConfig.clip_match)")
    ap.add_argument("--camera", action="store_true",
                    help="real clips get a camera's fresh noise and the re-encode adds none (PackConfig.clip_camera)")
    ap.add_argument("--coherent", action="store_true", help="fake clips without flicker (PackConfig.clip_coherent)")
    ap.add_argument("--families", default="", help="comma-separated clip families (default: PackConfig's)")
    ap.add_argument("--windows", type=int, default=0,
                    help="also score the dev set on `devset_quick.py cache --windows K` (frames 0.15 s apart, as in "
                         "training, not 20 frames spread over the clip); the clip's score is the mean over K")
    ap.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    ap.add_argument("--untrained", type=int, default=0, metavar="N",
                    help="no training: the dev-set AUC of N untrained PairNets (this probe's chance band)")
    ap.add_argument("--save", type=Path, help="write the trained net (safetensors) and its dev-set scores (.npz)")
    a = ap.parse_args()
    caches = [CACHE] + ([window_cache(a.windows, 0.15)] if a.windows else [])
    if a.untrained:
        return untrained_band(a.untrained, caches)
    torch.manual_seed(a.seed)
    t0 = time.time()
    stills, clips = load_pack(a.pack)
    t = int(clips["crops"].shape[1])
    pc = PackConfig(clip_match=MATCH_BY_NAME[a.match], clip_camera=a.camera, clip_coherent=a.coherent)
    if a.families:
        pc = replace(pc, clip_families=tuple(a.families.split(",")))
    xtr, ytr, ftr, _ = clip_set(stills, clips, "train", a.pseudo, pc, t, seed=11)
    xva, yva, fva, _ = clip_set(stills, clips, "val", 120, pc, t, seed=12)
    ptr, pva = residual_pairs(xtr), residual_pairs(xva)
    print(f"clips: train {len(ytr)}, val {len(yva)}; built in {time.time() - t0:.0f} s", flush=True)
    net = PairNet()
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(a.seed)
    ytr_t = torch.from_numpy(ytr).float()
    deadline, step = time.time() + a.minutes * 60, 0
    while time.time() < deadline:
        i = rng.integers(len(ytr), size=16)
        j = rng.integers(t - 1, size=16)  # one random pair per clip and step
        x = ptr[i, j]
        if rng.random() < 0.5:
            x = x.flip(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(net(x), ytr_t[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 300 == 0:
            print(f"step {step} loss {loss.item():.3f} val {auc_by_family(yva, clip_scores(net, pva), fva)}",
                  flush=True)
    print(f"trained {step} steps in {a.minutes:.0f} min")
    print(f"held-out validation identities: {auc_by_family(yva, clip_scores(net, pva), fva)}")
    scores = {}
    for cache in caches:
        if not cache.is_file():
            print(f"{cache} not found: run `python research/devset_quick.py cache [--windows K]` first")
            continue
        scores[cache.stem] = dev_scores(net, cache)
        report(f"dev set ({cache.name})", scores[cache.stem])
    if a.save:
        from safetensors.torch import save_file

        a.save.parent.mkdir(parents=True, exist_ok=True)
        save_file(net.state_dict(), str(a.save))
        np.savez(a.save.with_suffix(".npz"), **scores)


def dev_scores(net: PairNet, cache: Path) -> np.ndarray:
    """(N,) clip logits of a dev-set crop cache: (N, T, ...) or a window cache (N, K, T, ...), mean over K."""
    crops = np.load(cache)["crops"]
    n = len(crops)
    return clip_scores(net, residual_pairs(crops.reshape(-1, *crops.shape[-4:]))).reshape(n, -1).mean(1)


def untrained_band(n: int, caches: list[Path]) -> None:
    """Dev-set ROC-AUC of n untrained PairNets (seeds 0..n-1): how far chance reaches on these clips."""
    from detector.training.evaluate import roc_auc

    y = np.load(CACHE)["label"]
    for cache in caches:
        pairs = np.load(cache)["crops"]
        pairs = residual_pairs(pairs.reshape(-1, *pairs.shape[-4:]))
        aucs = []
        for seed in range(n):
            torch.manual_seed(seed)
            aucs.append(roc_auc(y, clip_scores(PairNet(), pairs).reshape(len(y), -1).mean(1)))
        print(f"{cache.name}: {n} untrained PairNets: ROC-AUC {min(aucs):.3f}-{max(aucs):.3f}, "
              f"median {np.median(aucs):.3f}", flush=True)


if __name__ == "__main__":
    main()
