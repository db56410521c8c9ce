"""research/probe_dense.py: the difference map marks where a fake was changed and nowhere else, and a batch
pairs each real frame with a fake whose map is not empty (so a broken target would fail here, not silently
train a map head on noise)."""

from __future__ import annotations

import numpy as np

from research import probe_dense as pd


def _pool(crop_clips):
    """train_pack._pool's layout from the two fixture clips: (stills, clip frames), each (crops, lms, ids)."""
    crops, lms = crop_clips
    return (crops[0], lms[0], np.array(["a"] * 4)), (crops[1], lms[1], np.array(["b"] * 4))


def test_diff_map_marks_only_the_changed_cell():
    rng = np.random.default_rng(0)
    real = np.clip(128 + rng.normal(0, 20, (112, 112, 3)), 0, 255).astype(np.uint8)
    assert pd.diff_map(real, real, 12.0).max() == 0
    fake = real.copy()
    fake[64:96, 64:96] = np.clip(fake[64:96, 64:96].astype(int) + 40, 0, 255)  # one 32-px block: cells (4-5, 4-5)
    m = pd.diff_map(real, fake, 12.0)
    assert m.shape == (pd.MAP, pd.MAP) and 0 <= m.min() and m.max() <= 1
    assert m[4:6, 4:6].min() > 0.5
    assert m[:3, :3].max() < 0.05  # far from the change


def test_dense_batch_pairs_reals_with_fakes_and_empty_maps(crop_clips):
    x, y, m = pd.dense_batch(_pool(crop_clips), pd.PackConfig(), 3, 12.0, np.random.default_rng(1))
    assert x.shape == (6, 112, 112, 3) and x.dtype == np.uint8
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    assert m.shape == (6, pd.MAP, pd.MAP)
    assert (m[:3] == 0).all()
    assert (m[3:].reshape(3, -1).max(1) > 0.2).all()


def test_smooth_removes_fine_detail_and_keeps_pairs_aligned(crop_clips):
    import cv2

    img = crop_clips[0][0, 0]
    out = pd.smooth(img, {"colour": 30.0, "scale": 0.5})
    lap = lambda x: cv2.Laplacian(x.mean(-1).astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    assert out.shape == img.shape and out.dtype == np.uint8
    assert lap(out) < 0.5 * lap(img)
    pool = _pool(crop_clips)
    x, y, m = pd.dense_batch(pool, pd.PackConfig(), 3, 12.0, np.random.default_rng(1), smooth_p=1.0)
    assert (m[:3] == 0).all() and (m[3:].reshape(3, -1).max(1) > 0.1).all()
    x0, _, _ = pd.dense_batch(pool, pd.PackConfig(), 3, 12.0, np.random.default_rng(1))
    assert lap(x[0]) < lap(x0[0])  # the same draw, smoothed
