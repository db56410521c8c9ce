"""Fixtures: committed GRID clips (CC BY 4.0, see tests/fixtures/README.md) and clips generated here."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def _write(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Write RGB frames as mp4v."""
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def _read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return out


def spread_batch_norms(model, seed: int = 1):
    """Batch-norm statistics and affine weights away from (0, 1) in place, so that a wrong fold shows (the ONNX
    engines fold them into their convolutions); returns the model."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    return model


@pytest.fixture(scope="session")
def face_clip() -> Path:
    return FIXTURES / "s4_bbae9n.mpg"


@pytest.fixture(scope="session")
def other_face_clip() -> Path:
    return next(FIXTURES.glob("s31_*.mpg"))


@pytest.fixture(scope="session")
def two_people_clip(tmp_path_factory, face_clip, other_face_clip) -> Path:
    """Two speakers side by side (720x288), 40 frames."""
    a, b = _read_all(face_clip)[:40], _read_all(other_face_clip)[:40]
    return _write(tmp_path_factory.mktemp("gen") / "two_people.mp4", [np.hstack([x, y]) for x, y in zip(a, b)])


@pytest.fixture(scope="session")
def no_face_clip(tmp_path_factory) -> Path:
    """A moving colour gradient: no face anywhere."""
    frames = []
    for t in range(30):
        x = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None]
        y = np.linspace(0, 255, 240, dtype=np.float32)[:, None, None]
        frames.append(np.clip(np.concatenate([x + t * 3 + 0 * y, y + 0 * x, (x + y) / 2], 2) % 256, 0, 255)
                      .astype(np.uint8))
    return _write(tmp_path_factory.mktemp("gen") / "no_face.mp4", frames)


@pytest.fixture(scope="session")
def text_as_mp4(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("gen") / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    return p


@pytest.fixture(scope="session")
def truncated_clip(tmp_path_factory, face_clip) -> Path:
    """The first 40% of an MPEG file: decodable until it ends early."""
    data = face_clip.read_bytes()
    p = tmp_path_factory.mktemp("gen") / "truncated.mpg"
    p.write_bytes(data[: int(len(data) * 0.4)])
    return p


@pytest.fixture(scope="session")
def long_mp4(tmp_path_factory) -> Path:
    """300 frames with the frame number drawn large, to check which frames were read."""
    frames = []
    for i in range(300):
        f = np.zeros((96, 128, 3), np.uint8)
        f[:, :] = (i % 256, (i * 7) % 256, (i * 13) % 256)
        frames.append(f)
    return _write(tmp_path_factory.mktemp("gen") / "long.mp4", frames)


@pytest.fixture(scope="session")
def tiny_spec():
    """A small model spec (resnet18 trunk, 32 hidden) for fast tests."""
    from detector.model import spec_for

    return spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=32, sequence_length=6)


@pytest.fixture(scope="session")
def crop_clips(face_clip, other_face_clip):
    """Two real crop clips of different speakers: uint8 (2, 4, 112, 112, 3), landmarks (2, 4, 68, 2)."""
    from detector.training.online_fakes import crop_landmarks
    from detector.training.prepare import clip_crops

    crops = np.stack([clip_crops(str(face_clip), 4), clip_crops(str(other_face_clip), 4)])
    return crops, crop_landmarks(crops.reshape(-1, 112, 112, 3)).reshape(2, 4, 68, 2)
