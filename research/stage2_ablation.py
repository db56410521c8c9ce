"""Which stage-2 families (and which sharpness matching) help on the dev set, with the backbone frozen?

Why: stage 2 (LSTM + head on cached backbone features) takes a minute to train, stage 1 most of an hour,
so the cheap question comes first: given a backbone, does the choice of fake clips it learns from move the
dev-set figure? The tool caches the backbone's features of the stage-2 clips (train_pack.clip_set, the
same construction and seeds as `train-pack`) and of the dev set's cached crops (`devset_quick.py cache`),
then retrains the LSTM + head from scratch on each subset of families (each fake clip stays paired with its
real clip; early stopping on held-out identities of the same families) and prints held-out synthetic and
dev-set ROC-AUC per family. The dev set is never trained on; it only reads the result.

    python research/stage2_ablation.py [--weights W.safetensors] [--match centre|regions] \
        [--only animate,region,resynth,sbi] [--seeds 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE, report  # noqa: E402

from detector.training.families import MATCH_BY_NAME  # noqa: E402
from detector.training.loop import TrainConfig, cache_features, train_sequence  # noqa: E402
from detector.training.train_pack import PackConfig, auc_by_family, clip_set  # noqa: E402
from detector.weights import DEFAULT_WEIGHTS, load_weights  # noqa: E402


def _features(model, pack: Path, match: bool | str, cache: Path, motion: float = 1.0, coherent: bool = False) -> dict:
    """Backbone features (N, T, C) fp32 of the train/val stage-2 clips, with labels and families, cached in
    `cache` (.npz of plain arrays: nothing that needs a pickle to read back)."""
    if not cache.is_file():
        _cache_features(model, pack, match, cache, motion, coherent)
    with np.load(cache) as z:
        return {k: torch.from_numpy(z[k]) if k in ("ftr", "fva") else z[k] for k in z.files}


def _cache_features(model, pack: Path, match: bool | str, cache: Path, motion: float = 1.0,
                    coherent: bool = False) -> None:
    from detector.training.pack import load_pack

    stills, clips = load_pack(pack)
    t = int(clips["crops"].shape[1])
    pc = PackConfig(clip_match=match, pseudo_motion=motion, clip_coherent=coherent)
    xtr, ytr, ftr, _ = clip_set(stills, clips, "train", pc.pseudo_train, pc, t, seed=1)  # train_pack: cfg.seed + 1
    xva, yva, fva, _ = clip_set(stills, clips, "val", pc.pseudo_val, pc, t, seed=2)
    np.savez(cache, ftr=cache_features(model, xtr, "cpu").numpy(), ytr=ytr, famtr=ftr,
             fva=cache_features(model, xva, "cpu").numpy(), yva=yva, famva=fva)


def _pairs(fams: np.ndarray, keep: list[str] | None) -> np.ndarray:
    """Row indices of the (real, fake) pairs whose fake is in `keep` (clip_set: row 2k real, 2k + 1 fake)."""
    k = np.flatnonzero(np.ones(len(fams) // 2, bool) if keep is None else np.isin(fams[1::2], keep))
    return np.stack([2 * k, 2 * k + 1], 1).ravel()


@torch.no_grad()
def _p_fake(model, feats: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.softmax(model.forward_head(feats), -1)[:, 1].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--pack", type=Path, default=ROOT / "data" / "pack")
    ap.add_argument("--match", default="centre", choices=["centre", "regions"])
    ap.add_argument("--only", default="animate,region,resynth,sbi", help="families to train alone, comma-separated")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--pseudo-motion", type=float, default=1.0,
                    help="movement of the still pseudo-clips and their animate fakes (PackConfig.pseudo_motion)")
    ap.add_argument("--coherent", action="store_true",
                    help="fake clips without per-frame flicker or jitter (PackConfig.clip_coherent)")
    a = ap.parse_args()
    if not CACHE.is_file():
        sys.exit(f"{CACHE} not found: run `python research/devset_quick.py cache` first (needs data/devset)")
    model, spec = load_weights(a.weights)
    motion = ("" if a.pseudo_motion == 1.0 else f"_motion{a.pseudo_motion:g}") + ("_coherent" if a.coherent else "")
    z = _features(model, a.pack, MATCH_BY_NAME[a.match],
                  ROOT / "data" / f"stage2_feats_{spec.weights_sha256[:12]}_{a.match}{motion}.npz", a.pseudo_motion,
                  a.coherent)
    dev = cache_features(model, np.load(CACHE)["crops"], "cpu")
    report(f"{spec.name} as shipped", _p_fake(model, dev))
    run = ROOT / "data" / "stage2_ablation_run"  # train_sequence's per-epoch log
    run.mkdir(parents=True, exist_ok=True)
    start = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("lstm.", "head."))}
    subsets = {"all families": None, **{f"only {f}": [f] for f in a.only.split(",") if f}}
    for name, keep in subsets.items():
        for seed in map(int, a.seeds.split(",")):
            model.load_state_dict(start, strict=False)
            torch.manual_seed(seed)
            model.lstm.reset_parameters()
            model.head.reset_parameters()
            tr, va = _pairs(z["famtr"], keep), _pairs(z["famva"], keep)
            t0 = time.time()
            r = train_sequence(model, ((z["ftr"][tr], z["ytr"][tr]), (z["fva"][va], z["yva"][va])),
                               run, TrainConfig(seed=seed), "cpu")
            val = auc_by_family(z["yva"], _p_fake(model, z["fva"]), z["famva"])
            print(f"[{a.match}] {name}, seed {seed}: {r['epochs']} epochs, {time.time() - t0:.0f} s; held-out "
                  f"synthetic (every family) {val['all']:.3f}", flush=True)
            report(f"  dev set, {name}", _p_fake(model, dev))


if __name__ == "__main__":
    main()
