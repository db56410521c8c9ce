"""How much weight a measured cue (detector/cues.py) should get in the verdict: validation and dev set side by side.

Reads `evaluate --clips ... --json-out` files of weights whose sidecar carries the cue: each scored row holds
the network's own margin (`model_margin`) and the cue's value (`cues`), so every weight w can be scored
without running a model again: margin(w) = model_margin + w * (value - centre) (the centre only shifts every
clip alike, so ROC-AUC ignores it). Prints, per weight, ROC-AUC and the paired bootstrap difference against
w = 0 (the network alone) on validation and on the dev set, per family; then on the dev set a
leave-one-source-out choice of w (each source's clips scored with the w that is best without them), which
says how much of the dev-set gain comes from having chosen w on the same clips.

    python -m detector.training.cue_weight --val data/eval/s32/val_cue.json --dev data/eval/s32/dev_cue.json \\
        --manifest ../shared/devset/MANIFEST.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


from detector.training.evaluate import roc_auc, roc_auc_diff_ci  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def load(path: Path, cue: str) -> dict[str, np.ndarray]:
    """Scored rows of an evaluate JSON -> arrays: y (1 = fake), model margin, cue value, family, path."""
    rows = [r for r in json.loads(path.read_text())["clips"] if r["status"] == "scored"]
    missing = [r["path"] for r in rows if cue not in r.get("cues", {})]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} rows lack the cue {cue!r} (e.g. {missing[0]}); evaluate them with "
                         "weights whose sidecar names it")
    return {"y": np.array([r["label"] == "fake" for r in rows], int),
            "m": np.array([r["model_margin"] for r in rows], float),
            "c": np.array([r["cues"][cue] for r in rows], float),
            "family": np.array([r.get("family", "?") for r in rows]),
            "path": np.array([r["path"] for r in rows])}


def sweep(d: dict[str, np.ndarray], weights=WEIGHTS) -> list[dict]:
    """Per weight: ROC-AUC, the paired difference against w = 0 with its 95 % interval, per-family AUCs."""
    y, m, c, fam = d["y"], d["m"], d["c"], d["family"]
    out = []
    for w in weights:
        s = m + w * c
        diff, lo, hi = roc_auc_diff_ci(y, m, s)
        fams = {f: roc_auc(y[(y == 0) | (fam == f)], s[(y == 0) | (fam == f)]) for f in sorted(set(fam[y == 1]))}
        out.append({"w": w, "auc": roc_auc(y, s), "diff": diff, "ci": (lo, hi), "families": fams})
    return out


def leave_one_source_out(d: dict[str, np.ndarray], source: np.ndarray,
                         grid=np.arange(0, 4.01, 0.25)) -> tuple[float, list]:
    """Pooled ROC-AUC when each source's clips are scored with the weight that is best on the other sources."""
    y, m, c = d["y"], d["m"], d["c"]
    scores, chosen = np.empty(len(y)), []
    for s in sorted(set(source)):
        rest = source != s
        w = max(grid, key=lambda w: roc_auc(y[rest], m[rest] + w * c[rest]))
        chosen.append(float(w))
        scores[~rest] = m[~rest] + w * c[~rest]
    return roc_auc(y, scores), chosen


def sources(d: dict[str, np.ndarray], manifest: Path) -> np.ndarray:
    """The dev set's repository per clip (MANIFEST.tsv `repo`, keyed by local_file without `clips/`)."""
    rows = {r["local_file"].removeprefix("clips/"): r["repo"] for r in csv.DictReader(open(manifest), delimiter="\t")}
    return np.array([rows[p] for p in d["path"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, help="dev-set MANIFEST.tsv, for the leave-one-source-out choice")
    ap.add_argument("--cue", default="mouth_detail_deficit")
    ap.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS),
                    help="comma-separated weights to score; the leave-one-source-out grid runs to the largest")
    a = ap.parse_args()
    weights = tuple(float(w) for w in a.weights.split(","))
    sets = {"validation": load(a.val, a.cue), "dev set": load(a.dev, a.cue)}
    for name, d in sets.items():
        real = d["c"][d["y"] == 0]
        print(f"{name}: {len(d['y'])} clips; cue on real clips median {np.median(real):.3f}, "
              f"90th percentile {np.percentile(real, 90):.3f}; cue alone ROC-AUC {roc_auc(d['y'], d['c']):.3f}")
        for r in sweep(d, weights):
            fams = " ".join(f"{f} {v:.3f}" for f, v in r["families"].items())
            lo, hi = r["ci"]
            print(f"  w {r['w']:<4g} ROC-AUC {r['auc']:.3f}  vs w=0 {r['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]  | {fams}")
    if a.manifest:
        grid = np.arange(0, max(max(weights), 4.0) + 0.01, 0.25)
        auc, chosen = leave_one_source_out(sets["dev set"], sources(sets["dev set"], a.manifest), grid)
        print(f"dev set, w chosen with each of {len(chosen)} sources left out: pooled ROC-AUC {auc:.3f} "
              f"(weights chosen {min(chosen):g}-{max(chosen):g}, median {np.median(chosen):g})")


if __name__ == "__main__":
    main()
