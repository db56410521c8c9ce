"""Paired fakes of every manipulation family, made on the fly from one real 112x112 face crop.

Every fake is made from a real frame that sits in the same batch (Self-Blended Images, Shiohara &
Yamasaki, CVPR 2022), so identity, pose, lighting and padding are never a cue: only the manipulation
trace separates the classes. Families (issue "a default model that holds on real-world clips", 2a-2f):

- ``sbi``: self-blend of the whole face (detector.training.synth.self_blend).
- ``region``: the same blend restricted to the mouth / lower face (what lip-sync leaves) or the eyes.
- ``swap``: landmark face swap from another identity (synth.face_swap), pasted with Poisson blending.
- ``softswap``: the same swap rendered at a lower resolution and pasted with a feathered mask, as learned
  swappers paste their output (`soft_swap_params`). Why: on the product's crops the dev set's face swaps
  carry *less* fine detail along the face's edge than just outside it, and ``swap`` fakes more (issue 15,
  stop 33: the ring statistics in the sweep record).
- ``resynth``: the crop, the face or the mouth passed through a simulated *upsampling decoder* (down-
  sample, then bilinear / bicubic / nearest+blur / zero-insertion "transposed convolution" with a random
  kernel, which leaves the checkerboard spectrum of GAN decoders: Zhang, Karaman & Chang 2019,
  "Detecting and Simulating Artifacts in GAN Fake Images"), optionally denoised like a generator's clean
  output; kept whole or pasted back with a soft mask. A stand-in for talking-head, NeRF and lip-sync
  generators, with no network to train.
- ``warp``: smooth non-rigid displacement of the face (bilinear resampling, as warping-based animators
  such as first-order-motion / TPSMM / LivePortrait do).
- Clips (``fake_clip``): the same families per frame with parameters drawn once per clip plus flicker
  (2e), and ``animate``: one real frame, its noise frozen, driven by smooth non-rigid motion over T
  frames (2f) — the texture moves with the warp instead of renewing itself as in real video; and
  ``reenact``: frame 0 driven by the real clip's own landmark motion, so that only texture renewal differs.

``degrade`` gives real and fake frames the same codec-style damage (JPEG, noise, resolution), so that
clean-vs-noisy is never the cue; ``h264`` gives a clip pair the same real H.264 round trip (inter-frame
coding, which per-frame JPEG does not imitate). ``match_sharpness`` then re-sharpens (or softens) every fake until the
high-frequency energy of its face equals its real frame's: blends, decoders and warps all smooth, and a
first recipe without this learned "blurry face = fake", which ranks real-world fakes *below* real video
(public generators' faces are sharper than compressed real footage: measured on the dev set, sharpness
alone separates its portrait-animation fakes from its real clips with ROC-AUC 0.80, the wrong way).
All images uint8 (H, W, 3) RGB; landmarks float32 (68, 2) in pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from detector.training import synth

FAMILIES = ("sbi", "region", "swap", "softswap", "resynth", "warp")
SWAPS = ("swap", "softswap")  # the families that need a face of another identity
MOUTH = np.r_[2:15, 31:36, 48:68]  # lower jaw, nose base, lips: the lip-sync region
EYES = np.r_[17:27, 36:48]  # brows and eyes


def _soft_mask(shape, pts: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    """Soft {0..1} float32 (H, W) mask: convex hull of `pts`, elastically deformed, dilated, blurred."""
    field = synth._elastic_field(shape, size, rng, float(rng.uniform(0.01, 0.03)))
    return synth.deform_mask(synth.hull_mask(shape, pts), field, int(rng.uniform(-0.03, 0.06) * size),
                             max(3, int(rng.uniform(0.05, 0.18) * size)))


def _face_size(lms: np.ndarray) -> float:
    return float(np.ptp(lms, axis=0).max())


def _paste(real: np.ndarray, src: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = mask[..., None] * src.astype(np.float32) + (1 - mask[..., None]) * real.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- (b) region blends
def region_params(rng: np.random.Generator) -> dict:
    p = synth.sbi_params(rng)
    p["region"] = str(rng.choice(["mouth", "mouth", "eyes"]))
    return p


def region_blend(frame: np.ndarray, lms: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """A self-blend inside the mouth/lower-face or eye region only."""
    h, w = frame.shape[:2]
    size = _face_size(lms)
    src = synth._color_freq(frame, p)
    m = cv2.getRotationMatrix2D(tuple(map(float, lms[MOUTH if p["region"] == "mouth" else EYES].mean(0))),
                                0.0, p["zoom"])
    m[:, 2] += p["shift"] * size * 0.5
    src = cv2.warpAffine(src, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    mask = _soft_mask((h, w), lms[MOUTH if p["region"] == "mouth" else EYES], size, rng)
    return _paste(frame, src, mask * p["ratio"])


# ---------------------------------------------------------------- (c) swaps (synth.face_swap)
def soft_swap_params(rng: np.random.Generator) -> dict:
    """A "softswap": the face rendered at 30-60 % of the crop's resolution (the ~70-px face of a 112-px crop
    at 20-40 px) and pasted with an alpha mask blurred by 3-8 % of the face's size; the inner face of the
    render is matched in sharpness to the real frame's (`match_sharpness`) before it is pasted, so only a band
    along the edge stays soft. The ranges are a choice that reproduces the dev swaps' soft edge on held-out
    stills (sweep record, stop 33), not measured generator resolutions."""
    return {"render_scale": float(rng.uniform(0.3, 0.6)), "feather": float(rng.uniform(0.03, 0.08)),
            "sharpen": match_sharpness}


def swap_params(family: str, rng: np.random.Generator) -> dict:
    """synth.face_swap's keywords for a family of SWAPS: none for "swap" (the classic paste), a fresh draw of
    `soft_swap_params` for "softswap" (the rng is only drawn from for the latter)."""
    return soft_swap_params(rng) if family == "softswap" else {}


# ---------------------------------------------------------------- (d) re-synthesis
def resynth_params(rng: np.random.Generator) -> dict:
    return {"scale": int(rng.choice([2, 2, 2, 3])),  # generators work near the face's own resolution
            "up": str(rng.choice(["bilinear", "bicubic", "nearest_blur", "transposed", "transposed"])),
            "kernel": rng.uniform(0.2, 1.0, size=(8,)).astype(np.float32), "imbalance": float(rng.uniform(0, 0.06)),
            "denoise": bool(rng.random() < 0.5), "where": str(rng.choice(["crop", "face", "face", "mouth"])),
            "ratio": float(rng.uniform(0.7, 1.0))}


def upsampling_decoder(img: np.ndarray, p: dict) -> np.ndarray:
    """Down-sample by p['scale'], then up-sample the way a decoder does. float32 (H, W, 3) in and out."""
    h, w = img.shape[:2]
    s = p["scale"]
    small = cv2.resize(img, (max(4, w // s), max(4, h // s)), interpolation=cv2.INTER_AREA)
    if p["up"] == "bilinear":
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif p["up"] == "bicubic":
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    elif p["up"] == "nearest_blur":
        out = cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST), (0, 0), 0.4 * s)
    else:  # zero insertion + a random separable kernel: phases sum to different gains -> checkerboard
        sh, sw = small.shape[:2]
        z = np.zeros((sh * s, sw * s, 3), np.float32)
        z[::s, ::s] = small
        k1 = p["kernel"][: 2 * s]
        k = np.outer(k1, k1)
        # Each output phase (i mod s, j mod s) sums its own subset of taps: normalise every phase to a
        # gain of 1 +- p["imbalance"], a faint checkerboard as in trained decoders, not a grid overlay.
        gain = 1 + p["imbalance"] * np.sign(np.add.outer(np.arange(s), np.arange(s)) % 2 - 0.5)
        for a in range(s):
            for b in range(s):
                k[a::s, b::s] *= gain[a, b] / k[a::s, b::s].sum()
        out = cv2.resize(cv2.filter2D(z, -1, k, borderType=cv2.BORDER_REFLECT), (w, h),
                         interpolation=cv2.INTER_NEAREST)
    if p["denoise"]:
        out = cv2.bilateralFilter(np.clip(out, 0, 255).astype(np.float32), 5, 20, 3)
    return out


def resynth(frame: np.ndarray, lms: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    src = upsampling_decoder(frame.astype(np.float32), p)
    if p["where"] == "crop":
        return np.clip(src + 0.5, 0, 255).astype(np.uint8)
    pts = lms if p["where"] == "face" else lms[MOUTH]
    return _paste(frame, src, _soft_mask(frame.shape[:2], pts, _face_size(lms), rng) * p["ratio"])


# ---------------------------------------------------------------- (f) warping
def warp_field(shape, lms: np.ndarray, rng: np.random.Generator, strength: float,
               mouth_open: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth displacement (dx, dy) float32 (H, W), confined to the face by a soft hull mask.

    mouth_open (px at the face scale): the lower lip and jaw move down, fading with distance, as a
    driving video's mouth does.
    """
    h, w = shape
    size = _face_size(lms)
    dx, dy = synth._elastic_field(shape, size, rng, strength)
    if mouth_open:
        cx, cy = lms[62:68].mean(0)  # inner lower lip
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        g = np.exp(-(((xs - cx) / (0.35 * size)) ** 2 + ((ys - cy - 0.1 * size) / (0.3 * size)) ** 2))
        dy = dy - mouth_open * g * (ys > cy - 0.05 * size)  # remap samples from above: content moves down
    face = cv2.GaussianBlur(synth.hull_mask(shape, lms), (0, 0), 0.08 * size)
    return dx * face, dy * face


def warp(frame: np.ndarray, field) -> np.ndarray:
    h, w = frame.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(frame, xs + field[0], ys + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# ---------------------------------------------------------------- sharpness matching
def _centre(h: int, w: int) -> tuple[slice, slice]:
    """The central half of an (h, w) crop: where the face is, for sharpness matching."""
    return slice(h // 4, h - h // 4), slice(w // 4, w - w // 4)


def sharpness(img: np.ndarray) -> float:
    """Variance of the Laplacian of the central half of a uint8 RGB crop (the face), a focus measure."""
    g = cv2.cvtColor(np.ascontiguousarray(img[_centre(*img.shape[:2])]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g.astype(np.float32), cv2.CV_32F).var())


_AMOUNTS = (-0.8, -0.6, -0.4, -0.2, 0.0, 0.25, 0.5, 0.8, 1.2, 1.7, 2.3, 3.0)


def match_sharpness(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The fake, unsharp-masked (amount > 0) or blended towards its blur (< 0) so that its face's
    sharpness is as close as the amounts allow to the real frame's. uint8 RGB in and out."""
    target = np.log(sharpness(real) + 1e-3)
    x = fake.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), 1.0)
    best, err = fake, abs(np.log(sharpness(fake) + 1e-3) - target)
    for a in _AMOUNTS:
        if a == 0.0:
            continue
        cand = np.clip(x + a * (x - blur) + 0.5, 0, 255).astype(np.uint8)
        e = abs(np.log(sharpness(cand) + 1e-3) - target)
        if e < err:
            best, err = cand, e
    return best


def match_sharpness_regions(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """As `match_sharpness`, but the face centre (the central half) and the periphery each get their own
    amount, so a fake whose background or border came out softer or sharper than the real frame's (warps,
    re-synthesis) is matched there too. uint8 RGB in and out.

    Why: on held-out clips the centre-matched families still had softer crops than their reals and less
    detail in the centre relative to the border (research/devset_cues.py --synthetic), the opposite of
    the dev set's portrait animations.
    """
    x = fake.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), 1.0)
    grey = lambda a: a @ np.float32([0.299, 0.587, 0.114])  # noqa: E731
    lap = lambda a: cv2.Laplacian(grey(a), cv2.CV_32F)  # noqa: E731
    h, w = fake.shape[:2]
    centre = np.zeros((h, w), bool)
    centre[_centre(h, w)] = True
    lf, d, lr = lap(x), lap(x) - lap(blur), lap(real.astype(np.float32))
    amounts = np.array((0.0,) + _AMOUNTS, np.float32)
    picked = []
    for region in (centre, ~centre):
        # The Laplacian is linear: the candidate x + a (x - blur) has Laplacian lf + a d (before clipping).
        var = np.array([(lf[region] + a * d[region]).var() for a in amounts])
        picked.append(amounts[np.argmin(np.abs(np.log(var + 1e-3) - np.log(lr[region].var() + 1e-3)))])
    # The transition lies outside the centre, so the centre keeps exactly its own amount.
    mask = np.maximum(centre, cv2.GaussianBlur(centre.astype(np.float32), (0, 0), max(1.0, h / 32)))[..., None]
    amount = picked[0] * mask + picked[1] * (1 - mask)
    return np.clip(x + amount * (x - blur) + 0.5, 0, 255).astype(np.uint8)


# The command lines' names for the `match` argument of `matched` / fake_frame / fake_clip.
MATCH_BY_NAME = {"centre": True, "regions": "regions", "none": False}


# ---------------------------------------------------------------- one fake frame
def matched(fake: np.ndarray, real: np.ndarray, match: bool | str) -> np.ndarray:
    """`fake` matched in sharpness to `real`: True in the face centre (`match_sharpness`), "regions" in the
    centre and the periphery separately (`match_sharpness_regions`), False not at all."""
    if match not in (True, False, "regions"):
        raise ValueError(f"match must be True, False or 'regions', not {match!r}")
    if not match:
        return fake
    return match_sharpness_regions(fake, real) if match == "regions" else match_sharpness(fake, real)


def fake_frame(family: str, frame: np.ndarray, lms: np.ndarray, rng: np.random.Generator,
               other: tuple[np.ndarray, np.ndarray] | None = None, match: bool | str = True) -> np.ndarray:
    """A fresh fake of `family` made from real `frame` (uint8 (S, S, 3) RGB, lms (68, 2)), matched in
    sharpness to `frame` as `matched` says (True: face centre; "regions"; False: not at all).

    other: (frame, lms) of another identity, needed for "swap" and "softswap" (ValueError without it).
    """
    return matched(_fake_frame(family, frame, lms, rng, other), frame, match)


def _fake_frame(family, frame, lms, rng, other):
    if family == "sbi":
        return synth.sbi_clip(frame[None], lms[None], rng)[0][0]
    if family == "region":
        return region_blend(frame, lms, region_params(rng), rng)
    if family in SWAPS:
        if other is None:
            raise ValueError("a swap needs a face of another identity")
        return synth.face_swap(frame, lms, other[0], other[1], **swap_params(family, rng))
    if family == "resynth":
        return resynth(frame, lms, resynth_params(rng), rng)
    if family == "warp":
        size = _face_size(lms)
        f = warp_field(frame.shape[:2], lms, rng, float(rng.uniform(0.008, 0.025)),
                       float(rng.uniform(0, 0.1) * size))
        return warp(frame, f)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


# ---------------------------------------------------------------- codec-style damage, both classes
def degrade(img: np.ndarray, rng: np.random.Generator, p: dict | None = None) -> np.ndarray:
    """Noise, resolution loss and JPEG, drawn the same way for real and fake. uint8 RGB in and out.

    p: fixed parameters (for every frame of a clip); None draws new ones.
    """
    p = p or degrade_params(rng)
    x = img.astype(np.float32)
    if p["scale"] < 1:
        h, w = x.shape[:2]
        x = cv2.resize(cv2.resize(x, (max(8, int(w * p["scale"])), max(8, int(h * p["scale"]))),
                                  interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
    if p["noise"]:
        x = x + rng.normal(0, p["noise"], x.shape).astype(np.float32)
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if p["jpeg"]:
        out = synth.jpeg(out, p["jpeg"])
    return out


# A real-world clip reaches an analyst as H.264 (or a later codec), whose P-frames copy blocks from the
# previous frame: in a flat or slowly moving area a real camera's fresh grain is *not* renewed, which is what
# the residual stream reads as a generator's frozen texture. Per-frame JPEG (degrade) never does this.
H264_CRF = (18, 40)  # x264 CRF drawn per clip pair: 18 near-transparent .. 40 heavy blocking
H264_SIDES = (112, 160, 224)  # the face's size in the encoded video (small faces suffer the codec most)


def h264(frames: np.ndarray, crf: int, side: int = 224) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB frames through an H.264 encode and decode (libx264 -preset veryfast, yuv420p,
    25 fps, the frames in order as one stream, decoded in display order) at `side` x `side` pixels, back to
    (T, H, W, 3). Deterministic for the same input and parameters (x264 single-threaded). Used on a real
    clip and its paired fake with the same (crf, side)."""
    import subprocess

    import imageio_ffmpeg

    t, h, w = frames.shape[:3]
    if t == 0:
        return frames
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    interp = cv2.INTER_CUBIC if side > max(h, w) else cv2.INTER_AREA
    up = np.stack([cv2.resize(f, (side, side), interpolation=interp) for f in frames])
    enc = subprocess.run([ff, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{side}x{side}", "-r", "25",
                          "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(crf)), "-threads", "1",
                          "-pix_fmt", "yuv420p", "-f", "h264", "-"], input=up.tobytes(), capture_output=True)
    dec = subprocess.run([ff, "-v", "error", "-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-threads", "1", "-"], input=enc.stdout, capture_output=True)
    if enc.returncode or dec.returncode:
        raise RuntimeError(f"h264 round trip failed: {(enc.stderr or dec.stderr).decode(errors='replace')[:300]}")
    out = np.frombuffer(dec.stdout, np.uint8).reshape(-1, side, side, 3)
    if len(out) != t:
        raise RuntimeError(f"h264 round trip returned {len(out)} frames for {t}")
    back = cv2.INTER_AREA if side > max(h, w) else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (w, h), interpolation=back) for f in out])


def h264_params(rng: np.random.Generator) -> dict:
    return {"crf": int(rng.integers(H264_CRF[0], H264_CRF[1] + 1)), "side": int(rng.choice(H264_SIDES))}


def degrade_params(rng: np.random.Generator) -> dict:
    return {"scale": float(rng.uniform(0.5, 0.95)) if rng.random() < 0.25 else 1.0,
            "noise": float(rng.uniform(1, 6)) if rng.random() < 0.4 else 0.0,
            "jpeg": int(rng.integers(45, 95)) if rng.random() < 0.6 else 0}


# ---------------------------------------------------------------- clips (stage 2)
def _smooth_path(t: int, rng: np.random.Generator, amp: float, knots: int = 4) -> np.ndarray:
    """A smooth random 1-D path of length t (cubic through `knots` random values), float32."""
    k = rng.normal(0, amp, knots).astype(np.float32)
    return cv2.resize(k[None], (t, 1), interpolation=cv2.INTER_CUBIC)[0]


def _affine_path(t: int, center, rng: np.random.Generator, amp: float) -> list[np.ndarray]:
    """Per-frame 2x3 affines for a small smooth camera/head motion (shift px, rotation deg, zoom)."""
    sx, sy, rot, zoom = (_smooth_path(t, rng, a) for a in (amp, amp, 1.5 * amp / 2, 0.01 * amp / 2))
    mats = []
    for i in range(t):
        m = cv2.getRotationMatrix2D(center, float(rot[i]), float(1 + zoom[i]))
        m[:, 2] += (sx[i], sy[i])
        mats.append(m.astype(np.float32))
    return mats


def _apply_affine(img, lms, m):
    h, w = img.shape[:2]
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, (lms @ m[:, :2].T + m[:, 2]).astype(np.float32)


def pseudo_clip(frame: np.ndarray, lms: np.ndarray, t: int, rng: np.random.Generator,
                nonrigid: float = 0.015, motion: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A real-looking clip from one real still: small smooth head/camera motion, mild non-rigid motion
    (talking faces move non-rigidly, so rigid-only motion must not be the cue), fresh sensor noise and
    JPEG per frame (real video renews its noise every frame). motion scales all movement (0: none).
    Returns uint8 (T, S, S, 3), lms (T, 68, 2).
    """
    s = frame.shape[0]
    mats = _affine_path(t, (s / 2, s / 2), rng, motion * float(rng.uniform(0.5, 2.5)))
    open_path = motion * np.abs(_smooth_path(t, rng, 0.04 * _face_size(lms), knots=6))
    base_field_rng = np.random.default_rng(int(rng.integers(1 << 31)))
    dp = degrade_params(rng)
    frames, lm_out = [], []
    for i in range(t):
        f = warp(frame, warp_field(frame.shape[:2], lms, np.random.default_rng(base_field_rng.integers(1 << 31)),
                                   motion * nonrigid, float(open_path[i])))
        f, lm = _apply_affine(f, lms, mats[i])
        dp_i = {**dp, "noise": max(dp["noise"], 1.5)}  # fresh noise every frame
        frames.append(degrade(f, rng, dp_i))
        lm_out.append(lm)
    return np.stack(frames), np.stack(lm_out)


def animate(frame: np.ndarray, lms: np.ndarray, t: int, rng: np.random.Generator, motion: float = 1.0) -> np.ndarray:
    """(2f) One real frame, noise frozen in, driven by smooth non-rigid motion (mouth, head) over t frames.

    Returns uint8 (T, S, S, 3) RGB. Only mild JPEG per frame: the texture and its grain move with the warp.
    motion scales all movement (0: none).
    """
    s = frame.shape[0]
    base = degrade(frame, rng, {"scale": 1.0, "noise": float(rng.uniform(1.5, 5)), "jpeg": 0})
    mats = _affine_path(t, (s / 2, s / 2), rng, motion * float(rng.uniform(0.5, 3.0)))
    size = _face_size(lms)
    open_path = motion * np.abs(_smooth_path(t, rng, 0.1 * size, knots=6))
    strength = motion * float(rng.uniform(0.01, 0.04))
    seeds = rng.integers(1 << 31, size=3)
    fields = [warp_field(frame.shape[:2], lms, np.random.default_rng(sd), strength) for sd in seeds]
    w = cv2.resize(rng.uniform(-1, 1, (3, 4)).astype(np.float32), (t, 3), interpolation=cv2.INTER_CUBIC)
    q = int(rng.integers(60, 95))
    out = []
    for i in range(t):
        dx = sum(w[j, i] * fields[j][0] for j in range(3))
        dy = sum(w[j, i] * fields[j][1] for j in range(3))
        mouth = warp_field(frame.shape[:2], lms, np.random.default_rng(0), 0.0, float(open_path[i]))
        f = warp(base, (dx + mouth[0], dy + mouth[1]))
        f, _ = _apply_affine(f, lms, mats[i])
        out.append(synth.jpeg(f, q))
    return np.stack(out)


def _tps(centres: np.ndarray, values: np.ndarray, query: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Thin-plate spline through `values` (N, 2) at `centres` (N, 2), evaluated at `query` (M, 2): kernel
    r^2 log r plus an affine term, `smoothing` on the kernel's diagonal (scipy's RBFInterpolator with
    kernel="thin_plate_spline" solves the same system; numpy here, so training needs no scipy)."""
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        return np.where(r > 0, r ** 2 * np.log(np.maximum(r, 1e-12)), 0.0)

    c = centres.astype(np.float64)
    n = len(c)
    poly = np.concatenate([np.ones((n, 1)), c], 1)
    lhs = np.zeros((n + 3, n + 3))
    lhs[:n, :n] = kernel(c, c) + smoothing * np.eye(n)
    lhs[:n, n:], lhs[n:, :n] = poly, poly.T
    rhs = np.concatenate([values.astype(np.float64), np.zeros((3, values.shape[1]))])
    coef = np.linalg.solve(lhs, rhs)
    q = query.astype(np.float64)
    return kernel(q, c) @ coef[:n] + np.concatenate([np.ones((len(q), 1)), q], 1) @ coef[n:]


def _landmark_field(shape, src: np.ndarray, dst: np.ndarray, grid: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Backward displacement (dx, dy) float32 (H, W) that takes a picture with landmarks `src` (68, 2) to
    one with landmarks `dst`: out(p) = in(p + d(p)). A similarity transform fitted on all 68 points moves
    the whole crop (the head and the tracked crop move together); the landmarks' residuals are spread by
    a thin-plate spline on a coarse grid, pinned to zero at the crop's border."""
    h, w = shape
    m, _ = cv2.estimateAffinePartial2D(dst.astype(np.float32), src.astype(np.float32))
    if m is None:
        m = np.float32([[1, 0, 0], [0, 1, 0]])
    xs, ys = np.meshgrid(np.linspace(0, w - 1, grid, dtype=np.float32), np.linspace(0, h - 1, grid, dtype=np.float32))
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    rigid = pts @ m[:, :2].T + m[:, 2] - pts
    resid = src - (dst @ m[:, :2].T + m[:, 2])  # what the similarity does not explain: the face's own motion
    edge = np.concatenate([np.stack([np.linspace(0, w - 1, 8), np.full(8, v)], 1) for v in (0, h - 1)]
                          + [np.stack([np.full(8, v), np.linspace(0, h - 1, 8)], 1) for v in (0, w - 1)])
    spread = _tps(np.concatenate([dst, edge]), np.concatenate([resid, np.zeros_like(edge)]), pts)
    d = (rigid + spread).astype(np.float32).reshape(grid, grid, 2)
    d = cv2.resize(d, (w, h), interpolation=cv2.INTER_CUBIC)
    return d[..., 0], d[..., 1]


def reenact(frames: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(2f) Self-reenactment: frame 0 of a real clip, its grain frozen, driven by the clip's *own* landmark
    motion, as first-order-motion / TPSMM / LivePortrait drive a source image by a driving video.

    The pair then differs in one thing only: the real clip renews its texture and sensor noise every frame,
    the fake moves one frame's texture with the warp (`animate` draws its own motion, which moves more than
    GRID's heads and so decorrelates grain at fixed pixels: the wrong way round). Landmarks are smoothed
    over time first (keypoint detectors jitter; animators' keypoints are smoother). Only mild JPEG per frame.
    frames uint8 (T, S, S, 3), lms (T, 68, 2) -> uint8 (T, S, S, 3) RGB.
    """
    base = degrade(frames[0], rng, {"scale": 1.0, "noise": float(rng.uniform(1.0, 3.0)), "jpeg": 0})
    path = cv2.GaussianBlur(lms.reshape(len(lms), -1).astype(np.float32), (1, 0), sigmaX=0.01, sigmaY=1.0) \
        if len(lms) > 2 else lms.reshape(len(lms), -1)
    path = path.reshape(lms.shape)
    q = int(rng.integers(70, 96))
    out = [synth.jpeg(base, q)]
    for t in range(1, len(frames)):
        out.append(synth.jpeg(warp(base, _landmark_field(base.shape[:2], path[0], path[t])), q))
    return np.stack(out)


def fake_clip(family: str, frames: np.ndarray, lms: np.ndarray, rng: np.random.Generator,
              other: tuple[np.ndarray, np.ndarray] | None = None, match: bool | str = True,
              motion: float = 1.0, coherent: bool = False) -> np.ndarray:
    """A fake clip of `family` made from the real clip `frames` uint8 (T, S, S, 3), lms (T, 68, 2).

    Parameters are drawn once per clip; with probability 1/2 the blend strength flickers per frame (2e).
    coherent: never any per-frame flicker or jitter, and a swap pastes one source frame (warped to every
    target frame) instead of the source clip's frame i: the generated face is as steady as real-world
    generators make it (`research/probe_embedding.py --clips`: flickering fakes teach "identity that
    changes = fake", where real-world fakes change *less* from frame to frame than real video).
    "animate" drives frame 0 (see `animate`); "swap" and "softswap" need `other` = (frames, lms) of another
    identity.
    Each fake frame is matched in sharpness to the real frame at the same time step: match=True in the
    face centre (`match_sharpness`), "regions" in the centre and the periphery separately
    (`match_sharpness_regions`), False not at all. motion: the movement scale of "animate" (as the real
    pseudo-clip it pairs with was made).
    """
    out = _fake_clip(family, frames, lms, rng, other, motion, coherent)
    return np.stack([matched(f, r, match) for f, r in zip(out, frames)]) if match else out


def _per_frame(fn, p: dict, frames, lms, rng: np.random.Generator, flicker: bool, coherent: bool = False) -> np.ndarray:
    """fn(frame, lms, params, rng) on every frame with the clip's parameters (same mask draw per frame);
    with flicker the blend ratio jitters from frame to frame, unless coherent (the draws are still made)."""
    seed = int(rng.integers(1 << 31))
    keep = 0.0 if coherent else 1.0
    out = []
    for f, lm in zip(frames, lms):
        q = {**p, "ratio": float(np.clip(p["ratio"] + (rng.normal(0, 0.15) * keep if flicker else 0), 0.2, 1))}
        out.append(fn(f, lm, q, np.random.default_rng(seed)))
    return np.stack(out)


def _fake_clip(family, frames, lms, rng, other, motion=1.0, coherent=False):
    t = len(frames)
    if family == "animate":
        return animate(frames[0], lms[0], t, rng, motion)
    if family == "reenact":
        return reenact(frames, lms, rng)
    if family == "sbi":
        return synth.sbi_clip(frames, lms, rng, coherent=coherent)[0]
    if family in SWAPS:
        if other is None:
            raise ValueError("a swap needs a face of another identity")
        src, src_lms = (other[0][:1], other[1][:1]) if coherent else other
        return synth.swap_clip(frames, lms, src, src_lms, **swap_params(family, rng))
    flicker = rng.random() < 0.5
    if family == "region":
        return _per_frame(region_blend, region_params(rng), frames, lms, rng, flicker, coherent)
    if family == "resynth":
        return _per_frame(resynth, resynth_params(rng), frames, lms, rng, flicker, coherent)
    if family == "warp":
        size = _face_size(lms[0])
        seed = int(rng.integers(1 << 31))
        strength = float(rng.uniform(0.008, 0.025))
        open_path = np.abs(_smooth_path(t, rng, 0.08 * size, knots=6))
        return np.stack([warp(f, warp_field(f.shape[:2], lm, np.random.default_rng(seed), strength,
                                            float(open_path[i]))) for i, (f, lm) in enumerate(zip(frames, lms))])
    raise ValueError(f"unknown clip family {family!r}")
