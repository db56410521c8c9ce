"""Video input: probe a file, hash it, pick frames spread over the whole clip and read only those.

Reading strategy (measured with `benchmarks/bench_analyze.py`): seeking with
`CAP_PROP_POS_FRAMES` is cheap for intra-heavy codecs (mp4v, MJPEG) but costs a decode from the last
keyframe in long-GOP codecs (H.264, HEVC, VP9, AV1). `grab()` decodes without colour conversion, so for
short gaps between wanted frames it is cheaper to grab through them and `retrieve()` only the wanted
ones. `read_frames` does that per gap, so its cost follows the number of frames asked for, not the clip
length, while staying fast on dense requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol
from pathlib import Path

import cv2
import numpy as np

from detector.errors import (
    CorruptVideoError,
    EmptyVideoError,
    InputTooLargeError,
    NotAVideoError,
)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Codecs whose keyframes are far apart: a seek decodes from the previous keyframe.
# Containers whose index lets OpenCV/FFmpeg land on an exact frame number.
_ACCURATE_SEEK = {".mp4", ".mov", ".m4v", ".mkv", ".avi"}
_LONG_GOP = {"h264", "avc1", "x264", "hevc", "h265", "hvc1", "hev1", "vp80", "vp90", "vp09", "av01"}


class SuccessorSink(Protocol):
    """Where `stream_frames(..., successors=)` hands each sampled frame's successor instead of keeping it.

    `successor_buffer(shape)` gives the array the successor is decoded into (the sink may make the reader wait
    for a free one); `put_successor(idx, bgr, decoded)` hands it back, uint8 (H, W, 3) **BGR**, `idx` the sampled
    frame it follows, `decoded` False where the successor could not be decoded (a truncated file: then `bgr` holds
    nothing). The sink owns the buffer from then on (detector/streamed.py crops the faces out and reuses it)."""

    def successor_buffer(self, shape: tuple[int, ...]) -> np.ndarray: ...

    def put_successor(self, idx: int, bgr: np.ndarray, decoded: bool) -> None: ...


class FrameSink(Protocol):
    """Where `stream_frames` hands each sampled frame instead of keeping it: `frame_buffer(shape)` to decode
    into, `put_frame(idx, rgb)` (uint8 (H, W, 3) RGB, frame number `idx`) to hand it over, in order; the sink owns
    the buffer from then on (detector/streamed.py)."""

    def frame_buffer(self, shape: tuple[int, ...]) -> np.ndarray: ...

    def put_frame(self, idx: int, rgb: np.ndarray) -> None: ...


@dataclass(frozen=True)
class VideoLimits:
    """Caps that protect a shared server from huge uploads. `None` disables a cap."""

    max_bytes: int | None = 500 * 1024 * 1024
    max_duration_s: float | None = 15 * 60.0


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns from the container; `frame_count` is counted when the header lies."""

    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    codec: str
    rotation: int
    bytes: int

    @property
    def long_gop(self) -> bool:
        return self.codec.lower() in _LONG_GOP


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ").lower() if text.isprintable() else f"0x{code:08x}"


def _open(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise NotAVideoError(
            f"{Path(path).name}: not a video OpenCV can open; upload an mp4, avi, mov, mkv, webm or mpg file"
        )
    return cap


def probe(path: str | os.PathLike, limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """Open `path` and read its geometry, frame rate, frame count, codec and rotation.

    Raises NotAVideoError, CorruptVideoError, EmptyVideoError or InputTooLargeError with a one-line message.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise NotAVideoError(f"{path}: no such file")
    size = os.path.getsize(path)
    if size == 0:
        raise EmptyVideoError(f"{Path(path).name}: the file is empty (0 bytes)")
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise InputTooLargeError(
            f"{Path(path).name}: {size / 2**20:.0f} MiB is over the {limits.max_bytes / 2**20:.0f} MiB cap; "
            "trim the clip or raise the cap (--max-mb)"
        )
    cap = _open(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        codec = _fourcc(cap)
        rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)
        if width <= 0 or height <= 0:
            raise NotAVideoError(f"{Path(path).name}: no video stream found; is this an audio-only or text file?")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise CorruptVideoError(
                f"{Path(path).name}: the first frame cannot be decoded; the file is corrupt or truncated"
            )
        if rotation in (90, 270, -90):
            # OpenCV auto-rotates decoded frames, so the frames we hand out have swapped geometry.
            width, height = height, width
        if count <= 0:
            # Some containers (raw MPEG, some webm) give no count: count by grabbing (no colour conversion).
            count = 1
            while cap.grab():
                count += 1
    finally:
        cap.release()
    if not (0 < fps < 1000):
        fps = 25.0
    duration = count / fps
    if limits.max_duration_s is not None and duration > limits.max_duration_s:
        raise InputTooLargeError(
            f"{Path(path).name}: {duration:.0f} s is over the {limits.max_duration_s:.0f} s cap; "
            "trim the clip or raise the cap (--max-seconds)"
        )
    return VideoInfo(path, width, height, fps, count, duration, codec, rotation, size)


def sample_indices(frame_count: int, n: int) -> list[int]:
    """`n` frame indices spread evenly over the whole clip, centred in equal segments.

    A clip with fewer than `n` frames gives all of them. Example: (100, 4) -> [12, 37, 62, 87].
    """
    if frame_count <= 0 or n <= 0:
        return []
    if frame_count <= n:
        return list(range(frame_count))
    seg = frame_count / n
    return sorted({min(frame_count - 1, int(seg * i + seg / 2)) for i in range(n)})


def read_frames(
    path: str | os.PathLike, indices: list[int], info: VideoInfo | None = None, max_grab_gap: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """Read the frames at `indices` (sorted, unique).

    Returns `(frames, got)`: frames uint8 (T, H, W, 3) in **RGB** order and the indices actually read
    (a truncated file may end early; the caller reports what it got).

    `max_grab_gap`: gaps up to this many frames are grabbed through instead of seeked. Default: 120 for
    long-GOP codecs (a seek there costs a decode from the keyframe), 24 otherwise (a grab costs ~0.7 ms,
    a seek ~15 ms in mp4v at 720p).
    """
    frames, got, _ = _read(path, indices, info, max_grab_gap, partners=None)
    return frames, got


def stream_frames(
    path: str | os.PathLike, indices: list[int], info: VideoInfo | None, frames: FrameSink,
    successors: SuccessorSink | None = None,
) -> list[int]:
    """`read_frames` without keeping the frames: each sampled frame is decoded into a buffer of `frames` (the
    sink), converted to RGB and handed over as soon as it is read, in order, so a consumer (the face tracker) works
    while the rest of the file is decoded. `successors`: also decode each sampled frame's successor (the frame
    right after it) in the same forward pass and hand it over right after its frame. Returns the indices read.
    The face-tracking thread crops the faces and keeps a display copy, so a 1080p analysis holds a few frames at a
    time instead of 60 frames and 60 successors, 746 MB of fresh memory (detector/streamed.py)."""
    return _read(path, indices, info, None, partners=None, successors=successors, frame_sink=frames)[1]


def display_size(hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(h, w) of a frame of size `hw` scaled down so its longer side is at most `max_side`, even sides (for
    yuv420p encoders); `hw` itself when it fits."""
    h, w = hw
    s = min(1.0, max_side / max(h, w))
    return (h, w) if s >= 1 else (max(2, int(h * s) // 2 * 2), max(2, int(w * s) // 2 * 2))


def shrink_into(frame: np.ndarray, dst: np.ndarray) -> None:
    """Scale `frame` (uint8 (H, W, 3)) down into `dst`: area-average by the largest whole factor (OpenCV's fast
    path, ~1 ms for 1080p by 2), then bilinear to the exact size; a fractional INTER_AREA of 1080p to 720 px takes
    ~9 ms. A frame already of `dst`'s size is copied."""
    h, w = frame.shape[:2]
    if (h, w) == dst.shape[:2]:
        dst[...] = frame
        return
    k = min(w // dst.shape[1], h // dst.shape[0])
    if k >= 2:
        frame = cv2.resize(frame, (w // k, h // k), interpolation=cv2.INTER_AREA)
    cv2.resize(frame, (dst.shape[1], dst.shape[0]), dst=dst, interpolation=cv2.INTER_LINEAR)


def read_frame_pairs(
    path: str | os.PathLike, indices: list[int], info: VideoInfo | None = None, partner_order: str = "RGB",
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The frames at `indices` (sorted, unique) and, for each, the video frame right after it.

    Returns `(frames, got, partners)`: frames uint8 (T, H, W, 3) RGB, partners uint8 (T, H, W, 3) in
    `partner_order` ("RGB" or "BGR", OpenCV's own order: then no colour conversion is spent on them, and a
    caller that only crops them converts the crops), got the indices read.
    Why: the residual stream of a "next"-pairing model (detector/residual.py) compares each sampled frame
    with its successor, one frame apart whatever the clip's length. A frame without a successor (the
    clip's last, or a truncated file's) is its own partner: a duplicate pair, which the stream reads as
    "no evidence". Each successor is one more retrieved frame in the same forward pass (grabbed anyway, never a
    seek), written straight into `partners` (benchmarks/bench_decode.py measures the price).
    """
    if partner_order not in ("RGB", "BGR"):
        raise ValueError(f"partner_order must be 'RGB' or 'BGR', not {partner_order!r}")
    return _read(path, indices, info, None, partners=partner_order)


def _read(
    path: str | os.PathLike, indices: list[int], info: VideoInfo | None, max_grab_gap: int | None,
    partners: str | None, successors: SuccessorSink | None = None, frame_sink: FrameSink | None = None,
) -> tuple[np.ndarray | None, list[int], np.ndarray | None]:
    """One forward pass over the file: grab() every frame up to the last one wanted (seeking only across gaps
    longer than `max_grab_gap`), retrieve() only the wanted frames (and, with `partners`, their successors),
    each straight into its slot of a preallocated array, and convert to RGB only the sampled frames.

    Why preallocated: decoding into a fresh array per frame and stacking them copies every frame twice,
    and on a loaded machine the page faults of those copies cost more than the decode itself."""
    path = str(path)
    info = info or probe(path, VideoLimits(None, None))
    if max_grab_gap is None:
        if Path(path).suffix.lower() not in _ACCURATE_SEEK:
            max_grab_gap = 1 << 62  # MPEG-PS, FLV, webm: seeks land on the wrong frame; read through
        else:
            max_grab_gap = 120 if info.long_gop else 24
    slots = _Slots(indices, partners, info.frame_count, successors, frame_sink)
    got = _walk(path, slots.wanted, max_grab_gap, slots.take)
    if not got:
        raise CorruptVideoError(
            f"{Path(path).name}: none of the {len(indices)} sampled frames could be decoded; the file is corrupt"
        )
    return slots.finish(got)


class _Slots:
    """Where each decoded frame goes: frame k of `indices` into frames[k] (then BGR -> RGB in place) or, with a
    `frame_sink`, into the sink's buffer (then handed over); its successor into partners[k] (in `order`) or, with
    a `sink`, into the sink's buffer. A successor that is itself sampled (dense sampling) is retrieved once and
    copied."""

    def __init__(self, indices: list[int], order: str | None, frame_count: int,
                 sink: SuccessorSink | None = None, frame_sink: FrameSink | None = None) -> None:
        self.indices, self.order, self.sink = list(indices), order, sink
        self.frame_sink = frame_sink
        self.shape: tuple[int, ...] | None = None  # of a decoded frame, (H, W, 3)
        self.frame_of = {i: k for k, i in enumerate(self.indices)}
        pairs = bool(order) or sink is not None
        self.partner_of = {i + 1: k for k, i in enumerate(self.indices)} if pairs else {}
        if pairs and frame_count > 0:
            self.partner_of.pop(frame_count, None)  # the clip's last frame has no successor
        self.wanted = sorted(set(self.frame_of) | set(self.partner_of))
        self.frames: np.ndarray | None = None
        self.partners: np.ndarray | None = None
        self.filled: set[int] = set()  # positions k whose partner was written

    def take(self, idx: int, cap: cv2.VideoCapture) -> bool:
        """Retrieve the frame just grabbed (number `idx`) into its slot(s); False if it cannot be decoded."""
        k, kp = self.frame_of.get(idx), self.partner_of.get(idx)
        if self.shape is None:  # the first wanted frame, always a sampled one
            ok, first = cap.retrieve()
            if not ok or first is None:
                return False
            self.shape = first.shape
            if self.frame_sink is None:
                self.frames = np.empty((len(self.indices), *first.shape), np.uint8)
                self.partners = np.empty_like(self.frames) if self.order else None
            dst = self._dst(k, kp)
            dst[...] = first
        elif self.sink is not None and k is None:  # only a successor, handed to the sink
            buf = self.sink.successor_buffer(self.shape)
            ok, img = cap.retrieve(buf)
            ok = bool(ok) and img is not None and img.shape == buf.shape
            if ok and not np.shares_memory(img, buf):  # a binding that ignores the destination
                buf[...] = img
            self.sink.put_successor(self.indices[kp], buf, ok)
            return ok
        else:
            dst = self._dst(k, kp)
            ok, img = cap.retrieve(dst)
            if not ok or img is None or img.shape != dst.shape:
                return False
            if not np.shares_memory(img, dst):  # a binding that ignores the destination
                dst[...] = img
        if k is not None and kp is not None:  # sampled and a successor: one decode, two uses
            if self.sink is None:
                self._partner(kp, dst, bgr=True)
            else:  # before this frame's own hand-over: the sink takes each successor right after its frame
                buf = self.sink.successor_buffer(dst.shape)
                buf[...] = dst
                self.sink.put_successor(self.indices[kp], buf, True)
        elif kp is not None:
            self.filled.add(kp)
            if self.order == "RGB":
                cv2.cvtColor(dst, cv2.COLOR_BGR2RGB, dst=dst)
            return True
        cv2.cvtColor(dst, cv2.COLOR_BGR2RGB, dst=dst)
        if self.frame_sink is not None:
            self.frame_sink.put_frame(idx, dst)
        return True

    def _dst(self, k: int | None, kp: int | None) -> np.ndarray:
        if k is None:
            return self.partners[kp]
        return self.frame_sink.frame_buffer(self.shape) if self.frame_sink is not None else self.frames[k]

    def _partner(self, kp: int, bgr_frame: np.ndarray, bgr: bool) -> None:
        if self.order == "RGB" and bgr:
            cv2.cvtColor(bgr_frame, cv2.COLOR_BGR2RGB, dst=self.partners[kp])
        else:
            self.partners[kp] = bgr_frame
        self.filled.add(kp)

    def finish(self, got: list[int]) -> tuple[np.ndarray, list[int], np.ndarray | None]:
        """The frames read (a truncated file ends early) and, for each, its partner or itself (no successor)."""
        taken = set(got)
        keep = [i for i in self.indices if i in taken]
        n = len(keep)  # sampled frames are read in order, so the first n slots are filled
        if self.frames is None:  # handed to a frame sink
            return None, keep, None
        frames = self.frames[:n]
        if self.partners is None:
            return frames, keep, None
        partners = self.partners[:n]
        for k in range(n):
            if k not in self.filled:  # a duplicate pair: "no evidence" for the residual stream
                if self.order == "BGR":
                    cv2.cvtColor(frames[k], cv2.COLOR_RGB2BGR, dst=partners[k])
                else:
                    partners[k] = frames[k]
        return frames, keep, partners


def _walk(path: str, wanted: list[int], max_grab_gap: int, take) -> list[int]:
    """Grab forward through the file, calling `take(idx, cap)` on each wanted frame; returns the ones taken."""
    cap = _open(path)
    got: list[int] = []
    pos = 0  # index of the frame the next grab() returns
    try:
        for idx in wanted:
            gap = idx - pos
            if gap < 0 or gap > max_grab_gap:
                pos = _seek(cap, idx)
                if pos > idx:  # overshot: the demuxer cannot seek exactly; read from the start
                    cap.release()
                    cap, pos = _open(path), 0
            while pos < idx and cap.grab():
                pos += 1
            if pos != idx or not cap.grab():
                break
            pos += 1
            if not take(idx, cap):
                break
            got.append(idx)
    finally:
        cap.release()
    return got


def _seek(cap: cv2.VideoCapture, idx: int) -> int:
    """Seek so the next grab() returns frame `idx` if the demuxer can; returns the position reached."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
    actual = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
    return actual if actual >= 0 else idx


def read_image(path: str | os.PathLike, max_bytes: int | None = 50 * 1024 * 1024) -> np.ndarray:
    """Read a still image as uint8 (H, W, 3) RGB. Raises NotAVideoError if it is not an image."""
    path = str(path)
    if not os.path.isfile(path):
        raise NotAVideoError(f"{path}: no such file")
    if max_bytes is not None and os.path.getsize(path) > max_bytes:
        raise InputTooLargeError(f"{Path(path).name}: image over the {max_bytes / 2**20:.0f} MiB cap")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise NotAVideoError(f"{Path(path).name}: not an image OpenCV can decode; use jpg, png, bmp or webp")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def expand_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, and for each folder every video or image inside it (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
                          + IMAGE_EXTENSIONS)
        else:
            out.append(p)
    return out
