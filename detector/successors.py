"""Each sampled frame's successor, reduced to its face crops while the file is still being decoded.

A model whose residual stream pairs "next" frames (detector/residual.py) needs, beside every face crop, the crop
of the same box in the frame right after it. Keeping the 60 full successors until the tracks exist costs 373 MB
at 1080p, and fresh memory is slow where a VM hands freed pages back to its host: the decode stage took 3.1 s
with them and 1.7 s with a ring of four reused buffers (AMD EPYC Zen 3, 2 vCPU; reading every frame: 1.5 s).

So the face-tracking thread (faces.BackgroundTracks) crops each successor at the boxes it has just detected in
the sampled frame before it, and the buffer goes back to the reader for the next successor. A track's box is
such a detection except where the detector missed the face and the box is interpolated: those successors are
read again once the tracks exist (one forward pass over just those frames). A sampled frame whose successor
could not be decoded (the clip's last, a truncated file's) is its own partner, as `video.read_frame_pairs`
makes it. Every crop is thus the crop of the full successor, exactly (tests/test_successors.py).

    succ = SuccessorCrops(config)
    bg = BackgroundTracks(config, successors=succ)
    frames, got = read_frames(path, wanted, info, on_frame=bg.put, successors=bg)   # bg.close() in a finally
    partner_crops = succ.track_partners(bg.result(), got, frames, reread)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from detector.faces import Box, Detection, FaceConfig, FaceTrack, crop_face

# Given the successors' frame numbers, the ones it could decode: {frame number: uint8 (H, W, 3) RGB}.
Reread = Callable[[list[int]], dict[int, np.ndarray]]


def _key(idx: int, box: Box) -> tuple[int, float, float, float, float]:
    return idx, box.x0, box.y0, box.x1, box.y1


class SuccessorCrops:
    """The reader's successor buffers (a ring of `slots`) and the face crops cut from them.

    `buffer` runs on the reader's thread, `take` on the tracker's, `track_partners` after the tracker has
    finished; the crops are RGB, `config.crop_size` square, with `config.margin`, as `faces.track_crops` cuts.
    """

    def __init__(self, config: FaceConfig = FaceConfig(), slots: int = 4) -> None:
        self.config, self.slots = config, slots
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        self.made = 0
        self.done = threading.Event()  # the tracker has taken its last successor (or died)
        self.crops: dict[tuple, np.ndarray] = {}
        self.decoded: set[int] = set()  # sampled frame numbers whose successor was decoded

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """A uint8 `shape` array to decode the next successor into; waits while all `slots` are being cropped."""
        while True:
            if self.made < self.slots or self.done.is_set():
                self.made += 1
                return np.empty(shape, np.uint8)
            try:
                buf = self.free.get(timeout=0.1)
            except queue.Empty:
                continue
            if buf.shape == tuple(shape):
                return buf
            self.made -= 1  # another geometry (never within one clip): drop it, make one of the right size

    def take(self, idx: int, bgr: np.ndarray, decoded: bool, detections: list[Detection]) -> None:
        """The successor of sampled frame `idx`, uint8 (H, W, 3) BGR, and the faces detected in frame `idx`:
        crop it at each box, then give the buffer back."""
        if decoded:
            self.decoded.add(idx)
            c = self.config
            for d in detections:
                # crop and resize act per channel, so converting the crop equals cropping the converted frame
                self.crops[_key(idx, d.box)] = np.ascontiguousarray(
                    crop_face(bgr, d.box, c.margin, c.crop_size)[..., ::-1])
        self.free.put(bgr)

    def close(self) -> None:
        """No more successors will be taken (the tracker's thread ends, or died: then `buffer` no longer waits
        for buffers back)."""
        self.done.set()

    def track_partners(self, tracks: list[FaceTrack], indices: list[int], frames: np.ndarray,
                       reread: Reread) -> list[np.ndarray]:
        """Per track, uint8 (T_track, size, size, 3) RGB: each position's successor cropped at the track's box.

        indices: the frame numbers of `frames` (uint8 (T, H, W, 3) RGB) that the tracks' positions point into.
        reread: reads successors again, for boxes the tracker interpolated (no crop was cut for them).
        Waits for the tracker to finish (the adaptive first read's tracks can be ready before it)."""
        self.done.wait()
        c = self.config
        todo: dict[int, list[Box]] = {}
        for tr in tracks:
            for p, box in zip(tr.positions, tr.boxes):
                if indices[p] in self.decoded and _key(indices[p], box) not in self.crops:
                    todo.setdefault(indices[p], []).append(box)
        if todo:
            again = reread(sorted(i + 1 for i in todo))
            for idx, boxes in todo.items():
                if idx + 1 in again:
                    for box in boxes:
                        self.crops[_key(idx, box)] = crop_face(again[idx + 1], box, c.margin, c.crop_size)

        def partner(p: int, box: Box) -> np.ndarray:
            crop = self.crops.get(_key(indices[p], box))
            # no successor (the clip's end, a truncated file): the frame is its own partner, "no evidence"
            return crop if crop is not None else crop_face(frames[p], box, c.margin, c.crop_size)
        return [np.stack([partner(p, box) for p, box in zip(tr.positions, tr.boxes)]) for tr in tracks]
