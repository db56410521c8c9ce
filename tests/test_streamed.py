"""Frames and successors cut down to their face crops while the file decodes (detector/streamed.py) give exactly
the crops of the full frames, whatever the sampling, and the reader never holds more than a ring of them."""

import numpy as np
import pytest

from detector.faces import Box, Detection, FaceConfig, FaceTrack, crop_face, find_face_tracks, track_crops
from detector.pipeline import AnalysisConfig, prepare
from detector.streamed import DISPLAY_MAX_SIDE, FrameCrops, SuccessorCrops
from detector.video import probe, read_frame_pairs, read_frames, sample_indices, stream_frames


def reference(path, prep, config=FaceConfig()):
    """Every frame and successor read whole (video.read_frame_pairs): the tracks found on them, and each track's
    crops and successor crops."""
    frames, got, nxt = read_frame_pairs(path, prep.indices, probe(path), partner_order="RGB")
    assert got == prep.indices
    tracks = find_face_tracks(frames, config)
    return tracks, [track_crops(frames, tr, config) for tr in tracks], [track_crops(nxt, tr, config) for tr in tracks]


@pytest.mark.parametrize("frames, adaptive", [(20, False), (60, False), (60, True)])
def test_prepared_crops_are_the_full_frames_crops(face_clip, frames, adaptive):
    """20 of 75 frames (every successor a frame of its own), 60 of 75 (most successors are sampled frames
    themselves), and the adaptive first read's own tracks over every third of those 60 (found on the same thread,
    from the same buffers)."""
    prep = prepare(face_clip, AnalysisConfig(frames=frames, adaptive=adaptive), partners=True, first=adaptive)
    for p in [prep, prep.first] if adaptive else [prep]:
        tracks, crops, partners = reference(face_clip, p)
        assert p.tracks and [t.boxes for t in p.tracks] == [t.boxes for t in tracks]
        for a, b in zip(p.crops, crops):
            assert a.dtype == np.uint8 and np.array_equal(a, b)
        for a, b in zip(p.partner_crops, partners):
            assert a.flags.c_contiguous and np.array_equal(a, b)
        assert p.frames.shape == (len(p.indices), 288, 360, 3)  # GRID is small: its display copies are whole


def test_the_clips_last_frame_is_its_own_partner(truncated_clip):
    """A frame without a successor is paired with itself, as video.read_frame_pairs pairs it ("no evidence")."""
    info = probe(truncated_clip)
    prep = prepare(truncated_clip, AnalysisConfig(frames=20), partners=True, first=False)
    assert prep.indices[-1] == info.frame_count - 1
    tracks, crops, partners = reference(truncated_clip, prep)
    for tr, got, ref, own in zip(prep.tracks, prep.partner_crops, partners, crops):
        assert np.array_equal(got, ref)
        if tr.positions[-1] == len(prep.indices) - 1:
            assert np.array_equal(got[-1], own[-1])


def test_large_frames_are_kept_as_display_copies(tmp_path):
    """A 1280x720 clip: the report's frames are display copies (720 px wide), the crops come from full size."""
    import cv2

    path = tmp_path / "wide.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    for i in range(30):
        vw.write(np.full((720, 1280, 3), 8 * i, np.uint8))
    vw.release()
    prep = prepare(path, AnalysisConfig(frames=10), partners=True, first=False)
    assert prep.frames.shape == (10, 404, DISPLAY_MAX_SIDE, 3)
    assert prep.video["width"] == 1280


def test_interpolated_boxes_are_cropped_from_a_second_read(face_clip):
    """A box the tracker interpolated (the detector missed the face there) had no crop cut while reading: its
    frame and its successor are read again, and only those."""
    info = probe(face_clip)
    wanted = [10, 20, 30]
    box = Box(100, 60, 220, 180)
    frames, succ = FrameCrops(FaceConfig(), 3), SuccessorCrops(FaceConfig())
    sink = _Sink(frames, succ, {10: [box], 30: [box]})
    got = stream_frames(face_clip, wanted, info, frames=sink, successors=sink)
    frames.close()
    succ.close()
    track = FaceTrack(0)
    track.positions, track.detected = [0, 1, 2], [True, False, True]
    track.boxes = [box, Box(102, 61, 221, 181), box]
    asked = []

    def reread(indices):
        asked.append(indices)
        f, g = read_frames(face_clip, indices, info)
        return dict(zip(g, f))
    (crops,) = frames.track_crops([track], got, reread)
    (partners,) = succ.track_partners([track], got, [crops], reread)
    assert asked == [[20], [21]]
    full = read_frames(face_clip, [10, 11, 20, 21, 30, 31], info)[0]
    for p in range(3):
        assert np.array_equal(crops[p], crop_face(full[2 * p], track.boxes[p]))
        assert np.array_equal(partners[p], crop_face(full[2 * p + 1], track.boxes[p]))
    assert frames.frames().shape == (3, 288, 360, 3)


def test_the_reader_reuses_a_ring_of_buffers(face_clip):
    """20 frames and their 20 successors go through at most `slots` buffers each: the reader keeps none."""
    frames, succ = FrameCrops(FaceConfig(), 20, slots=2), SuccessorCrops(FaceConfig(), slots=2)
    sink = _Sink(frames, succ, {})
    stream_frames(face_clip, sample_indices(75, 20), probe(face_clip), frames=sink, successors=sink)
    assert sink.handed == [20, 20] and frames.made == 2 and succ.made == 2


def test_a_closed_ring_never_makes_the_reader_wait():
    """After the tracker's thread died (faces.BackgroundTracks closes the rings then), buffers are not given back:
    the reader gets fresh ones instead of waiting for ever."""
    succ = SuccessorCrops(FaceConfig(), slots=1)
    succ.buffer((4, 4, 3))
    succ.close()
    assert succ.buffer((4, 4, 3)).shape == (4, 4, 3)


def test_a_failing_tracker_does_not_stall_the_reader():
    """The detector raises on the tracker's thread while the reader still has frames to hand over: the reader's
    next buffers come at once, and the error reaches the caller."""
    import threading

    from detector.faces import BackgroundTracks

    bg = BackgroundTracks(FaceConfig(), successors=SuccessorCrops(FaceConfig(), slots=1),
                          frames=FrameCrops(FaceConfig(), 4, slots=1))
    bg.put_frame(0, np.zeros((4, 4), np.uint8))  # not (H, W, 3): the detector raises
    done = []

    def reader():
        for i in range(3):
            bg.put_frame(i + 1, bg.frame_buffer((8, 8, 3)))
            bg.put_successor(i + 1, bg.successor_buffer((8, 8, 3)), True)
        done.append(True)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout=10)
    bg.close()
    assert done
    with pytest.raises(Exception, match="input channels"):
        bg.result()


class _Sink:
    """A video.FrameSink and SuccessorSink that crops at given boxes ({frame number: boxes detected there}) on
    the reader's own thread (no tracker)."""

    def __init__(self, frames: FrameCrops, succ: SuccessorCrops, boxes: dict[int, list[Box]]) -> None:
        self.frames, self.succ, self.boxes, self.handed = frames, succ, boxes, [0, 0]

    def frame_buffer(self, shape):
        return self.frames.buffer(shape)

    def successor_buffer(self, shape):
        return self.succ.buffer(shape)

    def put_frame(self, idx, rgb):
        self.handed[0] += 1
        self.frames.take(idx, rgb, [Detection(b) for b in self.boxes.get(idx, [])])

    def put_successor(self, idx, bgr, decoded):
        self.handed[1] += 1
        self.succ.take(idx, bgr, decoded, [Detection(b) for b in self.boxes.get(idx, [])])
