"""Deletion test: do the explanations point at what the model actually uses?

Temporal (RLNet-style deletion): replace the top-k frames by temporal importance (k = 1, 3, 5) with
their nearest non-selected neighbour frame and record the drop in p_fake; compare with k random frames
(mean over --draws draws). Because the backbone sees each frame alone (eval mode), replacing a frame's
crop by its neighbour's is exactly replacing its feature vector, so this runs on cached features and
only the LSTM + head are re-evaluated (cheap; exact).

Spatial (Grad-CAM deletion, after Petsiuk et al. 2018 "RISE" deletion metric): blur (Gaussian, sigma 4)
the top 20% Grad-CAM pixels of every frame's crop vs a random 20% of the pixels (i.i.d. per pixel),
and record the drop in p_fake. This needs the backbone again per draw, so it uses
min(--draws, --spatial-draws) random draws.

Scores are the fake-vs-real logit margin (logit_fake - logit_real) by default: p_fake saturates at 1.000
on confident fakes, where every deletion "drops" it by 0 and the ratio is noise (seen with the trained
model); `--score p_fake` measures probabilities instead.
A drop is score(original) - score(modified); ratio = top drop / random drop (> 1: the explanation
found what matters more than chance). With random weights (the bundled untrained model) expect ~1.

Run:  python benchmarks/bench_faithfulness.py [--clips a.mp4 dir/ ...] [--frames 20] [--draws 50]
          [--json-out faithfulness.json]
Default clips: tests/fixtures/*.mp4, else one SBI fake synthesised from a GRID clip (detector.training.synth).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid"
KS = (1, 3, 5)
SIGMA = 4.0
AREA = 0.2


def nearest_unselected(t: int, selected: set[int], n: int) -> int:
    """The closest frame index to t that is not selected (earlier wins a tie); t itself if all are."""
    for d in range(1, n):
        for j in (t - d, t + d):
            if 0 <= j < n and j not in selected:
                return j
    return t


def delete_frames(feats: torch.Tensor, selected: list[int]) -> torch.Tensor:
    """feats (1, T, C): each selected frame replaced by its nearest non-selected neighbour's features."""
    out, sel, n = feats.clone(), set(selected), feats.shape[1]
    for t in selected:
        out[:, t] = feats[:, nearest_unselected(t, sel, n)]
    return out


def blur_mask(crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """crops uint8 (T, h, w, 3) RGB, masks bool (T, h, w): masked pixels replaced by a sigma-4 blur."""
    out = crops.copy()
    for t, (c, m) in enumerate(zip(crops, masks)):
        b = cv2.GaussianBlur(c, (0, 0), SIGMA)
        out[t][m] = b[m]
    return out


def top_mask(maps: np.ndarray, area: float = AREA) -> np.ndarray:
    """bool (T, h, w): the `area` fraction of highest-valued pixels of each frame's map."""
    flat = maps.reshape(len(maps), -1)
    k = max(1, int(round(area * flat.shape[1])))
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    m = np.zeros_like(flat, dtype=bool)
    np.put_along_axis(m, idx, True, axis=1)
    return m.reshape(maps.shape)


def _clips(args) -> list[Path]:
    from detector.video import VIDEO_EXTENSIONS

    if args.clips:
        out = []
        for p in map(Path, args.clips):
            if p.is_dir():
                out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
            else:
                out.append(p)
        return out
    fixtures = sorted((ROOT / "tests" / "fixtures").glob("*.mp4"))
    if fixtures:
        return fixtures
    return [_synth_fake(Path(tempfile.mkdtemp(prefix="faith_")))]


def _synth_fake(tmp: Path, max_frames: int = 75) -> Path:
    """One SBI (self-blended) fake from the first GRID clip, written as mp4v."""
    from detector.training.synth import load_clip, sbi_clip, write_video

    src = next(iter(sorted(GRID.rglob("*.mpg"))), None)
    if src is None:
        sys.exit(f"no clips given, no tests/fixtures/*.mp4 and no GRID clips under {GRID}; pass --clips")
    frames, lms, fps = load_clip(src)
    if lms is None:
        sys.exit(f"{src}: no landmarks found, cannot synthesise a fake; pass --clips")
    frames, lms = frames[:max_frames], lms[:max_frames]
    fakes, _ = sbi_clip(frames, lms, np.random.default_rng(0))
    out = tmp / f"sbi_{src.stem}.mp4"
    write_video(out, fakes, fps, 90)
    print(f"synthesised {out.name} from {src.name} ({len(fakes)} frames)")
    return out


_SCORE = "logit"


@torch.inference_mode()
def score(det, feats: torch.Tensor) -> float:
    """Logit margin (fake - real) of the clip, or p_fake with --score p_fake."""
    if _SCORE == "p_fake":
        return det.p_fake(feats)
    logits = det.model.forward_head(feats)[0]
    return float(logits[1] - logits[0])


def evaluate_clip(path: Path, det, args, rng: np.random.Generator) -> dict | None:
    from detector.pipeline import AnalysisConfig, analyze_video

    t0 = time.perf_counter()
    report = analyze_video(path, AnalysisConfig(frames=args.frames, weights=args.weights, explain=True,
                                                precision=args.precision), detector=det)
    if not report.faces:
        print(f"{path.name}: no face, skipped")
        return None
    face = max(report.faces, key=lambda f: f.p_fake)
    crops, ex = face.crops, face.explanation
    feats = det.features(crops)
    p0 = score(det, feats)
    n = feats.shape[1]
    row: dict = {"file": path.name, "p_fake": round(p0, 6), "frames": n, "temporal": {}, "spatial": {}}
    for ranking in ("temporal_importance", "grad_x_input"):
        order = list(np.argsort(-ex[ranking], kind="stable"))
        res = {}
        for k in KS:
            if k >= n:
                continue
            top = p0 - score(det, delete_frames(feats, [int(i) for i in order[:k]]))
            rand = [p0 - score(det, delete_frames(feats, [int(i) for i in rng.choice(n, k, replace=False)]))
                    for _ in range(args.draws)]
            res[f"k{k}"] = {"top_drop": _sig(top), "random_drop": _sig(np.mean(rand))}
        row["temporal"][ranking] = res
    draws = min(args.draws, args.spatial_draws)
    top = p0 - score(det, det.features(blur_mask(crops, top_mask(ex["cam"]))))
    rand = [p0 - score(det, det.features(blur_mask(crops, rng.random(ex["cam"].shape) < AREA)))
            for _ in range(draws)]
    row["spatial"] = {"top_drop": _sig(top), "random_drop": _sig(np.mean(rand)), "draws": draws,
                      "cam_zero_frames": int((ex["cam"].reshape(n, -1).max(1) == 0).sum())}
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _sig(x: float) -> float:
    return float(f"{float(x):.4g}")


def _ratio(top: float, rand: float) -> float | None:
    """top / random drop; None when the random drop is too small for the ratio to mean anything."""
    return None if abs(rand) < 1e-6 else round(top / rand, 3)


def main(argv: list[str] | None = None) -> int:
    from detector.pipeline import get_detector
    from detector.weights import DEFAULT_WEIGHTS

    ap = argparse.ArgumentParser(description="deletion test of Grad-CAM and temporal importance")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--clips", nargs="*",
                    help="video files or folders (default: tests/fixtures/*.mp4, else a synthesised fake)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--draws", type=int, default=50, help="random draws per temporal test")
    ap.add_argument("--spatial-draws", type=int, default=5, help="cap on random draws for the spatial test")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--score", choices=["logit", "p_fake"], default="logit",
                    help="what a deletion is measured on (default: fake-real logit margin)")
    ap.add_argument("--update-sidecar", metavar="DESCRIPTION",
                    help="store the summary in the weights' sidecar (metrics.faithfulness) with this description "
                         "of the clips, so every report's explanations carry it")
    args = ap.parse_args(argv)
    global _SCORE
    _SCORE = args.score

    det = get_detector(args.weights, args.precision)
    rng = np.random.default_rng(args.seed)
    rows = [r for r in (evaluate_clip(p, det, args, rng) for p in _clips(args)) if r is not None]
    if not rows:
        print("no clip with a face")
        return 1

    print(f"\nmodel {det.spec.name} (trained: {det.spec.trained}), T={args.frames}, draws {args.draws}")
    print(f"{'clip':28s} {'p_fake':>7s} " + " ".join(f"{'top'+str(k):>8s} {'rnd'+str(k):>8s}" for k in KS)
          + f" {'cam top':>8s} {'cam rnd':>8s}")
    for r in rows:
        t = r["temporal"]["temporal_importance"]
        cells = " ".join(f"{t[f'k{k}']['top_drop']:8.4f} {t[f'k{k}']['random_drop']:8.4f}" if f"k{k}" in t
                         else f"{'-':>8s} {'-':>8s}" for k in KS)
        print(f"{r['file'][:28]:28s} {r['p_fake']:7.3f} {cells} {r['spatial']['top_drop']:8.4f} "
              f"{r['spatial']['random_drop']:8.4f}")

    summary: dict = {"temporal": {}, "spatial": {}}
    for ranking in ("temporal_importance", "grad_x_input"):
        for k in KS:
            vals = [r["temporal"][ranking][f"k{k}"] for r in rows if f"k{k}" in r["temporal"][ranking]]
            if vals:
                top = statistics.mean(v["top_drop"] for v in vals)
                rnd = statistics.mean(v["random_drop"] for v in vals)
                summary["temporal"].setdefault(ranking, {})[f"k{k}"] = {
                    "top_drop": _sig(top), "random_drop": _sig(rnd), "ratio": _ratio(top, rnd)}
    top = statistics.mean(r["spatial"]["top_drop"] for r in rows)
    rnd = statistics.mean(r["spatial"]["random_drop"] for r in rows)
    summary["spatial"] = {"top_drop": _sig(top), "random_drop": _sig(rnd), "ratio": _ratio(top, rnd)}
    print(f"\nmean drop in score ({_SCORE}), top vs random (ratio):")
    for ranking, ks in summary["temporal"].items():
        print(f"  temporal by {ranking}: " + ", ".join(
            f"k={k[1:]} {v['top_drop']:.4f} vs {v['random_drop']:.4f} ({v['ratio']})" for k, v in ks.items()))
    s = summary["spatial"]
    print(f"  spatial (blur top {AREA:.0%} Grad-CAM pixels): {s['top_drop']:.4f} vs "
          f"{s['random_drop']:.4f} ({s['ratio']})")

    method = {"temporal": "replace top-k frames (by importance) with the nearest non-selected neighbour frame "
                          "(feature-level, exact since the backbone is per frame) vs k random frames (mean of "
                          f"{args.draws} draws); drop = score(orig) - score(modified), score = {_SCORE}",
              "spatial": f"GaussianBlur sigma {SIGMA} of the top {AREA:.0%} Grad-CAM pixels per frame vs random "
                         f"{AREA:.0%} pixels (i.i.d.), mean of min(draws, spatial_draws) draws",
              "frames": args.frames, "draws": args.draws, "spatial_draws": args.spatial_draws,
              "seed": args.seed, "precision": det.model_info()["precision"]}
    if args.update_sidecar:
        from detector.weights import sidecar_path, store_metrics

        entry = {"measured_on": f"{args.update_sidecar}, T={args.frames}",
                 "command": f"python benchmarks/bench_faithfulness.py --clips <{len(rows)} clips> --frames "
                            f"{args.frames} --draws {args.draws} --spatial-draws {args.spatial_draws}",
                 "score": "fake-real logit margin" if _SCORE == "logit" else "p_fake",
                 "summary": summary, "method": method}
        store_metrics(args.weights, "faithfulness", entry)
        print(f"stored in {sidecar_path(args.weights).name}")
    if args.json_out:
        result = {
            "method": method,
            "model": {"name": det.spec.name, "weights_sha256": det.spec.weights_sha256,
                      "trained": det.spec.trained, "trained_on": det.spec.trained_on},
            "clips": rows, "summary": summary}
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
