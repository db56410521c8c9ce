import numpy as np

from detector.faces import Box, Detection, FaceConfig, crop_face, detect_faces, iou, track_faces
from detector.video import read_frames


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


def test_detects_real_face(face_clip):
    frames, _ = read_frames(face_clip, [10])
    dets = detect_faces(frames[0])
    assert len(dets) == 1
    b = dets[0].box
    assert 90 < b.x0 + (b.x1 - b.x0) / 2 < 270  # the speaker is near the middle of the 360-px frame
    assert dets[0].encoding.shape == (128,)
