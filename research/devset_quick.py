"""Quick dev-set check for choosing a recipe or a checkpoint while a run trains (never for training).

The full, user-path figure is `deepfake-forensics evaluate --clips data/devset --manifest ...` (every clip
through analyze_video). This tool caches the main face track of each dev-set clip once (the product's own
face path: detector.training.prepare.clip_crops, T evenly spread frames) and then scores any weights
file (clip p_fake from the LSTM) or a stage-1 checkpoint (mean frame logit of backbone + frame head) in
seconds, per family. It reads data/devset (restored, never committed) and ../shared/devset/MANIFEST.tsv.

    python research/devset_quick.py cache                      # once: data/devset_crops.npz
    python research/devset_quick.py score weights/X.safetensors runs/pack1/stage1_best.pt ...
    python research/devset_quick.py compare weights/DEFAULT.safetensors runs/pack4/out/NEW.safetensors
    python research/devset_quick.py cache --windows 3                    # 3 windows of 20 frames 0.15 s apart
    python research/devset_quick.py compare W W --windows 3 --old-plain  # windows vs the product's sampling
    python research/devset_quick.py compare W W --canon 80 --old-plain   # crops at 80 px and back vs as is
    python research/devset_quick.py cache --next                         # + each frame's successor (same box)
    python research/devset_quick.py compare W W --next --old-plain       # the stream on (frame, next frame)
    python research/devset_quick.py cache --next --frames 120            # 120 spread frames + successors
    python research/devset_quick.py score W W2 --sets 6                  # six disjoint 20-frame samplings
    python research/devset_quick.py compare W W2 --sets 6                # paired, mean over the six

Why `--sets`: the dev set's AUC moves with *which* 20 frames are read. Six disjoint interleaved
samplings of the same clips (frames k, k+6, k+12, ... of 120 spread ones) scored the stills800 default
0.768-0.835 (mean 0.801; stop 29), a spread as wide as most differences between recipes. A choice between
recipes should read the mean over sets (and its paired interval), not one sampling.

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


def cache(devset: Path, frames: int, windows: int = 0, spacing_s: float = 0.15) -> None:
    """Write CACHE (frames spread over the whole clip, as the product samples), or with `windows` K the
    window cache `window_cache(K, spacing_s)`: crops (N, K, T, S, S, 3), K windows of T frames
    `spacing_s` apart (the training clips' spacing: 20 frames of a 3-s GRID clip lie ~0.15 s apart),
    centred in K equal segments of the clip, for the clips of CACHE."""
    from detector.training.prepare import clip_crops

    rows = list(csv.DictReader(open(MANIFEST), delimiter="\t"))
    if windows:
        paths = [str(p) for p in np.load(CACHE)["path"]]
        rows = [next(r for r in rows if r["local_file"] == p) for p in paths]
    crops, keep = [], []
    for i, r in enumerate(rows):
        path = devset / r["local_file"].removeprefix("clips/")
        c = _window_crops(str(path), frames, windows, spacing_s) if windows else clip_crops(str(path), frames)
        print(f"{i + 1}/{len(rows)} {path.name}: {'no face' if c is None else 'ok'}", flush=True)
        if c is not None:
            crops.append(c)
            keep.append(r)
    out = window_cache(windows, spacing_s) if windows else CACHE
    np.savez(out, crops=np.stack(crops), label=np.array([int(r["label"] == "fake") for r in keep]),
             family=np.array([r["family"] for r in keep]), method=np.array([r["method"] for r in keep]),
             path=np.array([r["local_file"] for r in keep]))


NEXT_CACHE = CACHE.with_name("devset_crops_next.npz")


def next_cache(frames: int = 20) -> Path:
    """NEXT_CACHE for the product's 20 frames; `devset_crops_next{frames}.npz` for another count."""
    return NEXT_CACHE if frames == 20 else CACHE.with_name(f"devset_crops_next{frames}.npz")


def cache_next(frames: int) -> None:
    """Write `next_cache(frames)`: CACHE's clips at `frames` spread frames, plus each frame's successor in the
    video cropped with the same box (`partners`), for models whose stream pairs "next" frames."""
    from detector.training.prepare import clip_crops

    d = np.load(CACHE)
    crops, partners = [], []
    for i, p in enumerate(d["path"]):
        path = str(ROOT / "data" / "devset" / str(p).removeprefix("clips/"))
        both = clip_crops(path, frames, partners=True)  # CACHE's clips all have a face: the same path found it
        crops.append(both[0::2])
        partners.append(both[1::2])
        print(f"{i + 1}/{len(d['path'])} {Path(path).name}", flush=True)
    np.savez(next_cache(frames), crops=np.stack(crops), partners=np.stack(partners),
             **{k: d[k] for k in ("label", "family", "method", "path")})


def window_cache(windows: int, spacing_s: float) -> Path:
    return CACHE.with_name(f"devset_crops_w{windows}_{spacing_s:g}s.npz")


def _window_crops(path: str, frames: int, windows: int, spacing_s: float) -> np.ndarray | None:
    """uint8 (windows, frames, S, S, 3): the main face in each window; a window without a face repeats another."""
    from detector.training.prepare import main_face_crops
    from detector.video import probe, read_frames

    info = probe(path)
    n = info.frame_count
    step = max(1, round(info.fps * spacing_s))
    if (frames - 1) * step + 1 > n:  # a short clip: the widest spacing that fits
        step = max(1, (n - 1) // (frames - 1))
    span, seg = (frames - 1) * step + 1, n / windows
    out = []
    for k in range(windows):
        start = int(min(max(0.0, seg * k + seg / 2 - span / 2), max(0, n - span)))
        imgs, _ = read_frames(path, sorted({min(n - 1, start + j * step) for j in range(frames)}), info)
        out.append(main_face_crops(imgs, frames))
    found = [c for c in out if c is not None]
    return np.stack([c if c is not None else found[0] for c in out]) if found else None


def canonical(x: np.ndarray, side: int) -> np.ndarray:
    """uint8 (..., S, S, 3) -> each image down-sampled to side x side (INTER_AREA) and back (bilinear); 0: as is.

    Test-time removal of the finest scales, where camera, codec and resampling differ between sources."""
    if not side:
        return x
    import cv2

    flat = x.reshape(-1, *x.shape[-3:])
    s = flat.shape[1]
    return np.stack([cv2.resize(cv2.resize(i, (side, side), interpolation=cv2.INTER_AREA), (s, s),
                                interpolation=cv2.INTER_LINEAR) for i in flat]).reshape(x.shape)


@torch.no_grad()
def score_sets(target: str, sets: int, frames: int = 20, zero: str = "") -> np.ndarray:
    """(sets, N) p_fake: the clips of `next_cache(sets * frames)` read as `sets` disjoint interleaved samplings
    of `frames` frames each (set k: spread frames k, k + sets, k + 2 sets, ...), one LSTM pass per set."""
    d = np.load(next_cache(sets * frames))
    c, nx = d["crops"], d["partners"]
    idx = set_positions(c, sets, frames).reshape(len(c), -1)  # (N, sets * frames)
    rows = np.arange(len(c))[:, None]
    shape = (len(c) * sets, frames, *c.shape[2:])  # every sampling a clip of its own: one model load, one batch loop
    p = _score(target, c[rows, idx].reshape(shape), zero, nx[rows, idx].reshape(shape))
    return p.reshape(len(c), sets).T


def set_positions(crops: np.ndarray, sets: int, frames: int) -> np.ndarray:
    """(N, sets, frames) positions into each clip's cached crops (N, F, S, S, 3), F = sets * frames.

    A clip (or face track) shorter than F frames was cached with its last crop repeated to F; its `n`
    distinct crops are split the same way as a full clip's (set k: floor((j sets + k) n / (frames sets))), so that
    no sampling reads the padding (plain interleaving would hand the later sets runs of one repeated frame)."""
    n_all, f = crops.shape[:2]
    out = np.empty((n_all, sets, frames), dtype=np.int64)
    for i, c in enumerate(crops):
        differs = np.flatnonzero((c != c[-1]).reshape(f, -1).any(1))
        n = f if not len(differs) else min(f, int(differs[-1]) + 2)
        for k in range(sets):
            out[i, k] = (np.arange(frames) * sets + k) * n // (frames * sets)  # integers: no float floor off by one
    return out


@torch.no_grad()
def score(target: str, cache_file: Path = CACHE, canon: int = 0, zero: str = "") -> np.ndarray:
    """p_fake per cached clip from a weights file (.safetensors) or a stage-1 checkpoint (.pt).

    A window cache (crops (N, K, T, S, S, 3)) is scored window by window; a clip's logit is the mean of its
    K windows' logits. canon: `canonical` applied to every crop first. zero: "rgb" or "residual" sets
    that stream's features to 0 before the LSTM (a model with a residual stream: which one carries it?)."""
    d = np.load(cache_file)
    crops = canonical(d["crops"], canon)
    if "partners" in d:
        return _score(target, crops, zero, canonical(d["partners"], canon))
    if crops.ndim == 6:
        n, k = crops.shape[:2]
        p = _score(target, crops.reshape(n * k, *crops.shape[2:]), zero).reshape(n, k).clip(1e-6, 1 - 1e-6)
        return 1 / (1 + np.exp(-np.log(p / (1 - p)).mean(1)))
    return _score(target, crops, zero)


def _zeroed(model, zero: str):
    """model(x) with one stream's features set to 0 ("rgb": the first model.rgb_features, "residual": the rest)."""
    if not zero:
        return model
    if getattr(model, "residual", None) is None:
        raise SystemExit(f"--zero {zero}: this model has no residual stream")

    def run(x, partners=None):
        f = model.forward_features(x, partners).clone()
        if zero == "rgb":
            f[..., :model.rgb_features] = 0
        else:
            f[..., model.rgb_features:] = 0
        return model.forward_head(f)
    return run


def _score(target: str, crops: np.ndarray, zero: str = "", partners: np.ndarray | None = None) -> np.ndarray:
    """partners: (N, T, S, S, 3) successors of crops' frames; given, the model's stream pairs "next" frames
    (a "sampled" model is switched to it: how does it read one-frame gaps?)."""
    import dataclasses

    from detector.model import build_model
    from detector.runtime import _cpu_has_bf16
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    x = torch.from_numpy(crops).permute(0, 1, 4, 2, 3).contiguous()  # (N, T, 3, S, S) uint8
    nx = None if partners is None else torch.from_numpy(partners).permute(0, 1, 4, 2, 3).contiguous()
    if target.endswith(".safetensors"):
        model, _ = load_weights(target)
        if nx is not None:
            model.spec = dataclasses.replace(model.spec, residual_pairs="next")
        run = _zeroed(model, zero)
        # bf16 autocast where the CPU has it natively (as the product chooses): ~2x faster, softmax within 4e-5.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=_cpu_has_bf16()):
            return np.concatenate([torch.softmax(run(x[i:i + 8], None if nx is None else nx[i:i + 8]).float(), -1)
                                   [:, 1].numpy() for i in range(0, len(x), 8)])
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


def report_sets(name: str, p: np.ndarray) -> None:
    """p: (sets, N). Each sampling's AUC, their mean and range, and the per-family means."""
    from detector.training.evaluate import roc_auc

    d = np.load(CACHE)
    y, fam = d["label"], d["family"]
    aucs = [roc_auc(y, q) for q in p]
    line = (f"{name}: AUC mean over {len(p)} samplings {np.mean(aucs):.3f} (each "
            + " ".join(f"{a:.3f}" for a in aucs) + ")")
    for f in sorted(set(fam[y == 1])):
        m = (y == 0) | (fam == f)
        line += f" | {f} {np.mean([roc_auc(y[m], q[m]) for q in p]):.3f}"
    print(line, flush=True)


def compare(p_old: np.ndarray, p_new: np.ndarray, name: str) -> None:
    """Paired bootstrap of the AUC difference on the same clips, overall and per family. p_old, p_new: (N,),
    or (K, N) for K frame samplings (`score_sets`): the mean difference over them, clips resampled alike."""
    from detector.training.evaluate import roc_auc_diff_ci

    d = np.load(CACHE)
    y, fam = d["label"], d["family"]
    rows = [("all", np.ones(len(y), bool))] + [(f, (y == 0) | (fam == f)) for f in sorted(set(fam[y == 1]))]
    for g, m in rows:
        diff, lo, hi = roc_auc_diff_ci(y[m], p_old[..., m], p_new[..., m])
        print(f"{name} | {g}: AUC difference {diff:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}]"
              + (" (no evidence of a difference)" if lo <= 0 <= hi else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--devset", type=Path, default=ROOT / "data" / "devset")
    c.add_argument("--frames", type=int, default=20)
    c.add_argument("--windows", type=int, default=0, metavar="K",
                   help="K windows of frames --spacing-s apart instead of frames spread over the clip")
    c.add_argument("--spacing-s", type=float, default=0.15)
    c.add_argument("--next", action="store_true",
                   help="CACHE's spread frames plus each one's successor in the video (NEXT_CACHE)")
    s = sub.add_parser("score")
    s.add_argument("targets", nargs="+")
    c = sub.add_parser("compare", help="paired bootstrap interval of AUC(new) - AUC(old), overall and per family")
    c.add_argument("old")
    c.add_argument("new")
    for p in (s, c):
        p.add_argument("--windows", type=int, default=0, metavar="K",
                       help="score the window cache of `cache --windows K`")
        p.add_argument("--spacing-s", type=float, default=0.15)
        p.add_argument("--next", action="store_true", help="score NEXT_CACHE, the stream pairing next frames")
        p.add_argument("--sets", type=int, default=0, metavar="K",
                       help="K disjoint 20-frame samplings of `cache --next --frames 20K` (implies --next)")
        p.add_argument("--canon", type=int, default=0, metavar="SIDE",
                       help="crops down-sampled to SIDE px and back first")
        p.add_argument("--zero", choices=["rgb", "residual"], default="",
                       help="a model with a residual stream: that stream's features set to 0")
    c.add_argument("--old-plain", action="store_true",
                   help="score OLD on the plain cache as is (compares a sampling or --canon against the product's)")
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.cmd == "cache":
        cache_next(a.frames) if a.next else cache(a.devset, a.frames, a.windows, a.spacing_s)
        return
    if a.sets:
        if a.canon or (a.cmd == "compare" and a.old_plain):
            raise SystemExit("--sets: --canon and --old-plain are not supported with it")
        if not next_cache(20 * a.sets).exists():
            raise SystemExit(f"--sets {a.sets}: run `cache --next --frames {20 * a.sets}` first")
        if a.cmd == "compare":
            compare(score_sets(a.old, a.sets), score_sets(a.new, a.sets, zero=a.zero),
                    f"{Path(a.new).name} - {Path(a.old).name} (mean over {a.sets} samplings)")
        else:
            for t in a.targets:
                report_sets(Path(t).name + (f", {a.zero} stream zeroed" if a.zero else ""),
                            score_sets(t, a.sets, zero=a.zero))
        return
    cache_file = NEXT_CACHE if a.next else window_cache(a.windows, a.spacing_s) if a.windows else CACHE
    if a.cmd == "compare":
        old = score(a.old) if a.old_plain else score(a.old, cache_file, a.canon)
        compare(old, score(a.new, cache_file, a.canon, a.zero), f"{Path(a.new).name} - {Path(a.old).name}")
    else:
        tag = ((f", {a.windows} windows" if a.windows else "") + (", next-frame pairs" if a.next else "")
               + (f", canon {a.canon}" if a.canon else "")
               + (f", {a.zero} stream zeroed" if a.zero else ""))
        for t in a.targets:
            report(Path(t).name + tag, score(t, cache_file, a.canon, a.zero))


if __name__ == "__main__":
    main()
