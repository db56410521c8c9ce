import numpy as np
import pytest

from detector.errors import CorruptVideoError, EmptyVideoError, InputTooLargeError, NotAVideoError
from detector.video import VideoLimits, probe, read_frame_pairs, read_frames, read_image, sample_indices


def test_sample_indices_spread_over_whole_clip():
    idx = sample_indices(300, 20)
    assert len(idx) == 20 and idx == sorted(set(idx))
    assert idx[0] < 15 and idx[-1] > 285  # covers the start and the end, not the first 20 frames
    gaps = np.diff(idx)
    assert gaps.min() >= 14 and gaps.max() <= 16


def test_sample_indices_short_clip_uses_all():
    assert sample_indices(7, 20) == list(range(7))
    assert sample_indices(0, 20) == []


def test_probe_grid_clip(face_clip):
    info = probe(face_clip)
    assert (info.width, info.height) == (360, 288)
    assert info.frame_count == 75 and info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize("gap", [0, 4, 10**9])
def test_read_frames_returns_requested_frames(long_mp4, gap):
    idx = sample_indices(300, 10)
    frames, got = read_frames(long_mp4, idx, max_grab_gap=gap)
    assert got == idx and frames.shape == (10, 96, 128, 3) and frames.dtype == np.uint8
    # Each frame's colour encodes its index (R = i % 256 in RGB order): seeking and grabbing agree.
    for f, i in zip(frames, idx):
        assert abs(int(f[48, 64, 0]) - (i % 256)) <= 6


def test_text_file_named_mp4(text_as_mp4):
    with pytest.raises(NotAVideoError, match="not a video"):
        probe(text_as_mp4)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(EmptyVideoError):
        probe(p)


def test_size_cap(face_clip):
    with pytest.raises(InputTooLargeError, match="cap"):
        probe(face_clip, VideoLimits(max_bytes=1000))
    with pytest.raises(InputTooLargeError, match="cap"):
        probe(face_clip, VideoLimits(max_duration_s=1.0))


def test_truncated_clip_reads_what_is_there(truncated_clip):
    info = probe(truncated_clip)
    frames, got = read_frames(truncated_clip, sample_indices(info.frame_count, 20), info)
    assert 0 < len(got) <= 20 and len(frames) == len(got)


def test_random_bytes_are_not_a_video(tmp_path):
    p = tmp_path / "garbage.mp4"
    p.write_bytes(bytes(np.random.default_rng(0).integers(0, 255, 8192, np.uint8)))
    with pytest.raises((CorruptVideoError, NotAVideoError)):
        probe(p)


def test_mpeg_frames_are_exact(face_clip):
    """MPEG-PS seeks overshoot (10 -> 12): read_frames must still return frame 10 itself."""
    frames, got = read_frames(face_clip, [10, 40])
    all_frames, _ = read_frames(face_clip, list(range(41)), max_grab_gap=10**9)
    assert got == [10, 40]
    assert np.array_equal(frames[0], all_frames[10]) and np.array_equal(frames[1], all_frames[40])


def test_read_image_rejects_text(text_as_mp4, tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(text_as_mp4.read_bytes())
    with pytest.raises(NotAVideoError):
        read_image(p)


def test_read_frame_pairs_gives_each_frame_its_successor(long_mp4):
    """Partners are the very next video frame; the last frame, having none, is its own partner."""
    idx = [0, 41, 150, 299]
    frames, got, partners = read_frame_pairs(long_mp4, idx)
    assert got == idx and frames.shape == partners.shape == (4, 96, 128, 3)
    for f, p, i in zip(frames, partners, idx):
        assert abs(int(f[48, 64, 0]) - (i % 256)) <= 6
        assert abs(int(p[48, 64, 0]) - (min(i + 1, 299) % 256)) <= 6
    assert np.array_equal(frames[-1], partners[-1])


def _seek_each(path, indices):
    """The reference: one seek per frame (a grab gap of 0), each frame read on its own."""
    return np.stack([read_frames(path, [i], max_grab_gap=0)[0][0] for i in indices])


@pytest.mark.parametrize("n", [10, 60, 300])  # sparse, the product's default, every frame (successors sampled)
def test_frame_pairs_match_a_seek_per_frame(long_mp4, n):
    """One forward pass gives exactly the frames and successors that seeking to each one gives, in RGB or
    (partners) OpenCV's BGR."""
    idx = sample_indices(300, n)
    frames, got, partners = read_frame_pairs(long_mp4, idx)
    _, _, bgr = read_frame_pairs(long_mp4, idx, partner_order="BGR")
    assert got == idx
    assert np.array_equal(frames, _seek_each(long_mp4, idx))
    want = _seek_each(long_mp4, [min(i + 1, 299) for i in idx])
    assert np.array_equal(partners, want) and np.array_equal(bgr, want[..., ::-1])


def test_frame_pairs_exact_on_mpeg(face_clip):
    """MPEG-PS (no exact seeks): the pairs equal the same frames read through from the start."""
    idx = sample_indices(75, 20)
    frames, got, partners = read_frame_pairs(face_clip, idx)
    every, _ = read_frames(face_clip, list(range(75)), max_grab_gap=10**9)
    assert got == idx and np.array_equal(frames, every[idx])
    assert np.array_equal(partners, every[[min(i + 1, 74) for i in idx]])


def test_frame_pairs_on_truncated_file(truncated_clip):
    """A file that ends early: the frames read, each with its successor or (none decodable) itself."""
    info = probe(truncated_clip)
    frames, got, partners = read_frame_pairs(truncated_clip, sample_indices(75, 20), info)  # the whole clip's
    assert 0 < len(got) < 20 and frames.shape == partners.shape and len(frames) == len(got)
    assert np.array_equal(frames[:-1], read_frames(truncated_clip, got[:-1], info)[0])


def test_frame_pairs_rejects_unknown_order(long_mp4):
    with pytest.raises(ValueError, match="partner_order"):
        read_frame_pairs(long_mp4, [0], partner_order="YUV")
