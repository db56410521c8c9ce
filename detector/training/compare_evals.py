"""Paired comparison of two `evaluate --clips ... --json-out` reports on the same clips (user path).

Why: devset_quick compares models on cached crops; the figure a default is chosen by is the one through
analyze_video. Two reports of the same clip folder are joined on each clip's sha256 (a clip scored in one
and NO_FACE / failed in the other is left out and counted), and the difference of ROC-AUC is given with its
paired bootstrap interval, overall and per family (each family's fakes against every real clip).

    deepfake-forensics evaluate --clips data/devset --manifest ../shared/devset/MANIFEST.tsv --json-out A.json
    deepfake-forensics evaluate --clips data/devset ... --weights NEW.safetensors --json-out B.json
    python -m detector.training.compare_evals A.json B.json          # B - A
    python -m detector.training.compare_evals A.json B.json --fuse max:0,1,2 --fuse sum:0.5,1

`--fuse RULE:V,...` asks instead whether B *added to* A helps: each rule makes a fused report from the two
margins (`fused`) and compares it with A. "max:c" = max(A, B - c): B raises a verdict only where it is surer
than A by more than c (a specialist that should stay silent on clips it does not know); "sum:w" = A + w * B.

`--at-fpr 0.03,0.1` adds the figure an analyst meets at a threshold: the fakes each model catches when its
threshold lets the same number of real clips through (floor(fpr x n_real) of them), with the paired bootstrap
interval of the difference. Why: two models with the same ROC-AUC can trade places at the low false-alarm end
where a product's threshold sits (issue 15, stop 35: a candidate +0.01 in ROC-AUC caught fewer fakes there).
`--cue-a NAME:W` / `--cue-b NAME:W` re-score a report at another weight of a measured cue (margin = the
network's margin + W x the cue's value; the centre only shifts every clip alike), from the same JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np



def scored(report: dict, key: str = "sha256") -> dict[str, dict]:
    """row[key] -> clip row, for the clips of `report` that have a p_fake. key "path" joins copies of the same
    clips that a re-encode gave new bytes (detector/training/reupload.py)."""
    return {c[key]: c for c in report["clips"] if c.get("p_fake") is not None}


def joined(a: dict, b: dict, key: str = "sha256") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The clips scored in both reports, sorted by `key`: y (N,) 1 = fake, family (N,), margins of a and b (N,)."""
    ra, rb = scored(a, key), scored(b, key)
    keys = sorted(set(ra) & set(rb))
    y = np.array([int(ra[k]["label"] == "fake") for k in keys])
    fam = np.array([ra[k].get("family") or ra[k]["label"] for k in keys])
    # the raw margin ranks clips exactly as the calibrated p_fake does, and does not saturate at 0 / 1
    ma = np.array([ra[k]["margin"] for k in keys], dtype=np.float64)
    mb = np.array([rb[k]["margin"] for k in keys], dtype=np.float64)
    return y, fam, ma, mb


def compare(a: dict, b: dict, n_boot: int = 2000,
            key: str = "sha256") -> list[tuple[str, int, int, float, float, float, float, float]]:
    """Rows (group, n_real, n_fake, auc_a, auc_b, diff, lo, hi): 'all', then each family; clips joined on `key`."""
    from detector.training.evaluate import roc_auc, roc_auc_diff_ci

    y, fam, pa, pb = joined(a, b, key)
    rows = []
    groups = [("all", np.ones(len(y), bool))]
    groups += [(f, (y == 0) | (fam == f)) for f in sorted(set(fam[y == 1]))]
    for name, m in groups:
        d, lo, hi = roc_auc_diff_ci(y[m], pa[m], pb[m], n_boot=n_boot)
        rows.append((name, int((y[m] == 0).sum()), int((y[m] == 1).sum()), roc_auc(y[m], pa[m]),
                     roc_auc(y[m], pb[m]), d, lo, hi))
    return rows


def fused(a: dict, b: dict, rule: str, value: float, key: str = "sha256") -> dict:
    """A report with a's clips scored in both and margin = max(m_a, m_b - value) ("max") or m_a + value * m_b
    ("sum"); verdicts are a's (the fused rule has no threshold of its own)."""
    if rule not in ("max", "sum"):
        raise ValueError(f"fuse rule must be max or sum, not {rule!r}")
    ra, rb = scored(a, key), scored(b, key)
    clips = []
    for k in sorted(set(ra) & set(rb)):
        ma, mb = ra[k]["margin"], rb[k]["margin"]
        clips.append({**ra[k], "margin": max(ma, mb - value) if rule == "max" else ma + value * mb})
    return {**a, "clips": clips}


def reweighted(report: dict, cue: str, weight: float) -> dict:
    """`report` with each scored clip's margin = model_margin + weight x cues[cue] (ranking only: no centre)."""
    clips = []
    for c in report["clips"]:
        if c.get("p_fake") is not None:
            if "model_margin" not in c or cue not in c.get("cues", {}):
                raise ValueError(f"{c.get('path', c['sha256'])}: no model_margin or cue {cue!r} in this report; "
                                 "evaluate with weights whose sidecar names the cue")
            c = {**c, "margin": c["model_margin"] + weight * c["cues"][cue]}
        clips.append(c)
    return {**report, "clips": clips}


def caught_at_fpr(y: np.ndarray, m: np.ndarray, fpr: float) -> tuple[int, float]:
    """(k, share of fakes caught) at the threshold just above the (k+1)-th highest real margin,
    k = floor(fpr x n_real): at most k real clips reach it. y: (N,) 1 = fake, m: (N,) margins."""
    real = np.sort(m[y == 0])[::-1]
    k = int(np.floor(fpr * len(real) + 1e-9))
    if k >= len(real):
        return k, 1.0
    return k, float((m[y == 1] > real[k]).mean())


def matched_fpr(a: dict, b: dict, fprs: list[float], n_boot: int = 2000, seed: int = 0,
                key: str = "sha256") -> list[tuple[float, int, int, float, float, float, float, float]]:
    """Rows (fpr, k, n_real, caught_a, caught_b, diff, lo, hi): share of fakes caught by each report at a
    threshold that lets k = floor(fpr x n_real) of the joined real clips through; paired percentile bootstrap
    of b - a (reals and fakes resampled separately, the same draw for both)."""
    from detector.training.evaluate import _boot_index

    y, _, ma, mb = joined(a, b, key)
    idx = _boot_index(y, n_boot, seed)
    rows = []
    for f in fprs:
        k, ca = caught_at_fpr(y, ma, f)
        _, cb = caught_at_fpr(y, mb, f)
        d = np.array([caught_at_fpr(y[i], mb[i], f)[1] - caught_at_fpr(y[i], ma[i], f)[1] for i in idx])
        rows.append((f, k, int((y == 0).sum()), ca, cb, cb - ca, float(np.quantile(d, 0.025)),
                     float(np.quantile(d, 0.975))))
    return rows


def _cue_arg(text: str) -> tuple[str, float]:
    name, _, w = text.rpartition(":")
    try:
        return name, float(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes NAME:W, e.g. mouth_detail_deficit:2 (not {text!r})") from None


def _fprs_arg(text: str) -> list[float]:
    try:
        fprs = [float(v) for v in text.split(",")]
    except ValueError:
        fprs = []
    if not fprs or not all(0 <= f < 1 for f in fprs):
        raise argparse.ArgumentTypeError(f"takes shares of real clips in [0, 1), e.g. 0.05,0.1 (not {text!r})")
    return fprs


def _print_matched(a: dict, b: dict, fprs: list[float], name: str = "B") -> None:
    for f, k, nr, ca, cb, d, lo, hi in matched_fpr(a, b, fprs):
        print(f"  at {k}/{nr} real clips flagged (fpr {f:g}): fakes caught A {ca:.3f}  {name} {cb:.3f}  "
              f"{name}-A {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")


def _fuse_arg(text: str) -> tuple[str, list[float]]:
    rule, _, values = text.partition(":")
    try:
        return rule, [float(v) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fuse takes RULE:V[,V...], e.g. max:0,1,2 (not {text!r})") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="baseline report (evaluate --json-out)")
    ap.add_argument("b", type=Path, help="candidate report on the same clips")
    ap.add_argument("--fuse", type=_fuse_arg, action="append", default=[], metavar="RULE:V,...",
                    help="compare A with A fused with B (max:c = max(A, B - c); sum:w = A + w * B) instead of B")
    ap.add_argument("--at-fpr", type=_fprs_arg, default=[], metavar="F,...",
                    help="also compare the fakes caught at thresholds that let the same share of reals through")
    ap.add_argument("--cue-a", type=_cue_arg, metavar="NAME:W", help="re-score A at cue weight W (ranking only)")
    ap.add_argument("--cue-b", type=_cue_arg, metavar="NAME:W", help="re-score B at cue weight W (ranking only)")
    args = ap.parse_args(argv)
    a, b = (json.loads(p.read_text()) for p in (args.a, args.b))
    try:
        a = reweighted(a, *args.cue_a) if args.cue_a else a
        b = reweighted(b, *args.cue_b) if args.cue_b else b
    except ValueError as e:
        raise SystemExit(f"compare_evals: {e}") from None
    sa, sb = scored(a), scored(b)
    print(f"A = {a['weights']} ({a['weights_sha256'][:12]})\nB = {b['weights']} ({b['weights_sha256'][:12]})")
    print(f"clips scored in both: {len(sa.keys() & sb.keys())}; in one only (left out): {len(sa.keys() ^ sb.keys())}")
    if args.fuse:
        for rule, values in args.fuse:
            for v in values:
                print(f"fused = {rule}:{v:g} (against A)")
                f = fused(a, b, rule, v)
                for name, nr, nf, aa, ab, d, lo, hi in compare(a, f):
                    print(f"  {name:20s} {nr:3d} real {nf:3d} fake  A {aa:.3f}  fused {ab:.3f}  "
                          f"fused-A {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
                _print_matched(a, f, args.at_fpr, "fused")
        return 0
    for name, nr, nf, aa, ab, d, lo, hi in compare(a, b):
        print(f"  {name:20s} {nr:3d} real {nf:3d} fake  A {aa:.3f}  B {ab:.3f}  B-A {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    _print_matched(a, b, args.at_fpr)
    for r, s, name, cue in ((a, sa, "A", args.cue_a), (b, sb, "B", args.cue_b)):
        if cue:  # the stored verdicts were made at the sidecar's weight, not at the re-scored one
            print(f"  {name}: re-scored at {cue[0]} weight {cue[1]:g}, so no verdict counts (evaluate again at it)")
            continue
        reals = [c for c in s.values() if c["label"] == "real"]
        flagged = sum(c["verdict"] == "FAKE" for c in reals)
        print(f"  {name}: real clips called FAKE {flagged}/{len(reals)} (threshold {r['threshold']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
