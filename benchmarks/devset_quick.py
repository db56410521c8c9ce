"""Quick dev-set check for choosing a recipe or a checkpoint while a run trains (never for training).

The full, user-path figure is `deepfake-forensics evaluate --clips data/devset --manifest ...` (every clip
through analyze_video). This tool caches the main face track of each dev-set clip once (the product's own
face path: detector.training.prepare.clip_crops, T evenly spread frames) and then scores any weights
file (clip p_fake from the LSTM) or a stage-1 checkpoint (mean frame logit of backbone + frame head) in
seconds, per family. It reads data/devset (restored, never committed) and ../shared/devset/MANIFEST.tsv.

    python benchmarks/devset_quick.py cache                      # once: data/devset_crops.npz
    python benchmarks/devset_quick.py score weights/X.safetensors runs/pack1/stage1_best.pt ...
    python benchmarks/devset_quick.py compare weights/DEFAULT.safetensors runs/pack4/out/NEW.safetensors

Every AUC comes with its 95 % bootstrap interval, and `compare` gives the paired interval of the
difference: with 36 real and 38 fake clips, a change of a few hundredths is noise.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "data" / "devset_crops.npz"
MANIFEST = ROOT.parent / "shared" / "devset" / "MANIFEST.tsv"


def cache(devset: Path, frames: int) -> None:
    from detector.training.prepare import clip_crops

    rows = list(csv.DictReader(open(MANIFEST), delimiter="\t"))
    crops, keep = [], []
    for i, r in enumerate(rows):
        path = devset / r["local_file"].removeprefix("clips/")
        c = clip_crops(str(path), frames)
        print(f"{i + 1}/{len(rows)} {path.name}: {'no face' if c is None else 'ok'}", flush=True)
        if c is not None:
            crops.append(c)
            keep.append(r)
    np.savez(CACHE, crops=np.stack(crops), label=np.array([int(r["label"] == "fake") for r in keep]),
             family=np.array([r["family"] for r in keep]), method=np.array([r["method"] for r in keep]),
             path=np.array([r["local_file"] for r in keep]))


@torch.no_grad()
def score(target: str) -> np.ndarray:
    """p_fake per cached clip from a weights file (.safetensors) or a stage-1 checkpoint (.pt)."""
    from detector.model import build_model
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    d = np.load(CACHE)
    x = torch.from_numpy(d["crops"]).permute(0, 1, 4, 2, 3).contiguous()  # (N, T, 3, S, S) uint8
    if target.endswith(".safetensors"):
        model, _ = load_weights(target)
        return np.concatenate([torch.softmax(model(x[i:i + 8]), -1)[:, 1].numpy() for i in range(0, len(x), 8)])
    s = torch.load(target, map_location="cpu", weights_only=True)
    _, spec = load_weights(DEFAULT_WEIGHTS)
    model = build_model(spec).eval()
    model.backbone.load_state_dict(s["backbone"])
    head = torch.nn.Linear(model.backbone.num_features, 2)
    head.load_state_dict(s["head"])
    out = []
    for clip in x:
        logits = head(model.frame_features(clip))  # (T, 2)
        out.append(torch.softmax(logits.mean(0), -1)[1].item())
    return np.array(out)


def report(name: str, p: np.ndarray) -> None:
    from detector.training.evaluate import roc_auc, roc_auc_ci

    d = np.load(CACHE)
    y, fam = d["label"], d["family"]
    real = y == 0
    lo, hi = roc_auc_ci(y, p)
    line = (f"{name}: AUC {roc_auc(y, p):.3f} [95% CI {lo:.2f}-{hi:.2f}] | real median p {np.median(p[real]):.3f}, "
            f"FAKE@0.5 {(p[real] >= 0.5).mean():.0%} of {real.sum()} | fake FAKE@0.5 {(p[~real] >= 0.5).mean():.0%}")
    for f in sorted(set(fam[~real])):
        m = real | (fam == f)
        line += f" | {f} {roc_auc(y[m], p[m]):.3f}"
    print(line, flush=True)


def compare(p_old: np.ndarray, p_new: np.ndarray, name: str) -> None:
    """Paired bootstrap of the AUC difference on the same clips, overall and per family."""
    from detector.training.evaluate import roc_auc_diff_ci

    d = np.load(CACHE)
    y, fam = d["label"], d["family"]
    rows = [("all", np.ones(len(y), bool))] + [(f, (y == 0) | (fam == f)) for f in sorted(set(fam[y == 1]))]
    for g, m in rows:
        diff, lo, hi = roc_auc_diff_ci(y[m], p_old[m], p_new[m])
        print(f"{name} | {g}: AUC difference {diff:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}]"
              + (" (no evidence of a difference)" if lo <= 0 <= hi else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--devset", type=Path, default=ROOT / "data" / "devset")
    c.add_argument("--frames", type=int, default=20)
    s = sub.add_parser("score")
    s.add_argument("targets", nargs="+")
    c = sub.add_parser("compare", help="paired bootstrap interval of AUC(new) - AUC(old), overall and per family")
    c.add_argument("old")
    c.add_argument("new")
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.cmd == "cache":
        cache(a.devset, a.frames)
    elif a.cmd == "compare":
        compare(score(a.old), score(a.new), f"{Path(a.new).name} - {Path(a.old).name}")
    else:
        for t in a.targets:
            report(Path(t).name, score(t))


if __name__ == "__main__":
    main()
