"""research/devset_quick.py `--sets`: K disjoint samplings of a cached clip never read the padding that a
short clip (or face track) was cached with, and cover a full clip's frames exactly once (so that a bug that
handed one sampling runs of one repeated frame, as plain interleaving did, would fail here)."""

from __future__ import annotations

import numpy as np

from research import devset_quick as dq


def _clip(n: int, f: int) -> np.ndarray:
    """(f, 2, 2, 3) uint8: n distinct crops (value = frame number + 1), then the last repeated to f."""
    v = np.minimum(np.arange(f), n - 1) + 1
    return np.broadcast_to(v[:, None, None, None], (f, 2, 2, 3)).astype(np.uint8)


def test_full_clip_is_split_into_disjoint_interleaved_sets():
    idx = dq.set_positions(_clip(120, 120)[None], sets=6, frames=20)[0]
    assert idx.shape == (6, 20)
    assert sorted(idx.ravel().tolist()) == list(range(120))
    assert idx[2, :3].tolist() == [2, 8, 14]


def test_short_clip_sets_stay_inside_its_distinct_frames():
    crops = np.stack([_clip(120, 120), _clip(66, 120), _clip(35, 120)])
    idx = dq.set_positions(crops, sets=6, frames=20)
    for i, n in enumerate((120, 66, 35)):
        assert idx[i].max() == n - 1  # reaches the clip's last distinct frame, never the padding beyond it
        assert len(set(idx[i].ravel().tolist())) == n  # every distinct frame read by some sampling
        for k in range(6):
            assert np.all(np.diff(idx[i, k]) >= 1)  # 20 frames in order, no repeats (n >= 20 here)
            assert idx[i, k, -1] >= n - n // 20 - 1  # spread over the whole clip, not its first part
