"""Does the verdict survive a re-upload? The dev set re-encoded, each copy through the product (dev tool).

An analyst rarely gets the file a generator wrote: a clip reaches them after a platform re-encoded it,
often smaller. The model's strongest cue is the finest grain of a frame against the next one (the residual
stream), which is exactly what a lossy encoder smooths. So each dev-set clip is re-encoded with H.264
(libx264 from imageio-ffmpeg, no audio) under a few conditions and scored through `evaluate_clips`
(analyze_video, the product's default frame count, the bundled calibration):

    crf23     libx264 -crf 23 (ffmpeg's default quality), same size
    crf32     -crf 32: visibly soft, what a strong platform re-encode does to detail
    crf40     -crf 40: heavy blocking, the worst a viewer would still watch
    360p      height scaled to 360 px (if taller), -crf 28: a typical "data saver" / messenger copy

For every condition: ROC-AUC with its paired bootstrap difference against the clips as published (joined on
their path), the median shift of the fake-real logit margin of real and of fake clips, and the verdicts at
the calibrated threshold: real clips called FAKE, fakes called FAKE, and how many verdicts changed.

    python -m detector.training.reupload                       # all conditions (~45 min on 2 busy cores, stop 30)
    python -m detector.training.reupload --conditions crf32    # one
    python -m detector.training.reupload --weights runs/x/out/X.safetensors   # another model, same copies

Writes data/reupload/<condition>/{real,fake}/... (ignored; the dev set is never committed) and
data/eval/reupload/<weights>/<condition>.json (evaluate's reports, resumable). Never train on the dev set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

DEVSET = ROOT / "data" / "devset"
MANIFEST = ROOT.parent / "shared" / "devset" / "MANIFEST.tsv"
# Always even sizes (yuv420p needs them); 360p keeps the aspect ratio and never upscales.
EVEN = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
CONDITIONS = {
    "crf23": ["-crf", "23", "-vf", EVEN],
    "crf32": ["-crf", "32", "-vf", EVEN],
    "crf40": ["-crf", "40", "-vf", EVEN],
    "360p": ["-crf", "28", "-vf", "scale=-2:'2*trunc(min(360,ih)/2)'"],
}


def reencode(src: Path, dst: Path, args: list[str]) -> None:
    """src re-encoded to dst (H.264 in an MP4 container whatever dst's suffix: the manifest joins on the
    file's relative path, and the decoder reads the container, not the name)."""
    import imageio_ffmpeg

    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-an", "-c:v", "libx264",
           "-preset", "veryfast", "-pix_fmt", "yuv420p", *args, "-f", "mp4", str(dst)]
    subprocess.run(cmd, check=True)


def paired(base: dict, new: dict) -> dict:
    """Figures of `new` against `base` on the clips scored in both (joined on path): the paired AUC rows of
    compare_evals.compare, the median margin shift and the verdicts at each report's threshold."""
    from detector.training.compare_evals import compare, scored

    a, b = scored(base, "path"), scored(new, "path")
    keys = sorted(a.keys() & b.keys())
    y = np.array([a[k]["label"] == "fake" for k in keys], int)
    ma, mb = (np.array([d[k]["margin"] for k in keys]) for d in (a, b))
    va, vb = ([d[k]["verdict"] for k in keys] for d in (a, b))
    rows = {name: {"roc_auc_base": auc_a, "roc_auc": auc_b, "diff": d, "diff_ci95": [lo, hi]}
            for name, _, _, auc_a, auc_b, d, lo, hi in compare(base, new, key="path")}
    out = {"n": len(keys), "lost": sorted((a.keys() | b.keys()) - set(keys)), **rows.pop("all"),
           "median_margin_shift": {lab: float(np.median((mb - ma)[y == i])) for i, lab in enumerate(("real", "fake"))},
           "fake_verdicts": {lab: [int(sum(v == "FAKE" for v, t in zip(vs, y) if t == i)) for vs in (va, vb)]
                             for i, lab in enumerate(("real", "fake"))},
           "n_real": int((y == 0).sum()), "n_fake": int(y.sum()),
           "verdicts_changed": int(sum(x != z for x, z in zip(va, vb)))}
    out["per_family"] = {f: {k: v for k, v in r.items() if k != "roc_auc_base"} for f, r in rows.items()}
    return out


def line(name: str, r: dict) -> str:
    (r0, r1), (f0, f1) = r["fake_verdicts"]["real"], r["fake_verdicts"]["fake"]
    fam = ", ".join(f"{f} {v['roc_auc']:.3f} ({v['diff']:+.3f})" for f, v in r["per_family"].items())
    return (f"{name:7s} n {r['n']:3d}  ROC-AUC {r['roc_auc']:.3f} vs {r['roc_auc_base']:.3f} as published: "
            f"{r['diff']:+.3f} [{r['diff_ci95'][0]:+.3f}, {r['diff_ci95'][1]:+.3f}] | margin shift real "
            f"{r['median_margin_shift']['real']:+.2f} fake {r['median_margin_shift']['fake']:+.2f} | FAKE on real "
            f"{r0}->{r1} of {r['n_real']}, on fakes {f0}->{f1} of {r['n_fake']}, verdicts changed "
            f"{r['verdicts_changed']} | {fam}" + (f" | lost {len(r['lost'])}" if r["lost"] else ""))


def main(argv: list[str] | None = None) -> int:
    from detector.training.evaluate_clips import evaluate_clips, find_clips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--work", type=Path, default=ROOT / "data" / "reupload")
    ap.add_argument("--weights", type=Path, default=None, help="weights file (default: the bundled default)")
    ap.add_argument("--reports", type=Path, default=None,
                    help="evaluate's reports (default: data/eval/reupload/<weights file name>/)")
    ap.add_argument("--frames", type=int, default=None, help="frames a clip (default: the product's)")
    ap.add_argument("--json-out", type=Path, help="all conditions' figures in one JSON")
    args = ap.parse_args(argv)
    from detector.weights import DEFAULT_WEIGHTS

    weights = args.weights or DEFAULT_WEIGHTS
    args.reports = args.reports or ROOT / "data" / "eval" / "reupload" / Path(weights).stem
    if not args.devset.is_dir():
        ap.error(f"{args.devset}: no dev set; restore it first (docs/training.md, 'Evaluate and calibrate')")
    args.reports.mkdir(parents=True, exist_ok=True)
    clips = find_clips(args.devset)

    def report(name: str, root: Path) -> dict:
        return evaluate_clips(root, args.manifest, args.reports / f"{name}.json", weights=weights, frames=args.frames,
                              progress=False)

    base = report("published", args.devset)
    results = {}
    for name in args.conditions:
        for rel, _ in clips:
            dst = args.work / name / rel
            if not dst.is_file():
                reencode(args.devset / rel, dst, CONDITIONS[name])
        results[name] = paired(base, report(name, args.work / name))
        print(line(name, results[name]), flush=True)
    if args.json_out:
        head = {"weights": base["weights"], "weights_sha256": base["weights_sha256"], "frames": base["frames"],
                "precision": base["precision"], "conditions": {k: " ".join(CONDITIONS[k]) for k in results}}
        args.json_out.write_text(json.dumps(head | {"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
