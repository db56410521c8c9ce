"""Fixtures of the training tests: real face crops of the committed GRID clips, with landmarks."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def crop_clips(face_clip, other_face_clip):
    """Two real crop clips of different speakers: uint8 (2, 4, 112, 112, 3), landmarks (2, 4, 68, 2)."""
    from detector.training.online_fakes import crop_landmarks
    from detector.training.prepare import clip_crops

    crops = np.stack([clip_crops(str(face_clip), 4), clip_crops(str(other_face_clip), 4)])
    return crops, crop_landmarks(crops.reshape(-1, 112, 112, 3)).reshape(2, 4, 68, 2)
