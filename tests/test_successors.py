"""Successors cut down to their face crops while the file decodes (detector/successors.py) are exactly the crops
of the full successor frames, whatever the sampling, and the reader never holds more than a ring of them."""

import numpy as np
import pytest

from detector.faces import Box, Detection, FaceConfig, FaceTrack, crop_face, track_crops
from detector.pipeline import AnalysisConfig, prepare
from detector.successors import SuccessorCrops
from detector.video import probe, read_frame_pairs, read_frames, sample_indices


def full_partner_crops(path, prep, config=FaceConfig()):
    """The reference: every successor read whole (video.read_frame_pairs), cropped with the tracks' boxes."""
    frames, got, nxt = read_frame_pairs(path, prep.indices, probe(path), partner_order="RGB")
    assert got == prep.indices and np.array_equal(frames, prep.frames)
    return [track_crops(nxt, tr, config) for tr in prep.tracks]


@pytest.mark.parametrize("frames, adaptive", [(20, False), (60, False), (60, True)])
def test_prepared_partner_crops_are_the_full_successors_crops(face_clip, frames, adaptive):
    """20 of 75 frames (every successor a frame of its own), 60 of 75 (most successors are sampled frames
    themselves), and the adaptive first read's own tracks over every third of those 60."""
    prep = prepare(face_clip, AnalysisConfig(frames=frames, adaptive=adaptive), partners=True, first=adaptive)
    for p in [prep, prep.first] if adaptive else [prep]:
        assert p.tracks and len(p.partner_crops) == len(p.tracks)
        for got, ref in zip(p.partner_crops, full_partner_crops(face_clip, p)):
            assert got.dtype == np.uint8 and got.flags.c_contiguous and np.array_equal(got, ref)


def test_the_clips_last_frame_is_its_own_partner(truncated_clip):
    """A frame without a successor is paired with itself, as video.read_frame_pairs pairs it ("no evidence")."""
    info = probe(truncated_clip)
    prep = prepare(truncated_clip, AnalysisConfig(frames=20), partners=True, first=False)
    assert prep.indices[-1] == info.frame_count - 1
    for tr, got, ref in zip(prep.tracks, prep.partner_crops, full_partner_crops(truncated_clip, prep)):
        assert np.array_equal(got, ref)
        if tr.positions[-1] == len(prep.indices) - 1:
            assert np.array_equal(got[-1], track_crops(prep.frames, tr)[-1])


def test_interpolated_boxes_are_cropped_from_a_second_read(face_clip):
    """A box the tracker interpolated (the detector missed the face there) had no crop cut while reading: its
    successor is read again, and only that one."""
    info = probe(face_clip)
    wanted = [10, 20, 30]
    succ = SuccessorCrops(FaceConfig())
    box = Box(100, 60, 220, 180)
    frames, got = read_frames(face_clip, wanted, info, successors=_Sink(succ, {10: [box], 30: [box]}))
    succ.close()
    track = FaceTrack(0)
    track.positions, track.detected = [0, 1, 2], [True, False, True]
    track.boxes = [box, Box(102, 61, 221, 181), box]
    asked = []

    def reread(indices):
        asked.append(indices)
        f, g = read_frames(face_clip, indices, info)
        return dict(zip(g, f))
    (crops,) = succ.track_partners([track], got, frames, reread)
    assert asked == [[21]]
    nxt = read_frames(face_clip, [11, 21, 31], info)[0]
    for p in range(3):
        assert np.array_equal(crops[p], crop_face(nxt[p], track.boxes[p]))


def test_the_reader_reuses_a_ring_of_buffers(face_clip):
    """60 successors go through at most `slots` buffers: the reader keeps none of them."""
    succ = SuccessorCrops(FaceConfig(), slots=2)
    sink = _Sink(succ, {})
    read_frames(face_clip, sample_indices(75, 20), probe(face_clip), successors=sink)
    assert sink.handed == 20 and succ.made == 2


def test_a_closed_ring_never_makes_the_reader_wait():
    """After the tracker's thread died (faces.BackgroundTracks closes the ring then), buffers are not given back:
    the reader gets fresh ones instead of waiting for ever."""
    succ = SuccessorCrops(FaceConfig(), slots=1)
    succ.buffer((4, 4, 3))
    succ.close()
    assert succ.buffer((4, 4, 3)).shape == (4, 4, 3)


class _Sink:
    """A video.SuccessorSink that crops at given boxes ({frame number: boxes detected there}) on the reader's own
    thread (no tracker)."""

    def __init__(self, succ: SuccessorCrops, boxes: dict[int, list[Box]]) -> None:
        self.succ, self.boxes, self.handed = succ, boxes, 0

    def buffer(self, shape):
        return self.succ.buffer(shape)

    def put_successor(self, idx, bgr, decoded):
        self.handed += 1
        self.succ.take(idx, bgr, decoded, [Detection(b) for b in self.boxes.get(idx, [])])


def test_a_failing_tracker_does_not_stall_the_reader():
    """The detector raises on the tracker's thread while the reader still has successors to hand over: the
    reader's next buffers come at once, and the error reaches the caller."""
    import threading

    from detector.faces import BackgroundTracks

    bg = BackgroundTracks(FaceConfig(), successors=SuccessorCrops(FaceConfig(), slots=1))
    bg.put(np.zeros((4, 4), np.uint8))  # not (H, W, 3): the detector raises
    done = []

    def reader():
        for _ in range(3):
            buf = bg.buffer((8, 8, 3))
            bg.put_successor(0, buf, True)
        done.append(True)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout=10)
    bg.close()
    assert done
    with pytest.raises(Exception, match="input channels"):
        bg.result()
