"""research/probe_consistency.py: each within-clip statistic moves the way its docstring says, on frames
made here (so that a sign error in a ratio or a swapped mask would fail), and clip_stats runs on a real
committed GRID clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from research import probe_consistency as pc

BOX = (60.0, 50.0, 140.0, 150.0)  # x0, y0, x1, y1 in a 200 x 200 frame


def _base(rng: np.random.Generator) -> np.ndarray:
    """Smooth scene structure, float32 (200, 200)."""
    return cv2.GaussianBlur(rng.uniform(60, 190, (200, 200)).astype(np.float32), (0, 0), 3)


def _shot(base: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """One camera frame of the scene with its sensor noise, uint8 (200, 200, 3) RGB."""
    return np.repeat(np.clip(base + noise, 0, 255).astype(np.uint8)[..., None], 3, -1)


def _frame(rng: np.random.Generator, sigma: float = 6.0) -> np.ndarray:
    """A textured grey frame (structure plus noise), uint8 (200, 200, 3) RGB."""
    base = _base(rng)
    return _shot(base, rng.normal(0, sigma, base.shape))


def _blur(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[mask] = cv2.GaussianBlur(img, (0, 0), 1.5)[mask]
    return out


def test_grain_persistence_separates_frozen_from_fresh_noise():
    rng = np.random.default_rng(0)
    base = _base(rng)
    n1, n2 = rng.normal(0, 6, (2, *base.shape))
    a = _shot(base, n1)
    frozen = pc.pair_stats(a, _shot(base, n1), BOX)  # a generator's frame: the same grain again
    fresh = pc.pair_stats(a, _shot(base, n2), BOX)  # a camera: new sensor noise on the same scene
    assert frozen["grain_face"] > 0.99 and frozen["grain_ring"] > 0.99
    assert fresh["grain_face"] < 0.5 and fresh["grain_ring"] < 0.5


def test_motion_compensated_grain_follows_a_moving_texture():
    """A frame shifted by 2 px, grain and all (a warp), keeps its grain after motion compensation and
    loses it at fixed pixels; the same shift with fresh noise (a camera) keeps it in neither."""
    rng = np.random.default_rng(3)
    base = _base(rng)
    n1, n2 = rng.normal(0, 6, (2, *base.shape))
    a = _shot(base, n1)
    warped = np.roll(a, 2, axis=1)
    camera = np.roll(_shot(base, n2), 2, axis=1)
    w = pc.pair_stats(a, warped, BOX)
    c = pc.pair_stats(a, camera, BOX)
    assert w["grain_face_mc"] > 0.6 and w["grain_face"] < 0.5
    assert c["grain_face_mc"] < w["grain_face_mc"] - 0.3


def test_blurred_face_and_mouth_lower_their_ratios():
    rng = np.random.default_rng(1)
    a = _frame(rng)
    base = pc.pair_stats(a, a, BOX)
    face = pc._mask(a.shape[:2], BOX, 0.7)
    mouth = pc._mask(a.shape[:2], BOX, 1.0, (0.25, 0.85), (-0.45, 0.45))
    soft_face = _blur(a, face)
    soft_mouth = _blur(a, mouth)
    assert pc.pair_stats(soft_face, soft_face, BOX)["face_ring_fine"] < base["face_ring_fine"] - 0.5
    assert pc.pair_stats(soft_face, soft_face, BOX)["face_fine_mid"] < base["face_fine_mid"] - 0.3
    assert pc.pair_stats(soft_mouth, soft_mouth, BOX)["mouth_eyes_fine"] < base["mouth_eyes_fine"] - 0.5


def test_motion_inside_the_face_raises_motion_ratio():
    rng = np.random.default_rng(2)
    a = _frame(rng)
    face = pc._mask(a.shape[:2], BOX, 0.7)
    b = a.copy()
    b[face] = np.roll(a, 3, axis=1)[face]  # the face moves, the ring does not
    assert pc.pair_stats(a, b, BOX)["motion_face_ring"] > pc.pair_stats(a, a, BOX)["motion_face_ring"] + 1.0


@pytest.mark.slow
def test_clip_stats_on_a_real_clip(face_clip):
    x = pc.clip_stats(str(face_clip), pairs=3)
    assert x is not None and x.shape == (len(pc.NAMES),) and np.isfinite(x).all()
    damaged = pc.clip_stats(str(face_clip), pairs=3, damage=np.random.default_rng(0), camera=True)
    # Fresh noise every frame must lower grain persistence in the face (index of "grain_face").
    g = pc.NAMES.index("grain_face")
    assert damaged[g] < x[g]
