"""Probe: do the features of a face network trained on millions of faces carry a fake direction that transfers?

Why: every frame backbone trained here starts from random weights (no ImageNet or face weights can be
downloaded), and none has left the dev set's chance band. The one network in this environment that was
trained on real faces at scale is dlib's face-recognition ResNet (`face-recognition-models`, 128-D
descriptor of a 150x150 face chip). If a linear probe on its descriptors, trained only on our paired
synthetic fakes, ranks the dev set's public fakes above chance, pretrained face features are the missing
piece and distilling them into the ResNeXt50 backbone is worth an hour; if not, that hour is better spent
elsewhere.

What it measures (nothing is fitted to the dev set):
- `probe`: logistic regression on the descriptors of stage-1 frames (`train_pack.pack_batch`: training
  identities' real frames and a fresh paired fake of each, same augmentation and codec damage), C chosen on
  held-out identities' frames (`val_frames`); reported on those frames per family and on the dev set (mean
  frame logit over the cached crops of `devset_quick.py cache`).
- `jitter`: one fixed, unfitted statistic per dev clip, the mean distance between consecutive frames'
  descriptors (identity flicker, a face-swap trace in the literature), with its ROC-AUC per family.

- `clips`: the temporal question. dlib descriptors of every frame of the stage-2 clips (`train_pack.clip_set`,
  the same construction and seeds as `train-pack`: real speaker clips, still pseudo-clips, one paired fake
  clip of every family), each clip's mean descriptor subtracted (identity is never a cue: the dev set's
  people are not ours); a small LSTM over those sequences, early-stopped on held-out identities, scored on
  the dev set. Also the `jitter` of every training family, to see which way our fakes teach it.

    python research/probe_embedding.py --batches 100     # ~10 min on 2 cores (dlib: ~75 ms a chip)
    python research/probe_embedding.py --clips           # ~15 min the first time (2 processes)
    python research/probe_embedding.py --clips --coherent   # fake clips without per-frame flicker
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE, report  # noqa: E402

from detector.training.distill import descriptors, descriptors_parallel  # noqa: E402
from detector.training.pack import load_pack  # noqa: E402
from detector.training.loop import TrainConfig  # noqa: E402
from detector.training.train_pack import PackConfig, _pool, auc_by_family, clip_set, pack_batch, val_frames  # noqa: E402

EMB_CACHE = ROOT / "data" / "probe_embedding.npz"
CLIP_CACHE = ROOT / "data" / "probe_embedding_clips.npz"


def build_clips(pack: Path, coherent: bool = False) -> dict:
    """Descriptors (N, T, 128) of the stage-2 train/val clips (seeds as train_pack) and of the dev cache."""
    stills, clips = load_pack(pack)
    t = int(clips["crops"].shape[1])
    pc, out = PackConfig(clip_coherent=coherent), {}
    for split, n_pseudo, seed in (("train", pc.pseudo_train, 1), ("val", pc.pseudo_val, 2)):
        x, y, fam, src = clip_set(stills, clips, split, n_pseudo, pc, t, seed)
        t0 = time.time()
        out[split] = descriptors_parallel(x.reshape(-1, *x.shape[2:])).reshape(len(x), t, -1)
        out[f"y_{split}"], out[f"fam_{split}"], out[f"src_{split}"] = y, fam, src
        print(f"{split}: {len(x)} clips in {time.time() - t0:.0f} s", flush=True)
    dev = np.load(CACHE)["crops"]
    out["dev"] = descriptors_parallel(dev.reshape(-1, *dev.shape[2:])).reshape(*dev.shape[:2], -1)
    return out


def _jitter(e: np.ndarray) -> np.ndarray:
    """(N, T, 128) -> (N,) mean distance between consecutive frames' descriptors."""
    return np.linalg.norm(np.diff(e, axis=1), axis=2).mean(1)


def clips_probe(pack: Path, seed: int = 0, coherent: bool = False) -> None:
    import torch
    from torch import nn

    from detector.training.evaluate import roc_auc

    cache = CLIP_CACHE.with_name(CLIP_CACHE.stem + "_coherent.npz") if coherent else CLIP_CACHE
    if not cache.is_file():
        np.savez(cache, **build_clips(pack, coherent))
    d = dict(np.load(cache))
    for split in ("train", "val"):
        j, y, fam, src = _jitter(d[split]), d[f"y_{split}"], d[f"fam_{split}"], d[f"src_{split}"]
        row = [f"{split} jitter medians: real clips {np.median(j[(y == 0) & (src == 'clip')]):.3f}",
               f"real pseudo-clips {np.median(j[(y == 0) & (src == 'still')]):.3f}"]
        row += [f"{f} {np.median(j[fam == f]):.3f}" for f in sorted(set(fam[y == 1]))]
        print("; ".join(row))
    j_dev, y_dev = _jitter(d["dev"]), np.load(CACHE)["label"]
    print(f"dev jitter medians: real {np.median(j_dev[y_dev == 0]):.3f}, fake {np.median(j_dev[y_dev == 1]):.3f}")

    def prep(e):  # identity removed: each clip's mean descriptor subtracted; x10 to unit-ish scale
        return torch.from_numpy(10 * (e - e.mean(1, keepdims=True))).float()

    class Seq(nn.Module):
        """(B, T, 128) -> (B,) fake logit."""

        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(128, 64, batch_first=True)
            self.head = nn.Linear(64, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0].mean(1)).squeeze(1)

    torch.manual_seed(seed)
    xtr, ytr = prep(d["train"]), torch.from_numpy(d["y_train"]).float()
    xva, yva = prep(d["val"]), d["y_val"]
    net, best = Seq(), (-1.0, None, 0)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    for epoch in range(60):
        net.train()
        for b in np.array_split(rng.permutation(len(xtr)), max(1, len(xtr) // 32)):
            loss = nn.functional.binary_cross_entropy_with_logits(net(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            auc = roc_auc(yva, net(xva).numpy())
        if auc > best[0]:
            best = (auc, {k: v.clone() for k, v in net.state_dict().items()}, epoch)
    net.load_state_dict(best[1])
    with torch.no_grad():
        pv, pdev = net(xva).numpy(), net(prep(d["dev"])).numpy()
    print(f"identity-free descriptor LSTM: best epoch {best[2]}, held-out synthetic clips "
          f"{auc_by_family(yva, pv, d['fam_val'])}")
    report("identity-free descriptor LSTM, dev set", pdev)
    report("descriptor jitter (unfitted), dev set", j_dev)


def build(pack: Path, batches: int) -> dict:
    stills, clips = load_pack(pack)
    train_pool, val_pool = _pool(stills, clips, "train"), _pool(stills, clips, "val")
    pc, cfg, rng = PackConfig(), TrainConfig(), np.random.default_rng(0)
    xs, ys = zip(*(pack_batch(train_pool, cfg, pc, rng) for _ in range(batches)))
    t0 = time.time()
    e_train = descriptors(np.concatenate(xs))
    print(f"{len(e_train)} training frames in {time.time() - t0:.0f} s", flush=True)
    xv, yv, fv = val_frames(val_pool, PackConfig(val_frames=300))
    dev = np.load(CACHE)["crops"]
    n, t = dev.shape[:2]
    return dict(train=e_train, y_train=np.concatenate(ys), val=descriptors(xv[:, 0]), y_val=yv, fam_val=fv,
                dev=descriptors(dev.reshape(n * t, *dev.shape[2:])).reshape(n, t, -1))


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from detector.training.evaluate import roc_auc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, default=ROOT / "data" / "pack")
    ap.add_argument("--batches", type=int, default=100, help="stage-1 batches of 32 frames to train the probe on")
    ap.add_argument("--rebuild", action="store_true", help=f"recompute {EMB_CACHE.name}")
    ap.add_argument("--clips", action="store_true", help="the temporal probe on stage-2 clips (see above)")
    ap.add_argument("--coherent", action="store_true", help="--clips with PackConfig.clip_coherent fakes")
    a = ap.parse_args()
    if not CACHE.is_file():
        sys.exit(f"{CACHE} not found: run `python research/devset_quick.py cache` first (needs data/devset)")
    if a.clips:
        return clips_probe(a.pack, coherent=a.coherent)
    if a.rebuild or not EMB_CACHE.is_file():
        np.savez(EMB_CACHE, **build(a.pack, a.batches))
    d = dict(np.load(EMB_CACHE))
    best = None
    for c in (1e-3, 1e-2, 1e-1, 1.0, 10.0):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(d["train"], d["y_train"])
        auc = roc_auc(d["y_val"], clf.decision_function(d["val"]))
        print(f"C={c:g}: held-out synthetic ROC-AUC {auc:.3f}")
        if best is None or auc > best[0]:
            best = (auc, c, clf)
    auc, c, clf = best
    per_family = auc_by_family(d["y_val"], clf.decision_function(d["val"]), d["fam_val"])
    print(f"chosen C={c:g} on held-out identities; per family {per_family}")
    n, t, k = d["dev"].shape
    p_dev = clf.decision_function(d["dev"].reshape(n * t, k)).reshape(n, t).mean(1)
    report(f"dlib-descriptor probe (C={c:g}), dev set", p_dev)
    report("descriptor jitter (unfitted), dev set", _jitter(d["dev"]))


if __name__ == "__main__":
    main()
