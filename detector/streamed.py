"""What an analysis keeps of each decoded frame, cut while the file is still being decoded: face crops and a
display copy, never the full frames.

The model needs, per face track, the 112-px crop of every sampled frame and (a model whose residual stream pairs
"next" frames, detector/residual.py) the crop of the same box in the frame right after it; the report needs the
frames only to draw boxes and overlays on, at most `DISPLAY_MAX_SIDE` px. Keeping the 60 sampled frames and their
60 successors whole costs 746 MB at 1080p, and fresh memory is slow where a VM hands freed pages back to its
host: the decode stage took 3.1 s with the successors kept whole and 1.7 s with a ring of four reused buffers
(AMD EPYC Zen 3, 2 vCPU; reading every frame 1.5 s).

So the reader decodes into a small ring of reused buffers (`BufferRing`) and hands each frame to the face-tracking
thread (faces.BackgroundTracks), which detects the faces in a sampled frame, crops it at each box and keeps a
display copy (`FrameCrops`), then crops its successor at the same boxes (`SuccessorCrops`), and gives the
buffers back. A track's box is such a detection except where the detector missed the face and the box is
interpolated: those frames (or successors) are read again once the tracks exist, in one forward pass over just
them. A sampled frame whose successor could not be decoded (the clip's last, a truncated file's) is its own
partner, as `video.read_frame_pairs` makes it. Every crop is thus the crop of the full frame, exactly
(tests/test_streamed.py).

    frames, succ = FrameCrops(config, len(wanted)), SuccessorCrops(config)
    bg = BackgroundTracks(config, successors=succ, frames=frames)
    got = stream_frames(path, wanted, info, frames=bg, successors=bg)   # bg.close() in a finally
    tracks = bg.result()
    crops = frames.track_crops(tracks, got, reread)
    partner_crops = succ.track_partners(tracks, got, crops, reread)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from detector.errors import CorruptVideoError
from detector.faces import Box, Detection, FaceConfig, FaceTrack, crop_face
from detector.video import display_size, shrink_into

DISPLAY_MAX_SIDE = 720  # the longer side of the frames a report keeps (the app's boxed clip is drawn at this size)

# Given frame numbers, the frames it could decode: {frame number: uint8 (H, W, 3) RGB}.
Reread = Callable[[list[int]], dict[int, np.ndarray]]


def _key(idx: int, box: Box) -> tuple[int, float, float, float, float]:
    return idx, box.x0, box.y0, box.x1, box.y1


def display_copies(frames: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, h, w, 3), the longer side at most `max_side` (`frames` itself when it fits)."""
    size = display_size(frames.shape[1:3], max_side)
    if size == frames.shape[1:3]:
        return frames
    out = np.empty((len(frames), *size, 3), np.uint8)
    for f, o in zip(frames, out):
        shrink_into(f, o)
    return out


class BufferRing:
    """`slots` reused uint8 frame buffers: `buffer` (the reader's thread) waits while all are in use, `give_back`
    (the consumer's) frees one; after `close` (the consumer is done, or died) `buffer` makes fresh ones."""

    def __init__(self, slots: int = 4) -> None:
        self.slots, self.made = slots, 0
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        self.done = threading.Event()

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray:
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

    def give_back(self, buf: np.ndarray) -> None:
        self.free.put(buf)

    def close(self) -> None:
        """No more frames will be taken (the tracker's thread ends, or died: then `buffer` no longer waits)."""
        self.done.set()


class FrameCrops(BufferRing):
    """The sampled frames: each one's face crops at the boxes detected in it, and its display copy.

    count: how many sampled frames will come (the display array's length). `take` runs on the tracker's thread,
    `track_crops` after it has finished."""

    def __init__(self, config: FaceConfig = FaceConfig(), count: int = 0, max_side: int = DISPLAY_MAX_SIDE,
                 slots: int = 4) -> None:
        super().__init__(slots)
        self.config, self.count, self.max_side = config, count, max_side
        self.crops: dict[tuple, np.ndarray] = {}
        self.display: np.ndarray | None = None  # uint8 (count, h, w, 3) RGB
        self.taken = 0

    def take(self, idx: int, rgb: np.ndarray, detections: list[Detection]) -> None:
        """Sampled frame `idx`, uint8 (H, W, 3) RGB, and the faces detected in it: crop, shrink, give back."""
        c = self.config
        for d in detections:
            d.keep_source()  # the tracker may ask for its encoding after this buffer is reused
            if _key(idx, d.box) not in self.crops:
                self.crops[_key(idx, d.box)] = crop_face(rgb, d.box, c.margin, c.crop_size)
        if self.display is None:
            self.display = np.empty((max(self.count, 1), *display_size(rgb.shape[:2], self.max_side), 3), np.uint8)
        if self.taken < len(self.display):
            shrink_into(rgb, self.display[self.taken])
        self.taken += 1
        self.give_back(rgb)

    def frames(self) -> np.ndarray:
        """The display copies of the frames taken: uint8 (n, h, w, 3) RGB."""
        self.done.wait()
        return self.display[:self.taken] if self.display is not None else np.zeros((0, 1, 1, 3), np.uint8)

    def track_crops(self, tracks: list[FaceTrack], indices: list[int], reread: Reread) -> list[np.ndarray]:
        """Per track, uint8 (T_track, size, size, 3) RGB, as `faces.track_crops` cuts from the full frames.

        indices: the frame numbers the tracks' positions point into; reread: reads frames again, for boxes the
        tracker interpolated (no crop was cut for them). Waits for the tracker to finish."""
        self.done.wait()
        c = self.config
        todo = _missing(self.crops, tracks, indices, lambda p: True)
        if todo:
            again = reread(sorted(todo))
            for idx, boxes in todo.items():
                if idx not in again:
                    raise CorruptVideoError(f"frame {idx} was decoded once but not a second time; the file may be "
                                            "damaged: re-encode it (ffmpeg -i in -c:v libx264 out.mp4)")
                for box in boxes:
                    self.crops[_key(idx, box)] = crop_face(again[idx], box, c.margin, c.crop_size)
        return [np.stack([self.crops[_key(indices[p], box)] for p, box in zip(tr.positions, tr.boxes)])
                for tr in tracks]


class SuccessorCrops(BufferRing):
    """The successor of each sampled frame, cropped at the boxes detected in that frame. `take` runs on the
    tracker's thread, `track_partners` after it has finished; the crops are RGB, as `faces.track_crops` cuts."""

    def __init__(self, config: FaceConfig = FaceConfig(), slots: int = 4) -> None:
        super().__init__(slots)
        self.config = config
        self.crops: dict[tuple, np.ndarray] = {}
        self.decoded: set[int] = set()  # sampled frame numbers whose successor was decoded

    def take(self, idx: int, bgr: np.ndarray, decoded: bool, detections: list[Detection]) -> None:
        """The successor of sampled frame `idx`, uint8 (H, W, 3) BGR, and the faces detected in frame `idx`:
        crop it at each box, then give the buffer back."""
        if decoded:
            self.decoded.add(idx)
            c = self.config
            for d in detections:
                if _key(idx, d.box) in self.crops:
                    continue
                # crop and resize act per channel, so converting the crop equals cropping the converted frame
                self.crops[_key(idx, d.box)] = np.ascontiguousarray(
                    crop_face(bgr, d.box, c.margin, c.crop_size)[..., ::-1])
        self.give_back(bgr)

    def track_partners(self, tracks: list[FaceTrack], indices: list[int], crops: list[np.ndarray],
                       reread: Reread) -> list[np.ndarray]:
        """Per track, uint8 (T_track, size, size, 3) RGB: each position's successor cropped at the track's box.

        indices: the frame numbers the tracks' positions point into; crops: the tracks' own crops (a frame
        without a successor is its own partner); reread: reads successors again, for boxes the tracker
        interpolated. Waits for the tracker to finish (the adaptive first read's tracks can be ready first)."""
        self.done.wait()
        c = self.config
        todo = _missing(self.crops, tracks, indices, lambda p: indices[p] in self.decoded)
        if todo:
            again = reread(sorted(i + 1 for i in todo))
            for idx, boxes in todo.items():
                if idx + 1 in again:
                    for box in boxes:
                        self.crops[_key(idx, box)] = crop_face(again[idx + 1], box, c.margin, c.crop_size)
        # no successor (the clip's end, a truncated file): the frame is its own partner, "no evidence"
        return [np.stack([self.crops.get(_key(indices[p], box), own[k])
                          for k, (p, box) in enumerate(zip(tr.positions, tr.boxes))])
                for tr, own in zip(tracks, crops)]


def _missing(crops: dict, tracks: list[FaceTrack], indices: list[int], wanted) -> dict[int, list[Box]]:
    """{frame number: boxes} of the tracks' positions with no crop cut yet (interpolated boxes), where
    wanted(position)."""
    todo: dict[int, list[Box]] = {}
    for tr in tracks:
        for p, box in zip(tr.positions, tr.boxes):
            if wanted(p) and _key(indices[p], box) not in crops:
                todo.setdefault(indices[p], []).append(box)
    return todo
