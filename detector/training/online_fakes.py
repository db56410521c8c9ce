"""Fakes made on the fly from real 112x112 face crops, for training.

Offline synthesis (detector/training/synth.py) writes a fixed set of fakes, one SBI and one swap per real clip:
with a dozen training speakers the backbone then memorises those few hundred fakes and the speakers
themselves. Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) draw a *fresh* blend for every sample
and pair each real frame with its own blended copy in the same batch, so the only thing that separates
the two classes is the blending trace, never who the person is. We do the same on the cached crops:

- `crop_landmarks`: 68-point landmarks of every crop (dlib on a 2x upscale, the face box known from the
  crop geometry of detector/faces.py), computed once per training run.
- `OnlineFakes.sbi_frame` / `sbi_clip`: a new self-blend per frame (stage 1) or per clip with mild
  per-frame jitter (stage 2), reusing detector.training.synth's blend so the two paths cannot drift apart.
- `OnlineFakes.swap_frame` / `swap_clip`: a landmark face swap from a crop of another training identity.

All arrays are uint8 RGB, (112, 112, 3) per frame or (T, 112, 112, 3) per clip; landmarks float32 (x, y).
"""

from __future__ import annotations

import numpy as np

from detector.training import synth


def crop_landmarks(crops: np.ndarray, margin: float = 0.3, upscale: int = 2) -> np.ndarray:
    """68-point landmarks of the face in each crop.

    crops: uint8 (N, S, S, 3) RGB face crops made by detector.faces.crop_face with `margin` (the detected
    box is then the centred square of side S / (1 + 2 margin)). Returns float32 (N, 68, 2) in crop pixels.
    """
    import cv2
    import dlib

    _, pred = synth._dlib()
    n, s = crops.shape[:2]
    big = s * upscale
    half = big / (1 + 2 * margin) / 2
    rect = dlib.rectangle(*[int(round(v)) for v in (big / 2 - half, big / 2 - half, big / 2 + half, big / 2 + half)])
    out = np.zeros((n, 68, 2), np.float32)
    for i, c in enumerate(crops):
        img = cv2.resize(c, (big, big), interpolation=cv2.INTER_CUBIC)
        shape = pred(img, rect)
        out[i] = [(p.x / upscale, p.y / upscale) for p in shape.parts()]
    return out


class OnlineFakes:
    """Draws SBI and swap fakes from real crops with their landmarks.

    crops: uint8 (N, T, S, S, 3) RGB real clips; lms: float32 (N, T, 68, 2); identities: (N,) labels used
    to pick swap sources of a *different* identity.
    """

    def __init__(self, crops: np.ndarray, lms: np.ndarray, identities, cfg: synth.SynthConfig = synth.SynthConfig()):
        self.crops, self.lms, self.cfg = crops, lms, cfg
        self.ids = np.asarray(identities)
        self.others = {i: np.flatnonzero(self.ids != i) for i in set(self.ids.tolist())}

    def sbi_frame(self, clip: int, t: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh self-blend of frame t of real clip `clip`: uint8 (S, S, 3) RGB."""
        out, _ = synth.sbi_clip(self.crops[clip, t:t + 1], self.lms[clip, t:t + 1], rng, self.cfg)
        return out[0]

    def sbi_clip(self, clip: int, rng: np.random.Generator) -> np.ndarray:
        """A whole clip self-blended with one parameter draw plus per-frame jitter: uint8 (T, S, S, 3)."""
        return synth.sbi_clip(self.crops[clip], self.lms[clip], rng, self.cfg)[0]

    def _source(self, clip: int, rng: np.random.Generator) -> int | None:
        others = self.others[self.ids[clip].item()]
        return int(rng.choice(others)) if len(others) else None

    def swap_frame(self, clip: int, t: int, rng: np.random.Generator) -> np.ndarray | None:
        """Frame t of `clip` with the face of a random frame of another identity: uint8 (S, S, 3) RGB."""
        src = self._source(clip, rng)
        if src is None:
            return None
        st = int(rng.integers(self.crops.shape[1]))
        return synth.face_swap(self.crops[clip, t], self.lms[clip, t], self.crops[src, st], self.lms[src, st])

    def swap_clip(self, clip: int, rng: np.random.Generator) -> np.ndarray | None:
        """The whole clip with the face of another identity's clip, frame by frame: uint8 (T, S, S, 3)."""
        src = self._source(clip, rng)
        if src is None:
            return None
        return synth.swap_clip(self.crops[clip], self.lms[clip], self.crops[src], self.lms[src])
