"""Two residual-pair probes as one "either trace" score: texture that is too steady (a warping animator's)
or that flickers (a per-frame face swap), each standardised on held-out *real* validation clips only.

`probe_residual.py --families reenact` learns grain that moves with a warp instead of renewing (dev set:
portrait animation 0.86-0.89, face swap 0.30-0.39, the wrong way); the same probe on every family learns
per-frame blending and flicker (face swap 0.78, portrait animation 0.43). Each probe's clip logit is
turned into a z-score against the logits of the validation identities' real clips (speaker clips with a
camera's noise and still pseudo-clips: train_pack.clip_set with PackConfig.clip_camera), the z-scores of a
group's nets are averaged, and a clip scores the larger of the two groups' z. Nothing is fitted on the dev
set; which two probes to pair was chosen on it, so its figures are optimistic. The FAKE threshold is the
95th percentile of the fused score on validation reals (5 % false alarms there by construction).

    python research/probe_fuse.py --steady runs/probe_residual/reenact_s1.safetensors,...reenact_s2.safetensors \
        --flicker runs/probe_residual/all_s0.safetensors --windows 3
    python research/probe_fuse.py --untrained 10 --windows 3     # the fused score's chance band
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE, window_cache  # noqa: E402
from research.probe_residual import PairNet, clip_scores, residual_pairs  # noqa: E402

from detector.training.evaluate import roc_auc, roc_auc_ci  # noqa: E402
from detector.training.pack import load_pack  # noqa: E402
from detector.training.train_pack import PackConfig, auc_by_family, clip_set  # noqa: E402


def load_net(path: Path) -> PairNet:
    from safetensors.torch import load_file

    net = PairNet()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def group_z(nets: list[PairNet], val_pairs: torch.Tensor, dev_pairs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean over nets of (logit - mean) / sd of the validation reals: (validation reals,), (dev clips,).

    dev_pairs: `residual_pairs` of the dev cache, windows flattened ((N * K, T-1, 2, S, S)); a clip's logit
    is the mean over its K windows."""
    n = len(np.load(CACHE)["label"])
    zv, zd = [], []
    for net in nets:
        v = clip_scores(net, val_pairs)
        mu, sd = v.mean(), v.std() + 1e-6
        zv.append((v - mu) / sd)
        zd.append((clip_scores(net, dev_pairs).reshape(n, -1).mean(1) - mu) / sd)
    return np.mean(zv, 0), np.mean(zd, 0)


def line(name: str, zv: np.ndarray, zd: np.ndarray) -> None:
    d = np.load(CACHE)
    y, fam = d["label"], d["family"]
    thr = float(np.quantile(zv, 0.95))
    lo, hi = roc_auc_ci(y, zd)
    per = auc_by_family(y, zd, fam)
    real, fake = (zd[y == 0] >= thr).mean(), (zd[y == 1] >= thr).mean()
    print(f"{name}: AUC {roc_auc(y, zd):.3f} [95% CI {lo:.2f}-{hi:.2f}] | FAKE at the validation reals' 95th "
          f"percentile: real {real:.0%} of {(y == 0).sum()}, fake {fake:.0%}"
          + "".join(f" | {k} {v:.3f}" for k, v in per.items() if k != "all"), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steady", help="comma-separated PairNet files trained on reenact fakes")
    ap.add_argument("--flicker", help="comma-separated PairNet files trained on every family")
    ap.add_argument("--against", help="a weights file: paired bootstrap of the fused score's AUC minus its AUC "
                                      "(devset_quick.score on the product's 20 spread frames)")
    ap.add_argument("--untrained", type=int, default=0, metavar="N",
                    help="instead: the same fusion of N pairs of untrained PairNets (the fused score's chance band)")
    ap.add_argument("--pack", type=Path, default=ROOT / "data" / "pack")
    ap.add_argument("--windows", type=int, default=0, help="score the window cache (devset_quick.py cache --windows K)")
    a = ap.parse_args()
    stills, clips = load_pack(a.pack)
    t = int(clips["crops"].shape[1])
    x, y, _, _ = clip_set(stills, clips, "val", 120, PackConfig(clip_camera=True), t, seed=12)
    val_pairs = residual_pairs(x[y == 0])
    cache = window_cache(a.windows, 0.15) if a.windows else CACHE
    crops = np.load(cache)["crops"]
    dev_pairs = residual_pairs(crops.reshape(-1, *crops.shape[-4:]))  # once: the high-pass costs more than a net
    print(f"validation reals: {len(val_pairs)} clips; dev set: {cache.name}")
    if a.untrained:
        y_dev = np.load(CACHE)["label"]
        aucs = []
        for i in range(a.untrained):
            zs = []
            for j in (2 * i, 2 * i + 1):
                torch.manual_seed(j)
                zs.append(group_z([PairNet().eval()], val_pairs, dev_pairs))
            aucs.append(roc_auc(y_dev, np.maximum(zs[0][1], zs[1][1])))
        print(f"{a.untrained} fused pairs of untrained PairNets: ROC-AUC {min(aucs):.3f}-{max(aucs):.3f}, "
              f"median {np.median(aucs):.3f}")
        return
    if not (a.steady and a.flicker):
        sys.exit("give --steady and --flicker (or --untrained N)")
    groups = {k: [load_net(Path(p)) for p in v.split(",")] for k, v in (("steady", a.steady), ("flicker", a.flicker))}
    z = {k: group_z(nets, val_pairs, dev_pairs) for k, nets in groups.items()}
    for k, (zv, zd) in z.items():
        line(f"{k} ({len(groups[k])} nets)", zv, zd)
    fused = np.maximum(z["steady"][1], z["flicker"][1])
    line("either (max)", np.maximum(z["steady"][0], z["flicker"][0]), fused)
    if a.against:
        from research.devset_quick import compare, score

        compare(score(a.against), fused, f"either (max) vs {Path(a.against).stem}")


if __name__ == "__main__":
    main()
