"""The adaptive frame count's error rate: how often a verdict the rule takes on the first 20 frames differs from
the verdict of all 60 (detector/adaptive.py), and how many clips it stops early.

Per clip of a folder with real/ and fake/ (or a manifest's clips): the calibrated p after the first read
(`AnalysisConfig(frames=20, adaptive=False)`, the same 20 frames the rule reads) and the 60-frame verdict
(`adaptive=False`, or taken from a `bench_model.py agree --out` file with `--full-from`). Then, for the shipped
rule (`RULE`) and a few other distances: clips stopped early and how many of those a full read would change.
`--fit` also prints `fit_distance` on these clips: only ever run it on VALIDATION clips (the dev set is
measured here, never fitted on).

    python benchmarks/bench_adaptive.py --clips data/devset --manifest ../shared/devset/MANIFEST.tsv \
        --full-from agree.jsonl [--out first20.jsonl]
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


def clips_of(a: argparse.Namespace) -> list[tuple[str, Path]]:
    """(key, path): the manifest's local_file (as bench_model.py keys it) or the path under --clips."""
    if a.manifest:
        out = []
        for r in csv.DictReader(open(a.manifest), delimiter="\t"):
            p = Path(r["local_file"])
            path = a.clips / (p.relative_to("clips") if p.parts[0] == "clips" else p)
            if path.is_file():
                out.append((r["local_file"], path))
        return out
    return [(str(p.relative_to(a.clips)), p) for p in sorted(a.clips.rglob("*")) if p.suffix.lower() in
            (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, required=True)
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--full-from", type=Path, help="60-frame verdicts: a bench_model.py agree --out file (fp32)")
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
        full = {}
        if a.full_from:
            full = {r["clip"]: r["fp32"]["verdict"] for r in map(json.loads, a.full_from.read_text().splitlines())}
        out = open(a.out, "w") if a.out else None
        rows = []
        for key, path in clips_of(a):
            first = analyze_video(path, AnalysisConfig(frames=adaptive.RULE.first, adaptive=False), detector=det)
            v60 = full.get(key) or analyze_video(path, AnalysisConfig(adaptive=False), detector=det).verdict
            rows.append({"clip": key, "p_first": first.p_fake, "verdict_first": first.verdict, "verdict_full": v60})
            if out:
                out.write(json.dumps(rows[-1]) + "\n")
                out.flush()
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
    if a.fit:
        print("fit_distance (max 1 % of early stops changed):", adaptive.fit_distance(pairs, th, lo))


if __name__ == "__main__":
    main()
