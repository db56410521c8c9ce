"""Training fakes from real videos alone.

(a) Self-Blended Images (Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022):
    a face is blended with a slightly altered copy of itself (colour and frequency jitter, a small affine
    warp) through a deformed, blurred convex-hull mask of its 68 landmarks. The detector must learn the
    generic traces of blending (boundary, colour and frequency mismatch) instead of one method's quirks.
    For video we draw the parameters once per clip and add mild per-frame jitter, so the LSTM sees the
    flicker that frame-by-frame face manipulation leaves.
(b) A classic landmark face swap between two different speakers (as FaceForensics++'s FaceSwap):
    Delaunay triangles of the target's landmarks, each source triangle warped onto the target,
    colour transfer in LAB, `cv2.seamlessClone` inside the hull.

Both real and fake outputs are re-encoded with the same codec, so compression is no shortcut.
Everything is deterministic for a given seed (numpy Generator per clip, derived from seed and file name).

    deepfake-forensics synth --real REAL_CLIPS/ --out data/synth --seed 0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.video import probe, read_frames


@dataclass(frozen=True)
class SynthConfig:
    detect_every: int = 3  # detect on every k-th frame, interpolate boxes between (faces move slowly)
    jpeg_quality: tuple[int, int] = (60, 95)
    blend_ratio: tuple[float, float] = (0.5, 1.0)
    temporal_jitter_px: float = 0.6  # per-frame warp jitter of the SBI source (px at the face scale)


# ---------------------------------------------------------------- landmarks
_PREDICTOR = None
_DETECTOR = None


def _dlib():
    global _PREDICTOR, _DETECTOR
    if _PREDICTOR is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import dlib
            import face_recognition_models as frm
        _PREDICTOR = dlib.shape_predictor(frm.pose_predictor_model_location())
        _DETECTOR = dlib.get_frontal_face_detector()
    return _DETECTOR, _PREDICTOR


def clip_landmarks(frames: np.ndarray, detect_every: int = 3) -> np.ndarray | None:
    """68-point landmarks of the largest face in every frame.

    frames: uint8 (T, H, W, 3) RGB. Returns float32 (T, 68, 2) (x, y) pixels, or None if no face.
    Detection runs on every `detect_every`-th frame; boxes in between are interpolated.
    """
    import dlib

    det, pred = _dlib()
    t = len(frames)
    keys, boxes = [], []
    for i in list(range(0, t, detect_every)) + ([t - 1] if (t - 1) % detect_every else []):
        rects = det(frames[i], 0) or det(frames[i], 1)
        if rects:
            r = max(rects, key=lambda r: r.width() * r.height())
            keys.append(i)
            boxes.append([r.left(), r.top(), r.right(), r.bottom()])
    if not keys:
        return None
    boxes = np.array(boxes, dtype=np.float32)
    out = np.zeros((t, 68, 2), np.float32)
    for i in range(t):
        b = np.array([np.interp(i, keys, boxes[:, j]) for j in range(4)])
        shape = pred(frames[i], dlib.rectangle(*[int(round(v)) for v in b]))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out


# ---------------------------------------------------------------- masks
def hull_mask(shape: tuple[int, int], lms: np.ndarray) -> np.ndarray:
    """float32 (H, W) in {0, 1}: convex hull of the 68 landmarks."""
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(lms.astype(np.int32)), 1)
    return m.astype(np.float32)


def _elastic_field(shape, face_size, rng, strength):
    h, w = shape
    grid = rng.normal(0, strength * face_size, size=(2, 5, 5)).astype(np.float32)
    dx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC)
    return dx, dy


def deform_mask(mask: np.ndarray, field, erode_dilate: int, blur: int) -> np.ndarray:
    """Elastically warp, erode/dilate and blur a {0,1} mask -> soft mask in [0, 1]."""
    h, w = mask.shape
    dx, dy = field
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    m = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if erode_dilate:
        k = np.ones((abs(erode_dilate) * 2 + 1,) * 2, np.uint8)
        m = cv2.dilate(m, k) if erode_dilate > 0 else cv2.erode(m, k)
    blur |= 1
    return np.clip(cv2.GaussianBlur(m, (blur, blur), 0), 0, 1)


# ---------------------------------------------------------------- SBI
def _color_freq(img: np.ndarray, p: dict) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + p["hue"]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * p["sat"], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * p["val"] + p["bright"], 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = np.clip(out * p["rgb"][None, None], 0, 255)
    if p["freq"] == "blur":
        out = cv2.GaussianBlur(out, (0, 0), p["sigma"])
    elif p["freq"] == "sharpen":
        out = np.clip(out + p["amount"] * (out - cv2.GaussianBlur(out, (0, 0), 1.5)), 0, 255)
    elif p["freq"] == "resample":
        h, w = out.shape[:2]
        small = cv2.resize(out, (max(8, int(w * p["scale"])), max(8, int(h * p["scale"]))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def sbi_params(rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> dict:
    """Per-clip SBI parameters (drawn once, so the manipulation is consistent over the clip)."""
    return {
        "hue": float(rng.uniform(-6, 6)), "sat": float(rng.uniform(0.85, 1.15)),
        "val": float(rng.uniform(0.88, 1.12)), "bright": float(rng.uniform(-10, 10)),
        "rgb": rng.uniform(0.93, 1.07, size=3).astype(np.float32),
        "freq": str(rng.choice(["blur", "sharpen", "resample", "none"])),
        "sigma": float(rng.uniform(0.6, 1.6)), "amount": float(rng.uniform(0.4, 1.2)),
        "scale": float(rng.uniform(0.4, 0.8)),
        "zoom": float(rng.uniform(0.95, 1.05)), "shift": rng.uniform(-0.03, 0.03, size=2),
        "ratio": float(rng.uniform(*cfg.blend_ratio)), "erode_dilate_frac": float(rng.uniform(-0.06, 0.04)),
        "blur_frac": float(rng.uniform(0.05, 0.2)), "elastic": float(rng.uniform(0.01, 0.04)),
        "hull": str(rng.choice(["full", "inner"])),
    }


def self_blend(frame: np.ndarray, lms: np.ndarray, p: dict, field, jitter: np.ndarray,
               ratio_jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """One Self-Blended frame. frame uint8 (H, W, 3) RGB, lms (68, 2). Returns (fake uint8, mask float32)."""
    h, w = frame.shape[:2]
    x0, y0 = lms.min(0)
    x1, y1 = lms.max(0)
    size = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    src = _color_freq(frame, p)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), 0.0, p["zoom"])
    m[:, 2] += p["shift"] * size + jitter
    src = cv2.warpAffine(src, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    pts = lms if p["hull"] == "full" else lms[np.r_[0:17, 17:27]] * 0.92 + np.array([cx, cy]) * 0.08
    mask = deform_mask(hull_mask((h, w), pts), field, int(p["erode_dilate_frac"] * size),
                       max(3, int(p["blur_frac"] * size)))
    mask = mask * np.clip(p["ratio"] + ratio_jitter, 0.2, 1.0)
    out = mask[..., None] * src + (1 - mask[..., None]) * frame.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def sbi_clip(frames: np.ndarray, lms: np.ndarray, rng: np.random.Generator,
             cfg: SynthConfig = SynthConfig(), coherent: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Self-blend every frame of a clip: frames uint8 (T, H, W, 3) RGB, lms (T, 68, 2).

    coherent: no per-frame jitter of the source's position or the blend ratio (the same random draws are
    made, so the rest of the caller's stream is unchanged). Returns (fakes uint8 (T, H, W, 3) RGB, masks
    float32 (T, H, W)).
    """
    p = sbi_params(rng, cfg)
    size = float(np.ptp(lms[0], axis=0).max())
    field = _elastic_field(frames.shape[1:3], size, rng, p["elastic"])
    keep = 0.0 if coherent else 1.0
    outs, masks = [], []
    for f, lm in zip(frames, lms):
        jitter = rng.normal(0, cfg.temporal_jitter_px, size=2) * keep
        o, m = self_blend(f, lm, p, field, jitter, float(rng.normal(0, 0.04)) * keep)
        outs.append(o)
        masks.append(m)
    return np.stack(outs), np.stack(masks)


# ---------------------------------------------------------------- face swap
def _triangles(lms: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    sub = cv2.Subdiv2D((0, 0, w, h))
    pts = np.clip(lms, 0, [w - 1, h - 1])
    for x, y in pts:
        sub.insert((float(x), float(y)))
    tri = sub.getTriangleList().reshape(-1, 3, 2)
    out = []
    for t in tri:
        idx = [int(np.argmin(((pts - v) ** 2).sum(1))) for v in t]
        if len(set(idx)) == 3:
            out.append(idx)
    return np.array(out, np.int32)


def _warp_triangle(src, dst, t_src, t_dst):
    r1 = cv2.boundingRect(t_src.astype(np.float32))
    r2 = cv2.boundingRect(t_dst.astype(np.float32))
    if r2[2] <= 0 or r2[3] <= 0 or r1[2] <= 0 or r1[3] <= 0:
        return
    s = t_src - r1[:2]
    d = t_dst - r2[:2]
    patch = src[r1[1]:r1[1] + r1[3], r1[0]:r1[0] + r1[2]]
    if patch.size == 0:
        return
    m = cv2.getAffineTransform(s.astype(np.float32), d.astype(np.float32))
    warped = cv2.warpAffine(patch, m, (r2[2], r2[3]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = np.zeros((r2[3], r2[2], 1), np.float32)
    cv2.fillConvexPoly(mask, d.astype(np.int32), (1.0,), 16, 0)
    y0, x0 = r2[1], r2[0]
    region = dst[y0:y0 + r2[3], x0:x0 + r2[2]]
    hh, ww = region.shape[:2]
    region[:] = region * (1 - mask[:hh, :ww]) + warped[:hh, :ww] * mask[:hh, :ww]


def _lab_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer inside mask: src takes ref's LAB mean/std. uint8 RGB in and out."""
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    sel = mask > 0
    if sel.sum() < 10:
        return src
    ms, ss = s[sel].mean(0), s[sel].std(0) + 1e-3
    mr, sr = r[sel].mean(0), r[sel].std(0) + 1e-3
    s = (s - ms) / ss * sr + mr
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


# (rendered face, target frame) -> the rendered face re-sharpened to the target's: uint8 (H, W, 3) RGB each
Sharpen = Callable[[np.ndarray, np.ndarray], np.ndarray]


def face_swap(target: np.ndarray, t_lms: np.ndarray, source: np.ndarray, s_lms: np.ndarray,
              tris: np.ndarray | None = None, render_scale: float = 1.0, feather: float = 0.0,
              sharpen: Sharpen | None = None) -> np.ndarray:
    """Put `source`'s face onto `target`. Both uint8 (H, W, 3) RGB with (68, 2) landmarks -> uint8 RGB.

    Defaults: the classic landmark swap, pasted with Poisson blending (cv2.seamlessClone), which keeps the
    target's detail along the seam. render_scale < 1: the warped face is re-sampled down to that fraction of
    the frame and back up (bilinear), as a generator that renders the face at a lower resolution than the
    video's; feather > 0: pasted with an alpha mask blurred by feather x the face's size instead of Poisson
    blending, as learned swappers paste their output (`soft_swap_params`). sharpen(face, target) -> face:
    applied to the inner face of the render before it is pasted (families.match_sharpness: a generator's face
    is as sharp as the video inside, only its edge is soft), so that nothing outside the mask changes."""
    h, w = target.shape[:2]
    tris = _triangles(t_lms, (h, w)) if tris is None else tris
    warped = target.astype(np.float32).copy()
    for tri in tris:
        _warp_triangle(source.astype(np.float32), warped, s_lms[tri], t_lms[tri])
    warped = np.clip(warped, 0, 255).astype(np.uint8)
    hull = cv2.convexHull(t_lms.astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8))
    warped = _lab_transfer(warped, target, mask)
    if render_scale < 1.0:
        small = (max(2, round(w * render_scale)), max(2, round(h * render_scale)))
        warped = cv2.resize(cv2.resize(warped, small, interpolation=cv2.INTER_AREA), (w, h),
                            interpolation=cv2.INTER_LINEAR)
    x, y, bw, bh = cv2.boundingRect(hull)
    if sharpen is not None:  # the inner face only: a band of ~15 % of the face's size along its edge stays soft
        k = max(3, int(0.15 * max(bw, bh)) | 1)
        inner = cv2.GaussianBlur(cv2.erode(mask, np.ones((k, k), np.uint8)).astype(np.float32) / 255, (0, 0),
                                 k / 4)[..., None]
        warped = np.clip(inner * sharpen(warped, target) + (1 - inner) * warped + 0.5, 0, 255).astype(np.uint8)
    if feather > 0:
        a = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), max(0.5, feather * max(bw, bh)))[..., None]
        return np.clip(a * warped + (1 - a) * target + 0.5, 0, 255).astype(np.uint8)
    center = (int(np.clip(x + bw // 2, 1, w - 2)), int(np.clip(y + bh // 2, 1, h - 2)))
    try:
        return cv2.seamlessClone(warped, target, mask, center, cv2.NORMAL_CLONE)
    except cv2.error:  # mask touching the border: fall back to a feathered alpha blend
        a = cv2.GaussianBlur(mask.astype(np.float32) / 255, (15, 15), 0)[..., None]
        return (a * warped + (1 - a) * target).astype(np.uint8)


def swap_clip(target: np.ndarray, t_lms: np.ndarray, source: np.ndarray, s_lms: np.ndarray,
              render_scale: float = 1.0, feather: float = 0.0, sharpen: Sharpen | None = None) -> np.ndarray:
    """Swap frame by frame (source frame i onto target frame i, looping the source): uint8 (T, H, W, 3).
    render_scale, feather, sharpen: as `face_swap`, the same for every frame."""
    tris = _triangles(t_lms[0], target.shape[1:3])
    return np.stack([face_swap(target[i], t_lms[i], source[i % len(source)], s_lms[i % len(source)], tris,
                               render_scale, feather, sharpen) for i in range(len(target))])


# ---------------------------------------------------------------- files
def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a uint8 RGB image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def write_video(path: Path, frames: np.ndarray, fps: float, quality: int) -> None:
    """Write uint8 (T, H, W, 3) RGB frames, each JPEG-round-tripped at `quality`, as mp4v."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(jpeg(f, quality), cv2.COLOR_RGB2BGR))
    vw.release()


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)])


def load_clip(path: str | Path, detect_every: int = 3):
    """All frames (uint8 (T, H, W, 3) RGB), their landmarks (T, 68, 2) or None, and fps."""
    info = probe(path)
    frames, _ = read_frames(path, list(range(info.frame_count)), info, max_grab_gap=10**9)
    return frames, clip_landmarks(frames, detect_every), info.fps


def synth_pair(target_path: Path, source_path: Path, out: Path, seed: int, cfg: SynthConfig = SynthConfig(),
               rel: str = "") -> list[dict]:
    """Write real/<rel>.mp4, fake/sbi/<rel>.mp4 and fake/swap/<rel>.mp4 for one real clip; return manifest rows."""
    rng = _rng(seed, rel)
    frames, lms, fps = load_clip(target_path, cfg.detect_every)
    if lms is None:
        return []
    q = int(rng.integers(*cfg.jpeg_quality))
    rows = []
    name = rel + ".mp4"
    write_video(out / "real" / name, frames, fps, q)
    rows.append({"path": f"real/{name}", "label": 0, "method": "real", "source": str(target_path)})
    fakes, _ = sbi_clip(frames, lms, rng, cfg)
    write_video(out / "fake" / "sbi" / name, fakes, fps, q)
    rows.append({"path": f"fake/sbi/{name}", "label": 1, "method": "sbi", "source": str(target_path)})
    sframes, slms, _ = load_clip(source_path, cfg.detect_every)
    if slms is not None:
        fakes = swap_clip(frames, lms, sframes, slms)
        write_video(out / "fake" / "swap" / name, fakes, fps, q)
        rows.append({"path": f"fake/swap/{name}", "label": 1, "method": "swap", "source": str(target_path),
                     "swap_source": str(source_path)})
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="make SBI and face-swap fakes (plus re-encoded reals) from real clips")
    p.add_argument("--real", type=Path, required=True, help="folder of real clips, one sub-folder per identity")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-per-identity", type=int, default=80)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--group", action="append", default=[], metavar="ID,ID,...",
                   help="identities that take swap sources only among themselves (one flag per held-out "
                        "split), so no face of a test speaker leaks into training fakes")
    p.set_defaults(func=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from detector.errors import InputError
    from detector.video import VIDEO_EXTENSIONS

    videos = sorted(f for f in args.real.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
    by_id: dict[str, list[Path]] = {}
    for v in videos:
        by_id.setdefault(v.parent.name, []).append(v)
    ids = sorted(by_id)
    if len(ids) < 2:
        raise InputError(f"{args.real}: face swap needs clips of at least two identities (one folder each)")
    groups = [[i for i in g.split(",") if i in by_id] for g in args.group]
    grouped = {i for g in groups for i in g}
    groups.append([i for i in ids if i not in grouped])
    jobs = []
    for ident in ids:
        rng = _rng(args.seed, ident)
        peers = [i for i in next(g for g in groups if ident in g) if i != ident]
        if not peers:
            raise InputError(f"identity {ident} has no other identity in its group to swap faces with")
        clips = by_id[ident]
        if len(clips) > args.max_per_identity:
            clips = [clips[i] for i in sorted(rng.choice(len(clips), args.max_per_identity, replace=False))]
        for c in clips:
            other = peers[int(rng.integers(len(peers)))]
            src = by_id[other][int(rng.integers(len(by_id[other])))]
            jobs.append((c, src, args.out, args.seed, SynthConfig(), f"{ident}/{c.stem}"))
    rows = []
    with ProcessPoolExecutor(args.workers) as ex:
        for i, r in enumerate(ex.map(_job, jobs), 1):
            rows += r
            if i % 20 == 0 or i == len(jobs):
                print(f"synth {i}/{len(jobs)}", flush=True)
    for r in rows:
        r["identity"] = r["path"].split("/")[-2]
    (args.out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} clips to {args.out}")
    return 0


def _job(a):
    return synth_pair(*a)
