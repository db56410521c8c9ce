"""The adaptive frame count's error rate: how often a verdict the rule takes on the first 20 frames differs from
the verdict of all 60 (detector/adaptive.py), and how many clips it stops early.

Per clip of a folder with real/ and fake/ (or a manifest's clips), one `analyze_video(adaptive=True)` with a
rule that never stops: the calibrated p after the first read (`sampling.adaptive.p_fake_first`, every third of
the 60 frames with its own face tracks, what the rule reads) and the verdict of all 60 (the same report: a read
that does not stop is a plain run's, tests/test_pipeline_adaptive.py). Then, for the shipped rule (`RULE`) and a
few other distances: clips stopped early and how many of those a full read would change.
`--fit` also prints `fit_distance` on these clips: only ever run it on VALIDATION clips (the dev set is
measured here, never fitted on).

    python benchmarks/bench_adaptive.py --clips data/val_all --fit [--out first20.jsonl]
    python benchmarks/bench_adaptive.py --clips data/devset --manifest ../shared/devset/MANIFEST.tsv --out dev.jsonl

Each row also keeps its label and the 60-frame p, so the ROC-AUC of every frame and of the shipped rule are
printed side by side.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector import adaptive  # noqa: E402
from detector import calibration as cal  # noqa: E402
from detector.machine import cpu_name  # noqa: E402
from detector.pipeline import AnalysisConfig, analyze_video, get_detector  # noqa: E402


def clips_of(a: argparse.Namespace) -> list[tuple[str, Path, int]]:
    """(key, path, label 1 = fake): the manifest's local_file (as bench_model.py keys it) or the path under
    --clips, whose first folder is real/ or fake/."""
    if a.manifest:
        out = []
        for r in csv.DictReader(open(a.manifest), delimiter="\t"):
            p = Path(r["local_file"])
            path = a.clips / (p.relative_to("clips") if p.parts[0] == "clips" else p)
            if path.is_file():
                out.append((r["local_file"], path, int(r["label"] == "fake")))
        return out
    videos = [p for p in sorted(a.clips.rglob("*")) if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm",
                                                                             ".mpg")]
    return [(str(p.relative_to(a.clips)), p, int(p.relative_to(a.clips).parts[0] == "fake")) for p in videos]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, required=True)
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--from-jsonl", type=Path, help="summarise a finished --out file (no model run)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--fit", action="store_true", help="print fit_distance on these clips (validation only)")
    a = ap.parse_args()
    det = get_detector()
    band = cal.band(det.spec.calibration)
    th = float(det.spec.calibration["threshold"])
    lo = band[0] if band else None
    if a.from_jsonl:
        rows = [json.loads(x) for x in a.from_jsonl.read_text().splitlines() if x.strip()]
    else:
        out = open(a.out, "w") if a.out else None
        rows = []
        shipped, adaptive.RULE = adaptive.RULE, dataclasses.replace(adaptive.RULE, distance=float("inf"))
        for key, path, label in clips_of(a):
            r = analyze_video(path, AnalysisConfig(adaptive=True), detector=det)
            block = r.sampling.get("adaptive") or {}
            rows.append({"clip": key, "label": label, "p_first": block.get("p_fake_first"), "p_full": r.p_fake,
                         "verdict_full": r.verdict,
                         "model_first_s": r.timings_s.get("model_first_read"), "model_rest_s": r.timings_s["model"],
                         "total_s": r.timings_s["total"]})
            if out:
                out.write(json.dumps(rows[-1]) + "\n")
                out.flush()
        adaptive.RULE = shipped
    print(f"CPU {cpu_name()}; {len(rows)} clips of {a.clips}; threshold {th:.3f}, band low {lo}")
    pairs = [(r["p_first"], r["verdict_full"]) for r in rows]
    for d in sorted({adaptive.RULE.distance, 0.0, 0.5, 1.0, 1.5, 3.0}):
        rule = dataclasses.replace(adaptive.RULE, distance=d)
        early = [(adaptive.early_verdict(p, th, lo, rule), v) for p, v in pairs]
        stopped = [(e, v) for e, v in early if e is not None]
        flips = sum(e != v for e, v in stopped)
        mark = "  <- shipped RULE" if d == adaptive.RULE.distance else ""
        print(f"distance {d:3.1f}: {len(stopped)}/{len(rows)} clips stop at {rule.first} frames; a full read "
              f"changes {flips} of them ({flips / max(1, len(stopped)):.1%}; "
              f"{flips / max(1, len(rows)):.1%} of all clips){mark}")
    timed = [r for r in rows if r.get("model_first_s") is not None]
    if timed:  # model-pass seconds: the first read's crops, then the rest's (each crop through the trunk once)
        rule = adaptive.RULE
        spent = sum(r["model_first_s"] + (0 if adaptive.early_verdict(r["p_first"], th, lo, rule) else
                                          r["model_rest_s"]) for r in timed)
        full = sum(r["model_first_s"] + r["model_rest_s"] for r in timed)
        print(f"model pass with the shipped rule: {spent:.1f} s against {full:.1f} s for every frame of the "
              f"{len(timed)} clips ({spent / full:.2f}x; decode and faces are the same either way)")
    ranked = [r for r in rows if r.get("p_full") is not None and "label" in r]
    if ranked and len({r["label"] for r in ranked}) == 2:  # ROC-AUC of what each clip reports, full vs the rule
        from sklearn.metrics import roc_auc_score

        y = [r["label"] for r in ranked]
        ruled = [r["p_first"] if adaptive.early_verdict(r["p_first"], th, lo, adaptive.RULE) else r["p_full"]
                 for r in ranked]
        full_auc = roc_auc_score(y, [r["p_full"] for r in ranked])
        print(f"ROC-AUC over {len(ranked)} clips with a face: every frame {full_auc:.4f}, with the shipped rule "
              f"{roc_auc_score(y, ruled):.4f}")
    if a.fit:
        print("fit_distance (max 1 % of early stops changed):", adaptive.fit_distance(pairs, th, lo))


if __name__ == "__main__":
    main()
