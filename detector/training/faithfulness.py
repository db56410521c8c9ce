"""Deletion test: do the explanations point at what the model actually uses? (dev tool, reads data/devset)

For every clip: the product's own path (``analyze_video`` with explanations on) gives the face track with
the highest p_fake, its crops and Grad-CAM maps; the temporal attributions of every method are computed on
that track's features. Score = logit margin ``m = logit_fake - logit_real`` (p_fake saturates at 1.000 on
confident fakes, the margin does not). drop = m(original) - m(modified); > 0 = the edit made the clip look
less fake.

Temporal deletion: the top-k frames of a method (largest values; signed methods: most towards FAKE),
k = 1, 3, 5, are *overwritten by their nearest non-selected neighbour frame*, as an edit of the video
would, vs k random frames (the same ``--draws`` draws for every method). The backbone sees each crop on its
own (eval mode), so a neighbour's crop gives exactly the neighbour's feature vector: the edit is done on the
cached features and only the LSTM + head re-run. Each clip also checks this once at crop level (the top-3
crops overwritten, backbone + LSTM re-run) and reports the largest difference (``crop_check``).

Spatial deletion: the top 20% Grad-CAM pixels of every crop are filled with **the crop's mean colour** (a
flat fill; blur is itself a cue an SBI-trained model learned, so it is not used) vs 20% of the pixels in
random blobs of the same geometry as Grad-CAM (a random (h, w) grid at the target layer's resolution,
upsampled like a CAM, top 20%): same shapes, random place. i.i.d. random pixels are reported too (salt and
pepper is a pattern of its own, so it is the weaker control). A model with a residual-pair stream gets the
same test for its texture Grad-CAM (``spatial_texture``; blobs at the stream's stride-16 resolution): the
fill flattens the grain there in the crop and in its successor alike. Each map is also scored *isolated*:
the fill is seen only by the stream the map explains (appearance: the ResNeXt50; texture: the residual
stream), the other stream reading the original crops (spliced features, exact). Why: a flat patch also has
no grain for the residual stream to renew, so the whole-model drop of an appearance fill mixes in the other
stream's reaction to it. ``--fill grain`` adds fresh noise at the crop's own grain level to the flat fill
(new in every crop and successor): a large flat patch is itself the smooth, blended look an appearance model
trained on blends calls FAKE, so the mean fill may score the edit rather than the map. Measured on the
default (stop 31): the noise patch is a cue of its own (random patches of it raise the fake margin by 1.0,
i.i.d. noise pixels by 8.1), so it stays a diagnostic and the mean fill the stored test.
``--cam-objective`` recomputes the maps from the cached crops for the margin or the fake logit
(explain.gradcam.OBJECTIVES; on the default their maps correlate at a median 0.995).

Position bias: |Spearman| and |Pearson| correlation of (frame position, attribution) per clip; the median
over clips per method (RLNet's gradient norm decreases with position through an LSTM + mean pooling).

Methods (explain/attribution.py): integrated_gradients (the product default: baseline = the clip's
per-channel median feature), ig_mean and ig_zeros (IG from the clip's mean feature / from all-zero
features, for the choice of baseline), occlusion (frame := the median feature), grad_x_input, grad_norm
(RLNet's gradient norm). They are computed here from the cached features, so a change of method needs
no new analysis.

Run (one command, after new default weights land):
    python -m detector.training.faithfulness --update-sidecar
Defaults: clips = data/devset/fake (families from ../shared/devset/MANIFEST.tsv when present), T = the
product's default (detector.pipeline.DEFAULT_FRAMES, 60; k = 1, 3, 5 and the same shares of T as 1, 3, 5 of 20),
25 random draws, 5 spatial draws, weights = the default. Per-clip results are cached (keyed by the file's
and the weights' sha256) under --cache, so a re-run only re-does the cheap part.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DEVSET = ROOT / "data" / "devset" / "fake"
MANIFEST = ROOT.parent / "shared" / "devset" / "MANIFEST.tsv"
KS = (1, 3, 5)
AREA = 0.2
METHODS = ("integrated_gradients", "ig_mean", "ig_zeros", "occlusion", "grad_x_input", "grad_norm")
SHARES = (0.05, 0.15, 0.25)  # k = 1, 3, 5 of 20 frames


def headline_k(frames: int) -> int:
    """The k the report leads with: 15 % of the frames (3 of 20, 9 of 60), so that T does not change its meaning."""
    return max(1, round(SHARES[1] * frames))


def ks_for(frames: int) -> tuple[int, ...]:
    """k values of the temporal test at `frames` frames: always 1, 3, 5, plus the same *shares* of the clip as
    1, 3, 5 of 20 (at 60 frames: 3, 9, 15), so that figures at different T compare."""
    return tuple(sorted(set(KS) | {max(1, round(f * frames)) for f in SHARES}))


# ---------------------------------------------------------------- edits
def nearest_unselected(t: int, selected: set[int], n: int) -> int:
    """The closest frame index to t that is not selected (earlier wins a tie); t itself if all are."""
    for d in range(1, n):
        for j in (t - d, t + d):
            if 0 <= j < n and j not in selected:
                return j
    return t


def neighbour_map(selected, n: int) -> list[int]:
    """source index for every position after overwriting `selected` frames with their nearest neighbours."""
    sel = {int(s) for s in selected}
    return [nearest_unselected(t, sel, n) if t in sel else t for t in range(n)]


def delete_frames(x, selected):
    """x: (T, ...) array or (1, T, C) tensor; selected frames replaced by their nearest non-selected
    neighbour (the edit a video editor would make)."""
    if isinstance(x, torch.Tensor):
        return x[:, neighbour_map(selected, x.shape[1])]
    return x[neighbour_map(selected, len(x))]


def top_mask(maps: np.ndarray, area: float = AREA) -> np.ndarray:
    """bool (T, h, w): the `area` fraction of highest-valued pixels of each frame's map."""
    flat = maps.reshape(len(maps), -1)
    k = max(1, int(round(area * flat.shape[1])))
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    m = np.zeros_like(flat, dtype=bool)
    np.put_along_axis(m, idx, True, axis=1)
    return m.reshape(maps.shape)


def random_blobs(shape: tuple[int, int, int], grid: int, rng: np.random.Generator) -> np.ndarray:
    """float32 (T, h, w): uniform noise on a (grid, grid) lattice upsampled bilinearly, like a CAM."""
    t, h, w = shape
    return np.stack([cv2.resize(rng.random((grid, grid)).astype(np.float32), (w, h)) for _ in range(t)])


def mean_fill(crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """crops uint8 (T, h, w, 3) RGB, masks bool (T, h, w): masked pixels := the crop's mean colour."""
    out = crops.copy()
    for t, m in enumerate(masks):
        out[t][m] = crops[t].reshape(-1, 3).mean(0).round().astype(np.uint8)
    return out


def grain_fill(crops: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As `mean_fill`, plus fresh grey Gaussian noise at the crop's own grain level (the std of its high-pass
    residual, grey - Gaussian blur sigma 1, as the residual stream computes it), new for every crop: a
    patch without content meant to look like camera footage, so that "flat" is not what is scored (white
    noise is not a camera's grain, though: measured, it is a cue of its own; see the module docstring)."""
    out = crops.copy()
    for t, m in enumerate(masks):
        grey = crops[t].astype(np.float32).mean(-1)
        sigma = max(0.5, float((grey - cv2.GaussianBlur(grey, (0, 0), 1.0)).std()))
        noise = rng.normal(0.0, sigma, int(m.sum()))[:, None]
        out[t][m] = np.clip(crops[t].reshape(-1, 3).mean(0) + noise, 0, 255).round().astype(np.uint8)
    return out


FILLS = ("mean", "grain")


# ---------------------------------------------------------------- per clip
def manifest_families() -> dict[str, tuple[str, str]]:
    """data/devset/... path (relative to ROOT) -> (family, method), from ../shared/devset/MANIFEST.tsv."""
    if not MANIFEST.is_file():
        return {}
    with MANIFEST.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {"data/devset/" + r["local_file"].removeprefix("clips/"): (r["family"], r["method"]) for r in rows}


def _clips(args) -> list[Path]:
    from detector.video import VIDEO_EXTENSIONS

    roots = [Path(p) for p in args.clips] if args.clips else [DEVSET]
    out = []
    for p in roots:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            sys.exit(f"{p}: not found (the dev set lives in data/devset; pass --clips)")
    return out


def _margins(det, feats: torch.Tensor) -> np.ndarray:
    """(N, T, C) -> margins (N,) float64; one head pass."""
    from explain.attribution import margins

    with torch.inference_mode():
        return margins(det.model, feats.float()).double().cpu().numpy()


def extract(path: Path, det, args) -> dict | None:
    """The product's path (analyze_video, explain on) -> the top face's crops, features, Grad-CAM and
    every temporal method. Cached on disk."""
    from detector.hashing import sha256_file
    from detector.pipeline import AnalysisConfig, analyze_video
    key = f"{sha256_file(path)[:16]}_{det.spec.weights_sha256[:12]}_T{args.frames}_{det.model_info()['precision']}"
    cache = args.cache / f"{key}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if z["crops"].size == 0:
            return None
        return {k: z[k] for k in z.files}
    if args.cached_only:
        return None
    t0 = time.perf_counter()
    report = analyze_video(path, AnalysisConfig(frames=args.frames, weights=args.weights, explain=True,
                                                precision=args.precision), detector=det)
    t_analyze = time.perf_counter() - t0
    args.cache.mkdir(parents=True, exist_ok=True)
    if not report.faces:
        np.savez(cache, crops=np.zeros(0, np.uint8))
        return None
    face = max(report.faces, key=lambda f: f.p_fake)
    # A model pairing "next" frames also keeps each crop's successor: every edit below is made to both.
    partners = face.partners if face.partners is not None else np.zeros(0, np.uint8)
    out = {"crops": face.crops, "partners": partners,
           "feats": det.features(face.crops, face.partners).clone().numpy(), "cam": face.explanation["cam"],
           "cam_texture": face.explanation.get("cam_texture", np.zeros(0, np.float32)),
           "frame_indices": np.asarray(face.frame_indices), "p_fake": np.float64(face.p_fake),
           "analyze_s": np.float64(t_analyze)}
    np.savez(cache, **out)
    return out


def attributions(det, feats: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's (T,) values on one track's features, and each IG's relative completeness error
    |sum - (m(f) - m(b))| / max(1, |m(f) - m(b)|)."""
    from explain.attribution import integrated_gradients
    from explain.temporal import temporal_importance

    tem = temporal_importance(det.model, feats, "fake")
    out = dict(tem.methods)
    errors = {"integrated_gradients": abs(tem.completeness_error) / max(1.0, abs(tem.margin - tem.baseline_margin))}
    for baseline, steps in (("mean", tem.steps), ("zeros", 64)):
        ig = integrated_gradients(det.model, feats, baseline, steps)
        out[f"ig_{baseline}"] = ig.attribution
        errors[f"ig_{baseline}"] = abs(ig.error) / max(1.0, abs(ig.margin - ig.baseline_margin))
    return out, errors


def _partners(d: dict) -> np.ndarray | None:
    """The cached successors' crops (T, h, w, 3), or None for a model that does not pair "next" frames."""
    p = d.get("partners")
    return p if p is not None and p.size else None


def _edited(det, d: dict, edit) -> torch.Tensor:
    """Features of the clip's crops after `edit` (uint8 (T, h, w, 3) -> same), made to the successors too."""
    p = _partners(d)
    return det.features(edit(d["crops"]), None if p is None else edit(p))


def evaluate_clip(path: Path, det, args, family: str) -> dict | None:
    d = extract(path, det, args)
    if d is None:
        print(f"{path.name}: {'no face or not cached' if args.cached_only else 'no face'}, skipped", flush=True)
        return None
    rng = np.random.default_rng([args.seed, int.from_bytes(path.name.encode()[:8].ljust(8, b"\0"), "little")])
    feats = torch.from_numpy(d["feats"])
    n = feats.shape[1]
    values, ig_errors = attributions(det, feats)
    m0 = float(_margins(det, feats)[0])
    row: dict = {"file": path.name, "family": family, "p_fake": round(float(d["p_fake"]), 4),
                 "margin": round(m0, 4), "frames": n, "temporal": {}, "position_corr": {},
                 "ig_completeness_error": {m: float(f"{e:.3g}") for m, e in ig_errors.items()}}
    draws = {k: [rng.choice(n, k, replace=False) for _ in range(args.draws)] for k in ks_for(args.frames) if k < n}
    rand = {}
    for k, sels in draws.items():
        batch = torch.cat([delete_frames(feats, s) for s in sels])
        drops = m0 - _margins(det, batch)
        rand[k] = drops
    for method in METHODS:
        v = np.asarray(values[method], np.float64)
        order = np.argsort(-v, kind="stable")
        res = {}
        for k, drops in rand.items():
            top = m0 - float(_margins(det, delete_frames(feats, order[:k]))[0])
            res[f"k{k}"] = {"top_drop": top, "random_drop": float(drops.mean()),
                            "percentile": float((drops < top).mean() + 0.5 * (drops == top).mean())}
        row["temporal"][method] = res
        pos = np.arange(n)
        if n >= 3 and np.ptp(v) > 0:
            row["position_corr"][method] = {"spearman": _pearson(pos, _ranks(v)), "pearson": _pearson(pos, v)}
    # The edit at crop level once: the top-3 (default method) crops overwritten, backbone + LSTM re-run.
    if 3 in rand:
        sel = np.argsort(-np.asarray(values["integrated_gradients"]), kind="stable")[:3]
        crop_level = m0 - float(_margins(det, _edited(det, d, lambda x: delete_frames(x, sel)))[0])
        feat_level = row["temporal"]["integrated_gradients"]["k3"]["top_drop"]
        row["crop_check"] = abs(crop_level - feat_level)
    # Spatial: fill the top 20% Grad-CAM pixels with the crop's mean colour vs random blobs / pixels.
    crops, cam = d["crops"], d["cam"]
    tex = d.get("cam_texture")
    if args.cam_objective:  # the maps again from the cached crops, of another explained score
        cam, tex = recompute_cams(det, d, args.cam_objective)
    grid = max(1, crops.shape[1] // 32)  # layer4 resolution for a stride-32 backbone

    n_rgb = int(getattr(det.model, "rgb_features", feats.shape[-1]))

    def fill(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return mean_fill(x, mask) if args.fill == "mean" else grain_fill(x, mask, rng)

    def fill_drop(mask: np.ndarray, own: slice) -> tuple[float, float]:
        """(drop with the fill seen by the whole model, drop with it seen only by the map's own stream)."""
        edited = _edited(det, d, lambda x: fill(x, mask))
        both = torch.cat([edited, isolate(feats, edited, own)])
        m = _margins(det, both)
        return m0 - float(m[0]), m0 - float(m[1])

    def spatial(cam: np.ndarray, grid: int, own: slice) -> dict:
        top = fill_drop(top_mask(cam), own)
        blobs = np.array([fill_drop(top_mask(random_blobs(cam.shape, grid, rng)), own)
                          for _ in range(args.spatial_draws)])
        pixels = np.array([fill_drop(rng.random(cam.shape) < AREA, own) for _ in range(args.spatial_draws)])
        return {"top_drop": top[0], "random_blobs_drop": float(blobs[:, 0].mean()),
                "random_pixels_drop": float(pixels[:, 0].mean()),
                "isolated": {"top_drop": top[1], "random_blobs_drop": float(blobs[:, 1].mean()),
                             "random_pixels_drop": float(pixels[:, 1].mean())},
                "cam_zero_frames": int((cam.reshape(n, -1).max(1) == 0).sum())}

    # The appearance map explains the ResNeXt50 features, the texture map the stream's: "isolated" gives the
    # fill to that stream only (the other keeps the original crops), since a flat fill also changes the grain
    # the other stream reads (a flat patch has no grain to renew) and would be scored against the wrong map.
    row["spatial"] = spatial(cam, grid, slice(0, n_rgb))
    if tex is not None and tex.size:
        # the stream's stride is 16
        row["spatial_texture"] = spatial(tex, max(1, crops.shape[1] // 16), slice(n_rgb, feats.shape[-1]))
    return row


def recompute_cams(det, d: dict, objective: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(appearance, texture or None) Grad-CAM maps (T, H, W) of the cached crops for `objective`
    (explain.gradcam.OBJECTIVES), as the product computes them (fast path, fp32)."""
    from explain.gradcam import gradcams

    texture = getattr(det.model, "residual", None) is not None
    cams = gradcams(det.model, d["crops"], "fake", partners=_partners(d), objective=objective,
                    layers=("appearance", "texture") if texture else ("appearance",))
    return cams["appearance"].maps, cams["texture"].maps if texture else None


def isolate(original: torch.Tensor, edited: torch.Tensor, own: slice) -> torch.Tensor:
    """Features (1, T, C) equal to `original` except the channels `own` (one stream's block), from `edited`.

    Exact: the model's features are [ResNeXt50 (per frame) | residual stream (per frame pair)] concatenated,
    each block computed from its own input only (detector/model.py)."""
    out = original.clone()
    out[..., own] = edited[..., own]
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), so Pearson of ranks = Spearman."""
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    for val in np.unique(v):
        tie = v == val
        r[tie] = r[tie].mean()
    return r


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1])


# ---------------------------------------------------------------- summaries
def _sig(x: float | None) -> float | None:
    return None if x is None else float(f"{float(x):.4g}")


def _ratio(top: float, rand: float) -> float | None:
    """top / random drop; None when the random edit does not lower the margin on average (then a ratio
    would flip sign or explode: read top_drop and random_drop instead)."""
    return round(top / rand, 3) if rand > 1e-6 else None


def summarise(rows: list[dict]) -> dict:
    out: dict = {"n_clips": len(rows), "temporal": {}, "position_corr": {}, "spatial": {}}
    ks = sorted({int(k[1:]) for r in rows for m in r["temporal"].values() for k in m})
    for method in METHODS:
        for k in ks:
            vals = [r["temporal"][method][f"k{k}"] for r in rows if f"k{k}" in r["temporal"][method]]
            if not vals:
                continue
            top = statistics.mean(v["top_drop"] for v in vals)
            rnd = statistics.mean(v["random_drop"] for v in vals)
            out["temporal"].setdefault(method, {})[f"k{k}"] = {
                "top_drop": _sig(top), "random_drop": _sig(rnd), "ratio": _ratio(top, rnd),
                "clips_top_beats_random": round(statistics.mean(v["top_drop"] > v["random_drop"] for v in vals), 3),
                "mean_percentile": round(statistics.mean(v["percentile"] for v in vals), 3)}
        corr = [r["position_corr"][method] for r in rows if method in r["position_corr"]]
        if corr:
            out["position_corr"][method] = {
                "median_abs_spearman": round(statistics.median(abs(c["spearman"]) for c in corr), 3),
                "median_abs_pearson": round(statistics.median(abs(c["pearson"]) for c in corr), 3)}
    for key in ("spatial", "spatial_texture"):
        sp = [r[key] for r in rows if key in r]
        if not sp:
            continue
        out[key] = _spatial_summary(sp)
        iso = [v["isolated"] for v in sp if "isolated" in v]
        if iso:
            out[key]["isolated"] = _spatial_summary(iso)
    return out


def _spatial_summary(sp: list[dict]) -> dict:
    """Mean drops over clips of one spatial test (whole model or isolated), their ratios, and the share of
    clips where the map's top pixels beat random blobs."""
    top, blobs, pixels = (statistics.mean(v[k] for v in sp)
                          for k in ("top_drop", "random_blobs_drop", "random_pixels_drop"))
    return {"top_drop": _sig(top), "random_blobs_drop": _sig(blobs), "ratio": _ratio(top, blobs),
            "random_pixels_drop": _sig(pixels), "ratio_vs_pixels": _ratio(top, pixels),
            "clips_top_beats_blobs": round(statistics.mean(v["top_drop"] > v["random_blobs_drop"] for v in sp), 3)}


def winner(summary: dict, k: int = 3) -> str | None:
    """The method whose top-k deletion lowers the fake margin most (mean over clips)."""
    scores = {m: v[f"k{k}"]["top_drop"] for m, v in summary["temporal"].items() if f"k{k}" in v}
    return max(scores, key=scores.get) if scores else None


def print_table(title: str, s: dict, fill: str = "mean") -> None:
    print(f"\n{title} ({s['n_clips']} clips): mean drop of the fake margin, top-k vs random-k [ratio]")
    shown = sorted({int(k[1:]) for v in s["temporal"].values() for k in v})
    print(f"  {'method':22s} " + " ".join(f"{'k=' + str(k):>26s}" for k in shown) + f" {'|rho| pos':>10s}")
    for method, ks in s["temporal"].items():
        cells = []
        for k in shown:
            v = ks.get(f"k{k}")
            cells.append(f"{'-':>26s}" if v is None else
                         f"{v['top_drop']:8.3f} vs {v['random_drop']:7.3f} [{_fmt(v['ratio'])}]".rjust(26))
        rho = s["position_corr"].get(method, {}).get("median_abs_spearman")
        print(f"  {method:22s} " + " ".join(cells) + f" {_fmt(rho):>10s}")
    def figures(sp: dict) -> str:
        return (f"{sp['top_drop']:.3f} vs random blobs {sp['random_blobs_drop']:.3f} [{_fmt(sp['ratio'])}] (vs random "
                f"pixels {sp['random_pixels_drop']:.3f}); top beats blobs on {sp['clips_top_beats_blobs']:.0%}")

    for key, name in (("spatial", "Grad-CAM"), ("spatial_texture", "texture Grad-CAM")):
        sp = s.get(key)
        if sp:
            what = "crop mean colour" + (" + grain-level noise" if fill == "grain" else "")
            print(f"  spatial, top {AREA:.0%} {name} pixels := {what}: {figures(sp)} of clips")
            if sp.get("isolated"):
                print(f"    the fill seen by the map's own stream only: {figures(sp['isolated'])}")


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    from detector.pipeline import get_detector
    from explain.temporal import DEFAULT_METHOD

    ap = _parser()
    args = ap.parse_args(argv)
    if args.draws < 20:
        ap.error("--draws must be >= 20")

    det = get_detector(args.weights, args.precision)
    kh = headline_k(args.frames)
    t0 = time.perf_counter()
    rows = _evaluate_all(args, det, kh)
    if not rows:
        print("no clip with a face")
        return 1

    summary = summarise(rows)
    print(f"\nmodel {det.spec.name} sha256 {det.spec.weights_sha256[:12]} (trained: {det.spec.trained}), "
          f"T={args.frames}, {args.draws} draws, precision {det.model_info()['precision']}, "
          f"{time.perf_counter() - t0:.0f} s")
    print_table("all clips", summary, args.fill)
    by_family = {}
    for fam in sorted({r["family"] for r in rows}):
        by_family[fam] = summarise([r for r in rows if r["family"] == fam])
        print_table(f"family {fam}", by_family[fam], args.fill)
    best = winner(summary, kh)
    checks = [r["crop_check"] for r in rows if "crop_check" in r]
    errors = {m: max(r["ig_completeness_error"][m] for r in rows) for m in rows[0]["ig_completeness_error"]}
    print(f"\ntop-{kh} winner: {best} (product default: {DEFAULT_METHOD})"
          + ("" if best == DEFAULT_METHOD else "  <- the default is not the winner on these weights"))
    if checks:
        print(f"feature-level vs crop-level edit, top-3: max |difference| {max(checks):.2g} (margin units)")
    print("IG completeness |sum - (m(f) - m(b))| / max(1, |m(f) - m(b)|), max over clips: "
          + ", ".join(f"{m} {e:.2g}" for m, e in errors.items()))

    entry = _entry(args, det, rows, summary, by_family, kh, best, errors)
    if args.update_sidecar:
        from detector.weights import sidecar_path, store_metrics

        store_metrics(args.weights, "faithfulness", entry)
        print(f"stored in {sidecar_path(args.weights).name}")
    if args.json_out:
        result = {"model": {"name": det.spec.name, "weights_sha256": det.spec.weights_sha256},
                  "summary": entry, "by_family": by_family, "clips": rows}
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from detector.pipeline import DEFAULT_FRAMES
    from detector.weights import DEFAULT_WEIGHTS

    ap = argparse.ArgumentParser(description="deletion test of Grad-CAM and the temporal attributions")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--clips", nargs="*", help=f"video files or folders (default: {DEVSET.relative_to(ROOT)})")
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    ap.add_argument("--draws", type=int, default=25, help="random draws per temporal test (>= 20)")
    ap.add_argument("--spatial-draws", type=int, default=5, help="random draws per spatial control")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/dff_faithfulness_cache"))
    ap.add_argument("--cached-only", action="store_true",
                    help="only the clips already analysed into --cache (a partial run on a busy machine)")
    ap.add_argument("--fill", choices=FILLS, default="mean",
                    help="spatial deletion: the crop's mean colour (default), or that plus noise at the crop's "
                         "own grain level (grain_fill)")
    ap.add_argument("--cam-objective", choices=["margin", "logit"],
                    help="recompute the Grad-CAM maps from the cached crops with this explained score "
                         "(explain.gradcam.OBJECTIVES) instead of using the product's maps")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--update-sidecar", nargs="?", const="the dev set's public fakes (data/devset/fake)",
                    metavar="DESCRIPTION", help="store the summary in the weights' sidecar (metrics.faithfulness), "
                                                "so every report's explanations carry it")
    return ap


def _evaluate_all(args, det, kh: int) -> list[dict]:
    """Every clip's deletion results (clips without a face are left out), one progress line each."""
    families = manifest_families()
    rows = []
    for p in _clips(args):
        # data/ is a symlink: match on the path as given (made absolute), not on where it resolves to.
        a = p.absolute()
        rel = str(a.relative_to(ROOT)) if a.is_relative_to(ROOT) else str(p)
        fam = families.get(rel, ("unknown", ""))[0]
        t = time.perf_counter()
        r = evaluate_clip(p, det, args, fam)
        if r is not None:
            ig = r["temporal"]["integrated_gradients"].get(f"k{kh}", {})
            print(f"{p.name[:34]:34s} {fam:18s} margin {r['margin']:7.2f}  IG top{kh} {ig.get('top_drop', 0):6.3f} "
                  f"vs rnd {ig.get('random_drop', 0):6.3f}  ({time.perf_counter() - t:.1f} s)", flush=True)
            rows.append(r)
    return rows


def _entry(args, det, rows: list[dict], summary: dict, by_family: dict, kh: int, best: str | None,
           errors: dict) -> dict:
    """The summary stored in the sidecar (metrics.faithfulness) and written with --json-out."""
    from explain.gradcam import DEFAULT_OBJECTIVE
    from explain.temporal import DEFAULT_METHOD

    method = {"temporal": "top-k frames of each method (largest values) overwritten by their nearest non-selected "
                          f"neighbour frame vs k random frames ({args.draws} draws); drop = margin(original) - "
                          "margin(edited); ratio = mean top drop / mean random drop",
              "spatial": f"top {AREA:.0%} Grad-CAM pixels of every crop filled with the crop's mean colour"
                         + (" plus fresh noise at the crop's grain level" if args.fill == "grain" else "") + " vs "
                         f"{AREA:.0%} of the pixels in random CAM-shaped blobs ({args.spatial_draws} draws); "
                         "spatial_texture: the same with the texture (residual-stream) Grad-CAM, in the crop "
                         "and its successor; isolated: the filled crops given to the map's own stream only (the "
                         "ResNeXt50 for the appearance map, the residual stream for the texture map), the other "
                         "stream reading the original crops",
              "position_corr": "median over clips of |Spearman| between frame position and attribution",
              "frames": args.frames, "seed": args.seed, "precision": det.model_info()["precision"],
              "gradcam_objective": args.cam_objective or DEFAULT_OBJECTIVE, "fill": args.fill}
    entry = {"measured_on": f"{args.update_sidecar or 'clips'}: {len(rows)} clips with a face, T={args.frames}",
             "command": "python -m detector.training.faithfulness --update-sidecar",
             "score": "fake-real logit margin", "default_temporal_method": DEFAULT_METHOD,
             "headline_k": kh, "winner_at_headline_k": best, "ig_completeness_max_relative_error": errors,
             "temporal": {m: summary["temporal"][m] for m in summary["temporal"]},
             "position_corr": summary["position_corr"], "spatial": summary["spatial"],
             **({"spatial_texture": summary["spatial_texture"]} if "spatial_texture" in summary else {}),
             "per_family_headline_k": {f: {m: s["temporal"].get(m, {}).get(f"k{kh}", {}).get("ratio")
                                     for m in METHODS} | {"n_clips": s["n_clips"]}
                                 for f, s in by_family.items()},
             "method": method}
    return entry


if __name__ == "__main__":
    raise SystemExit(main())
