"""research/devset_cues.py's ring statistics: each moves the way its docstring says when only the region it
reads is changed (so a sign or mask error would fail)."""

from __future__ import annotations

import cv2
import numpy as np

from research import devset_cues as dc


def _clip(seed: int = 0) -> np.ndarray:
    """uint8 (4, 112, 112, 3): textured frames with independent colour detail in each channel."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 25, (4, 112, 112, 3)), 0, 255).astype(np.uint8)


def _blur_where(clip: np.ndarray, mask: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    out = clip.copy()
    for f in out:
        f[mask] = cv2.GaussianBlur(f, (0, 0), sigma)[mask]
    return out


def test_edge_vs_ring_detail_drops_when_the_face_edge_is_soft():
    clip, m = _clip(), dc._rings(112)
    base = dc.cues(clip)
    soft_edge = dc.cues(_blur_where(clip, m["edge"]))
    soft_ring = dc.cues(_blur_where(clip, m["ring"]))
    assert soft_edge["edge_vs_ring_detail"] < base["edge_vs_ring_detail"] - 0.5
    assert soft_ring["edge_vs_ring_detail"] > base["edge_vs_ring_detail"] + 0.5


def test_chroma_detail_reads_colour_not_brightness():
    clip, m = _clip(1), dc._rings(112)
    base = dc.cues(clip)
    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in clip])
    flat_a = lab.copy()
    flat_a[:, m["inner"], 1] = 128  # the inner face's a channel made flat, its lightness kept
    flat = np.stack([cv2.cvtColor(f, cv2.COLOR_LAB2RGB) for f in flat_a])
    assert dc.cues(flat)["chroma_detail_in_out"] < base["chroma_detail_in_out"] - 0.5


def test_clips_reads_labels_and_families_from_the_folder(tmp_path, face_clip, other_face_clip):
    """--clips: real/... is real, fake/<family>/... a fake of that family, whatever the file's own name."""
    (tmp_path / "real").mkdir()
    (tmp_path / "fake" / "softswap").mkdir(parents=True)
    (tmp_path / "real" / "z.mpg").symlink_to(face_clip)
    (tmp_path / "fake" / "softswap" / "a.mpg").symlink_to(other_face_clip)
    crops, y, fam = dc._clips(tmp_path, frames=3)
    assert crops.shape == (2, 3, 112, 112, 3) and crops.dtype == np.uint8
    assert y.tolist() == [1, 0] and fam.tolist() == ["softswap", "real"]
