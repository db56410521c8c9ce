"""Paired comparison of two `evaluate --clips ... --json-out` reports on the same clips (user path).

Why: devset_quick compares models on cached crops; the figure a default is chosen by is the one through
analyze_video. Two reports of the same clip folder are joined on each clip's sha256 (a clip scored in one
and NO_FACE / failed in the other is left out and counted), and the difference of ROC-AUC is given with its
paired bootstrap interval, overall and per family (each family's fakes against every real clip).

    deepfake-forensics evaluate --clips data/devset --manifest ../shared/devset/MANIFEST.tsv --json-out A.json
    deepfake-forensics evaluate --clips data/devset ... --weights NEW.safetensors --json-out B.json
    python benchmarks/compare_evals.py A.json B.json          # B - A
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def scored(report: dict, key: str = "sha256") -> dict[str, dict]:
    """row[key] -> clip row, for the clips of `report` that have a p_fake. key "path" joins copies of the same
    clips that a re-encode gave new bytes (benchmarks/bench_reupload.py)."""
    return {c[key]: c for c in report["clips"] if c.get("p_fake") is not None}


def compare(a: dict, b: dict, n_boot: int = 2000,
            key: str = "sha256") -> list[tuple[str, int, int, float, float, float, float, float]]:
    """Rows (group, n_real, n_fake, auc_a, auc_b, diff, lo, hi): 'all', then each family; clips joined on `key`."""
    from detector.training.evaluate import roc_auc, roc_auc_diff_ci

    ra, rb = scored(a, key), scored(b, key)
    keys = sorted(set(ra) & set(rb))
    y = np.array([int(ra[k]["label"] == "fake") for k in keys])
    fam = np.array([ra[k].get("family") or ra[k]["label"] for k in keys])
    # the raw margin ranks clips exactly as the calibrated p_fake does, and does not saturate at 0 / 1
    pa = np.array([ra[k]["margin"] for k in keys], dtype=np.float64)
    pb = np.array([rb[k]["margin"] for k in keys], dtype=np.float64)
    rows = []
    groups = [("all", np.ones(len(keys), bool))]
    groups += [(f, (y == 0) | (fam == f)) for f in sorted(set(fam[y == 1]))]
    for name, m in groups:
        d, lo, hi = roc_auc_diff_ci(y[m], pa[m], pb[m], n_boot=n_boot)
        rows.append((name, int((y[m] == 0).sum()), int((y[m] == 1).sum()), roc_auc(y[m], pa[m]),
                     roc_auc(y[m], pb[m]), d, lo, hi))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="baseline report (evaluate --json-out)")
    ap.add_argument("b", type=Path, help="candidate report on the same clips")
    args = ap.parse_args(argv)
    a, b = (json.loads(p.read_text()) for p in (args.a, args.b))
    sa, sb = scored(a), scored(b)
    print(f"A = {a['weights']} ({a['weights_sha256'][:12]})\nB = {b['weights']} ({b['weights_sha256'][:12]})")
    print(f"clips scored in both: {len(sa.keys() & sb.keys())}; in one only (left out): {len(sa.keys() ^ sb.keys())}")
    for name, nr, nf, aa, ab, d, lo, hi in compare(a, b):
        print(f"  {name:20s} {nr:3d} real {nf:3d} fake  A {aa:.3f}  B {ab:.3f}  B-A {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    for r, s, name in ((a, sa, "A"), (b, sb, "B")):
        reals = [c for c in s.values() if c["label"] == "real"]
        flagged = sum(c["verdict"] == "FAKE" for c in reals)
        print(f"  {name}: real clips called FAKE {flagged}/{len(reals)} (threshold {r['threshold']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
