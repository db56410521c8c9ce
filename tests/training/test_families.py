"""Paired fakes of every family, the real-face pack and the pack trainer, on the committed GRID crops."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from detector.training import families as F
from detector.training.pack import identity_split, still_to_crop

from research import devset_cues as dc


def _diff(a, b):
    return np.abs(a.astype(int) - b.astype(int)).mean(-1)


def _box_mean(d, pts, pad=2):
    x0, y0 = np.maximum(pts.min(0).astype(int) - pad, 0)
    x1, y1 = pts.max(0).astype(int) + pad
    return d[y0:y1, x0:x1].mean()


@pytest.mark.parametrize("family", F.FAMILIES)
def test_each_family_changes_the_face_not_the_corner_and_is_deterministic(crop_clips, family):
    crops, lms = crop_clips
    frame, lm = crops[0, 1], lms[0, 1]
    other = (crops[1, 0], lms[1, 0])
    diffs = []
    for seed in range(8):
        f = F.fake_frame(family, frame, lm, np.random.default_rng(seed), other)
        assert f.shape == frame.shape and f.dtype == np.uint8
        diffs.append(_diff(f, frame))
    d = np.mean(diffs, 0)
    face = _box_mean(d, lm)
    assert face > 1.0, f"{family} barely changes the face ({face:.2f})"
    if family != "resynth":  # resynth may redo the whole crop (a talking-head generator's output)
        assert d[:10, :10].mean() < 0.25 * face + 0.3, f"{family} changes the corner"
    a = F.fake_frame(family, frame, lm, np.random.default_rng(5), other)
    assert np.array_equal(a, F.fake_frame(family, frame, lm, np.random.default_rng(5), other))


def _edge_vs_outside(img):
    """log RMS Laplacian of the face's outer part over that of the ring outside it, as
    research/devset_cues.py's `edge_vs_ring_detail` measures it on the product's crops (the pipeline's
    geometry: face box + 0.3 each side)."""
    m = dc._rings(img.shape[0])
    return dc._detail_ratio(img.astype(np.float32).mean(-1)[None], m["edge"], m["ring"])


def test_softswap_leaves_the_face_edge_smoother_than_outside_it(crop_clips):
    """The trace the dev set's face swaps show on the product's crops and `swap` does not (families
    docstring): the face's outer part has less fine detail than the ring outside the face. Centre-matched,
    as the recipes make them; the corner stays untouched (the family test above)."""
    crops, lms = crop_clips
    gap = {"swap": [], "softswap": []}
    for k in range(crops.shape[1]):
        frame, lm, other = crops[0, k], lms[0, k], (crops[1, k], lms[1, k])
        for fam in gap:
            fake = F.fake_frame(fam, frame, lm, np.random.default_rng(k), other)
            gap[fam].append(_edge_vs_outside(fake) - _edge_vs_outside(frame))
    assert np.mean(gap["softswap"]) < np.mean(gap["swap"]) - 0.1, gap
    assert np.mean(gap["softswap"]) < -0.1, gap


def test_region_blends_stay_in_their_region(crop_clips):
    crops, lms = crop_clips
    frame, lm = crops[1, 2], lms[1, 2]
    for region, inside, outside in (("mouth", F.MOUTH, F.EYES), ("eyes", F.EYES, F.MOUTH)):
        d = []
        for seed in range(6):
            rng = np.random.default_rng(seed)
            p = {**F.region_params(rng), "region": region, "ratio": 1.0}
            d.append(_diff(F.region_blend(frame, lm, p, rng), frame))
        d = np.mean(d, 0)
        assert _box_mean(d, lm[inside], 0) > 1.5 * _box_mean(d, lm[np.setdiff1d(outside, inside)], 0), region


def test_resynth_decoders_keep_the_image_and_leave_their_trace(crop_clips):
    crops, _ = crop_clips
    img = crops[0, 0].astype(np.float32)
    for up in ("bilinear", "bicubic", "nearest_blur", "transposed"):
        p = {"scale": 2, "up": up, "kernel": np.linspace(0.2, 1.0, 8, dtype=np.float32), "imbalance": 0.03,
             "denoise": False}
        out = F.upsampling_decoder(img, p)
        assert out.shape == img.shape
        assert np.abs(out - img).mean() < 12  # the same face, a little softer
        assert np.abs(out - img).mean() > 0.5  # but re-synthesised
    # The zero-insertion decoder with an uneven kernel leaves a period-2 pattern (a spectral peak).
    p = {"scale": 2, "up": "transposed", "kernel": np.array([1, 0.2, 1, 0.2, 1, 1, 1, 1], np.float32),
         "imbalance": 0.05, "denoise": False}
    flat = np.full((64, 64, 3), 128, np.float32)
    out = F.upsampling_decoder(flat, p)[8:-8, 8:-8]
    assert abs(out[::2, ::2].mean() - out[::2, 1::2].mean()) > 5  # checkerboard: 128 * (1.05 - 0.95) = 12.8
    assert abs(out.mean() - 128) < 3


def test_animation_freezes_noise_that_real_video_renews(crop_clips):
    """(2f): a warped still carries its grain along; a real pseudo-clip draws fresh grain per frame."""
    crops, lms = crop_clips
    rng = np.random.default_rng(0)

    def grain_corr(clip):
        r = [c.astype(np.float32) - cv2.GaussianBlur(c.astype(np.float32), (0, 0), 1.0) for c in clip]
        return np.mean([np.corrcoef(a[30:80, 30:80].ravel(), b[30:80, 30:80].ravel())[0, 1]
                        for a, b in zip(r, r[1:])])

    # Without motion the grain can be compared pixel by pixel: frozen in the animation, fresh in video.
    real, _ = F.pseudo_clip(crops[0, 0], lms[0, 0], 8, rng, motion=0.0)
    fake = F.animate(crops[0, 0], lms[0, 0], 8, rng, motion=0.0)
    assert real.shape == fake.shape == (8, 112, 112, 3)
    assert grain_corr(fake) > grain_corr(real) + 0.2
    moving = F.animate(crops[0, 0], lms[0, 0], 8, rng)
    assert _diff(moving[0], moving[-1]).mean() > _diff(fake[0], fake[-1]).mean()  # and it does move


@pytest.mark.parametrize("family", ["sbi", "region", "swap", "softswap", "resynth", "warp", "animate"])
def test_fake_clips(crop_clips, family):
    crops, lms = crop_clips
    clip = F.fake_clip(family, crops[0], lms[0], np.random.default_rng(1), (crops[1], lms[1]))
    assert clip.shape == crops[0].shape and clip.dtype == np.uint8
    assert _diff(clip, crops[0]).mean() > 0.3


@pytest.mark.parametrize("family", ["sbi", "swap", "region", "resynth"])
def test_coherent_fake_clips_flicker_less_and_draw_the_same(crop_clips, family):
    """coherent=True: the manipulation (fake - real) changes less between frames than with per-frame
    jitter (sbi) or a moving swap source, and the caller's random stream advances exactly as without.
    (region/resynth only lose the blend-ratio flicker, a small effect on 4 frames: stream checked only.)"""
    crops, lms = crop_clips
    flicker, after = {}, {}
    for coherent in (False, True):
        rng = np.random.default_rng(3)
        fake = F.fake_clip(family, crops[0], lms[0], rng, (crops[1], lms[1]), match=False, coherent=coherent)
        resid = fake.astype(np.float32) - crops[0].astype(np.float32)
        flicker[coherent] = np.abs(np.diff(resid, axis=0)).mean()
        after[coherent] = rng.random()
    assert after[True] == after[False]
    if family in ("sbi", "swap"):
        assert flicker[True] < 0.95 * flicker[False]


def _region_sharpness(img, centre):
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
    h, w = img.shape[:2]
    m = np.zeros((h, w), bool)
    m[h // 4:h - h // 4, w // 4:w - w // 4] = True
    return np.log(lap[m if centre else ~m].var() + 1e-3)


def test_region_matching_fixes_a_soft_periphery_that_centre_matching_leaves(crop_clips):
    """A fake with the real centre and a blurred periphery: centre matching cannot see the difference,
    matching by regions brings the periphery's sharpness back towards the real frame's."""
    real = crop_clips[0][0, 0]
    fake = cv2.GaussianBlur(real, (0, 0), 0.8)  # softer than the real frame, within the amounts' reach
    fake[28:84, 28:84] = real[28:84, 28:84]
    gap = lambda img: abs(_region_sharpness(img, False) - _region_sharpness(real, False))  # noqa: E731
    assert gap(F.match_sharpness(fake, real)) > 0.5  # the periphery stays soft
    fixed = F.match_sharpness_regions(fake, real)
    assert gap(fixed) < 0.5 * gap(fake)
    assert abs(_region_sharpness(fixed, True) - _region_sharpness(real, True)) < 0.3
    assert F.fake_clip("animate", crop_clips[0][0], crop_clips[1][0], np.random.default_rng(0),
                       match="regions").shape == crop_clips[0][0].shape


def test_frame_fakes_take_the_same_matching_choice_as_clips(crop_clips):
    """fake_frame(match=...) is the unmatched fake passed through families.matched; a typo is an error."""
    frame, lm = crop_clips[0][0, 1], crop_clips[1][0, 1]
    raw = F.fake_frame("resynth", frame, lm, np.random.default_rng(3), match=False)
    for match, fn in ((True, F.match_sharpness), ("regions", F.match_sharpness_regions)):
        got = F.fake_frame("resynth", frame, lm, np.random.default_rng(3), match=match)
        assert np.array_equal(got, fn(raw, frame))
    assert not np.array_equal(F.matched(raw, frame, True), F.matched(raw, frame, "regions"))
    with pytest.raises(ValueError, match="'regions'"):
        F.matched(raw, frame, "region")


def test_unknown_family_and_swap_without_other(crop_clips):
    crops, lms = crop_clips
    with pytest.raises(ValueError, match="unknown family"):
        F.fake_frame("dream", crops[0, 0], lms[0, 0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="another identity"):
        F.fake_frame("swap", crops[0, 0], lms[0, 0], np.random.default_rng(0))


def test_still_to_crop_matches_the_pipeline_geometry():
    """A face box of side S/2.2 in the still fills 1/1.6 of the 112-px crop, as detector.faces crops it."""
    s = 224
    still = np.zeros((s, s, 3), np.uint8)
    box = s / 2.2
    a, b = int(round((s - box) / 2)), int(round((s + box) / 2))
    still[a:b, a:b] = 255
    crop = still_to_crop(still)
    assert crop.shape == (112, 112, 3)
    cols = np.flatnonzero(crop[56, :, 0] > 127)
    assert abs(len(cols) - 112 / 1.6) <= 2 and abs(cols.mean() - 55.5) <= 1.5


def test_identity_split_is_stable_and_by_identity():
    keys = [f"person:{i}" for i in range(2000)]
    splits = [identity_split(k) for k in keys]
    assert splits == [identity_split(k) for k in keys]
    share = {s: splits.count(s) / len(keys) for s in ("train", "val", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["val"] < 0.13 and 0.07 < share["test"] < 0.13


def _tiny_pack(tmp_path, crop_clips):
    crops, lms = crop_clips
    stills = {"crops": crops.reshape(-1, 112, 112, 3), "landmarks": lms.reshape(-1, 68, 2),
              "identity": np.array(["a"] * 4 + ["b"] * 4), "split": np.array(["train"] * 8),
              "source": np.array(["x"] * 8), "pad_frac": np.zeros(8, np.float32), "path": np.array(["p"] * 8)}
    stills["split"][[3, 7]] = "val"
    clips = {"crops": crops, "landmarks": lms, "identity": np.array(["s1", "s2"]), "split": np.array(["train", "val"]),
             "source": np.array(["grid", "grid"]), "path": np.array(["c1", "c2"]), "dropped": np.array(0)}
    np.savez(tmp_path / "stills.npz", **stills)
    np.savez(tmp_path / "clips.npz", **clips)
    (tmp_path / "pack.json").write_text(json.dumps({"stills": {"train": 6}}))
    return stills, clips


def test_pack_batch_pairs_each_fake_with_its_real(tmp_path, crop_clips):
    from detector.training.loop import TrainConfig
    from detector.training.train_pack import PackConfig, _pool, pack_batch

    stills, clips = _tiny_pack(tmp_path, crop_clips)
    pool = _pool(stills, clips, "train")
    x, y = pack_batch(pool, TrainConfig(frame_batch=8), PackConfig(), np.random.default_rng(0))
    assert x.shape == (8, 112, 112, 3) and x.dtype == np.uint8 and list(y) == [0] * 4 + [1] * 4
    x2, _ = pack_batch(pool, TrainConfig(frame_batch=8), PackConfig(), np.random.default_rng(0))
    assert np.array_equal(x, x2)


def test_carry_pack_round_trips_without_pickles(tmp_path, crop_clips):
    """The compact pack for a GPU machine: the same arrays as the pack, crops within WebP's error, splits kept."""
    from detector.training.pack import CARRY_FILE, compact, load_pack

    stills, clips = _tiny_pack(tmp_path, crop_clips)
    info = compact(tmp_path, tmp_path / "carry", quality=90, splits=("train",))
    assert info["stills"] == 6 and info["clips"] == 1
    assert info["bytes"] < 0.2 * (stills["crops"].nbytes + clips["crops"].nbytes)
    np.load(tmp_path / "carry" / CARRY_FILE, allow_pickle=False)["stills.identity"]  # plain arrays only
    s2, c2 = load_pack(tmp_path / "carry")  # load_pack reads a carry folder as it reads a pack
    keep_s, keep_c = stills["split"] == "train", clips["split"] == "train"
    assert set(s2) == set(stills) and set(c2) == set(clips)
    for a, b, keep in ((s2, stills, keep_s), (c2, clips, keep_c)):
        assert a["crops"].shape == b["crops"][keep].shape and a["crops"].dtype == np.uint8
        err = a["crops"].astype(np.float32) - b["crops"][keep]
        assert 10 * np.log10(255 ** 2 / np.mean(err ** 2)) > 30  # PSNR in dB
        assert np.abs(a["landmarks"] - b["landmarks"][keep]).max() < 0.1
        assert list(a["identity"]) == list(b["identity"][keep]) and set(a["split"]) == {"train"}
    assert int(c2["dropped"]) == 0
    with pytest.raises(ValueError, match="quality"):
        compact(tmp_path, tmp_path / "carry2", quality=0)


def test_batch_prefetcher_draws_the_same_batches_whatever_the_workers(tmp_path, crop_clips):
    """Batch k comes from the k-th seed of the caller's rng: the same with 1 or 2 workers, and as in-process."""
    from detector.training.loop import TrainConfig
    from detector.training.train_pack import BatchPrefetcher, PackConfig, _pool, pack_batch

    stills, clips = _tiny_pack(tmp_path, crop_clips)
    pool, cfg, pc = _pool(stills, clips, "train"), TrainConfig(frame_batch=4), PackConfig()
    runs = []
    for workers in (1, 2):
        with BatchPrefetcher(pool, cfg, pc, workers) as fn:
            rng = np.random.default_rng(5)
            runs.append([fn(rng) for _ in range(3)])
    seeds = np.random.default_rng(5).integers(1 << 62, size=3)
    direct = [pack_batch(pool, cfg, pc, np.random.default_rng(int(s))) for s in seeds]
    for a, b, c in zip(runs[0], runs[1], direct):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[0]) and list(a[1]) == [0, 0, 1, 1]
    assert not np.array_equal(runs[0][0][0], runs[0][1][0])  # successive batches differ
    with pytest.raises(ValueError, match="workers"):
        BatchPrefetcher(pool, cfg, pc, 0)


def test_pseudo_motion_moves_the_still_pseudo_clips_more(tmp_path, crop_clips):
    """PackConfig.pseudo_motion scales the still pseudo-clips' movement (and leaves the speaker clips alone)."""
    from detector.training.train_pack import PackConfig, clip_set

    stills, clips = _tiny_pack(tmp_path, crop_clips)
    diff = {}
    for motion in (1.0, 3.0):
        x, y, fam, src = clip_set(stills, clips, "train", 4, PackConfig(pseudo_motion=motion), 4, seed=3)
        diff[motion] = tuple(np.abs(np.diff(x[(y == 0) & (src == k)].astype(np.float32), axis=1)).mean()
                             for k in ("still", "clip"))
    assert diff[3.0][0] > 1.3 * diff[1.0][0]
    assert diff[3.0][1] == pytest.approx(diff[1.0][1], rel=0.35)  # speaker clips: only their codec draw differs


def _grain_persistence(clip: np.ndarray) -> float:
    """Mean correlation of consecutive frames' high-pass residuals, face centre of uint8 (T, S, S, 3)."""
    import cv2

    g = clip.astype(np.float32).mean(-1)
    h = [(f - cv2.GaussianBlur(f, (0, 0), 1.0))[20:92, 20:92].ravel() for f in g]
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(h, h[1:])]))


def test_clip_camera_renews_the_reals_grain(tmp_path, crop_clips):
    """PackConfig.clip_camera: a camera's noise, fresh every frame, lowers a clip's grain persistence
    without changing the picture, and clip_set pairs every camera-noised speaker clip with its fake.
    (Not asserted: that an "animate" fake's grain then persists more than its real's. At fixed pixels the
    animation's own motion decorrelates the residual more than GRID's head motion does: 0.19 against 0.61
    on the fixture clip, seed 3.)"""
    from detector.training.train_pack import PackConfig, _camera, clip_set

    for clip in crop_clips[0]:
        noisy = _camera(clip, np.random.default_rng(0))
        assert _grain_persistence(noisy) < _grain_persistence(clip) - 0.05
        assert np.abs(noisy.astype(np.float32) - clip).mean() < 6  # noise, not a new picture
    stills, clips = _tiny_pack(tmp_path, crop_clips)
    x, y, fam, src = clip_set(stills, clips, "train", 0, PackConfig(clip_camera=True), 4, seed=3)
    assert (y[src == "clip"] == 0).sum() == (y[src == "clip"] == 1).sum() > 0


def test_h264_round_trip_keeps_grain_where_little_moves(crop_clips):
    """families.h264: shape and dtype kept, deterministic; on a still face with a camera's fresh noise every
    frame (what clip_camera gives the reals), a strong H.264 encode carries grain from frame to frame (its
    P-frames copy blocks), which per-frame JPEG at a similar loss does not: the reason for `clip_codec`."""
    from detector.training.families import degrade, h264
    from detector.training.train_pack import _camera

    still = np.repeat(crop_clips[0][0][:1], 8, 0)  # one frame, held: (8, 112, 112, 3)
    noisy = _camera(still, np.random.default_rng(0))
    a, b = h264(noisy, 36, 224), h264(noisy, 36, 224)
    assert a.shape == noisy.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.abs(a.astype(np.float32) - noisy).mean() < 12  # the same picture, not a new one
    jpeg = np.stack([degrade(f, np.random.default_rng(1), {"scale": 1.0, "noise": 0.0, "jpeg": 30}) for f in noisy])

    def renewal(v):  # mean change from one frame to the next: here all of it is the camera's fresh noise
        return np.abs(np.diff(v.astype(np.float32), axis=0)).mean()

    # Measured on the fixture: 5.1 as noised, 3.7 after JPEG 30, 0.5 after CRF 23, ~0 after CRF 28+.
    assert renewal(jpeg) > 0.5 * renewal(noisy)
    assert renewal(h264(noisy, 28)) < 0.2 * renewal(jpeg) and renewal(a) < 0.2 * renewal(jpeg)
    assert np.abs(h264(noisy, 20).astype(np.float32) - noisy).mean() < np.abs(a.astype(np.float32) - noisy).mean()


def test_clip_codec_changes_only_the_codec(tmp_path, crop_clips):
    """PackConfig.clip_codec: the same clips, families and labels as without it (the codec has its own
    generator); with share 1 every real clip and every fake differs from its no-codec version."""
    from detector.training.train_pack import PackConfig, clip_set

    stills, clips = _tiny_pack(tmp_path, crop_clips)
    x0, y0, f0, s0 = clip_set(stills, clips, "train", 2, PackConfig(clip_camera=True), 4, seed=3)
    x1, y1, f1, s1 = clip_set(stills, clips, "train", 2, PackConfig(clip_camera=True, clip_codec=1.0), 4, seed=3)
    assert np.array_equal(y0, y1) and np.array_equal(f0, f1) and np.array_equal(s0, s1) and x0.shape == x1.shape
    assert all(not np.array_equal(a, b) for a, b in zip(x0, x1))
    assert np.abs(x0.astype(np.float32) - x1).mean() < 12


def test_thin_plate_spline_matches_scipy():
    """families._tps solves the system scipy's RBFInterpolator(kernel="thin_plate_spline") solves (the
    reenact probes were measured with scipy's; training no longer needs it)."""
    from scipy.interpolate import RBFInterpolator

    from detector.training.families import _tps

    rng = np.random.default_rng(0)
    c, v, q = rng.uniform(0, 112, (100, 2)), rng.normal(0, 3, (100, 2)), rng.uniform(0, 112, (256, 2))
    ref = RBFInterpolator(c, v, kernel="thin_plate_spline", smoothing=1.0)(q)
    assert np.abs(_tps(c, v, q, smoothing=1.0) - ref).max() < 1e-6


def test_reenact_follows_the_real_clip_with_frozen_grain(crop_clips):
    """families.reenact: frame 0 driven by the clip's own landmarks. Deterministic per seed; each fake frame
    is nearer its real frame than frame 0 is (the motion is the real clip's), and its grain persists from
    frame to frame more than the real clip's (one frame's texture, warped)."""
    from detector.training.families import fake_clip, reenact

    crops, lms = crop_clips
    for clip, lm in zip(crops, lms):
        a = reenact(clip, lm, np.random.default_rng(4))
        assert a.shape == clip.shape and a.dtype == np.uint8
        assert np.array_equal(a, reenact(clip, lm, np.random.default_rng(4)))
        err = lambda x, y: float(np.abs(x.astype(np.float32) - y).mean())  # noqa: E731
        assert np.mean([err(a[t], clip[t]) for t in range(1, len(clip))]) < \
            np.mean([err(clip[0], clip[t]) for t in range(1, len(clip))])
        assert _grain_persistence(a) > _grain_persistence(clip) + 0.1
    fake = fake_clip("reenact", crops[0], lms[0], np.random.default_rng(4))  # sharpness-matched per frame
    assert fake.shape == crops[0].shape


@pytest.mark.slow
def test_train_pack_end_to_end(tmp_path, crop_clips):
    from detector.training.loop import TrainConfig
    from detector.training.train_pack import PackConfig, train_pack
    from detector.weights import load_weights

    _tiny_pack(tmp_path, crop_clips)
    cfg = TrainConfig(backbone="resnet18", lstm_hidden=16, frame_batch=8, frame_steps=2, eval_every=1,
                      seq_epochs=1, online_fakes=False)
    pc = PackConfig(pseudo_train=2, pseudo_val=1, val_frames=6)
    out = tmp_path / "out" / "tiny.safetensors"
    _, spec = train_pack(tmp_path, tmp_path / "run", cfg, pc, budget_min=2, out=out)
    model, spec2 = load_weights(out)
    assert spec2.trained and "paired fake" in spec2.training["recipe"]
    assert set(spec2.training["val_clip_auc_per_family"]) >= {"all"}
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == 1 and "val_auc" in r for r in rows)
    assert (tmp_path / "run" / "stage1.pt").is_file()


@pytest.mark.slow
def test_train_pack_stage1_only_keeps_a_two_stream_init(tmp_path, crop_clips):
    """`--stage1-only` on a two-stream init (the shipped default's layout): only the backbone changes; the
    residual stream, the LSTM and the head are the init's, tensor for tensor, and the frame head goes beside
    the weights. Without --stage1-only such an init is refused (its clip stage belongs to train-residual)."""
    import torch
    from safetensors.torch import load_file

    from detector.model import build_model, spec_for
    from detector.training.loop import TrainConfig
    from detector.training.train_pack import FRAME_HEAD, PackConfig, train_pack
    from detector.weights import load_weights, save_weights

    _tiny_pack(tmp_path, crop_clips)
    torch.manual_seed(0)
    init_spec = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16, sequence_length=2,
                         input_size=112, residual_width=2, residual_pairs="next")
    init_spec = dataclasses.replace(init_spec, trained=True, trained_on="Test faces.", attribution="Test authors")
    init = tmp_path / "init" / "init.safetensors"
    save_weights(build_model(init_spec), init_spec, init)
    cfg = TrainConfig(backbone="resnet18", lstm_hidden=16, frame_batch=8, frame_steps=2, eval_every=1,
                      online_fakes=False, init=str(init))
    pc = PackConfig(val_frames=6)
    with pytest.raises(SystemExit, match="stage1-only"):
        train_pack(tmp_path, tmp_path / "run0", cfg, pc, budget_min=2)
    out = tmp_path / "out" / "s1.safetensors"
    _, spec = train_pack(tmp_path, tmp_path / "run", cfg, pc, budget_min=2, out=out, stage1_only=True)
    (a, _), (b, spec2) = load_weights(init), load_weights(out)
    assert spec2.residual_width == 2 and spec2.residual_pairs == "next"
    assert "stage 1 only" in spec2.training["recipe"] and spec2.training["steps"] == 2
    assert spec2.trained_on.startswith("Test faces. Then its backbone") and spec2.attribution == "Test authors"
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    same = {k for k in sa if torch.equal(sa[k], sb[k])}
    assert {k for k in sa if not k.startswith("backbone.")} <= same  # stream, LSTM, head: the init's
    assert any(k.startswith("backbone.") and k not in same for k in sa)  # the backbone trained
    head = load_file(str(out.with_name("s1" + FRAME_HEAD)))
    assert head["weight"].shape == (2, 512)


def test_clipset_writes_paired_real_and_fake_videos(tmp_path, crop_clips):
    """Held-out stills become real pseudo-clips and paired fakes, as videos the product can analyse."""
    from detector.training.clipset import write_clipset
    from detector.video import probe

    crops, _ = crop_clips
    faces = tmp_path / "faces"
    faces.mkdir()
    names = []
    for k in range(3):  # 112-px crops at 1.6x the box -> 224-px stills at 2.2x, as the stills are made
        pad = int(round(112 * (2.2 / 1.6 - 1) / 2))
        still = cv2.resize(cv2.copyMakeBorder(crops[k % 2, k], pad, pad, pad, pad, cv2.BORDER_REPLICATE), (224, 224))
        names.append(f"s{k}.jpg")
        cv2.imwrite(str(faces / names[-1]), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    pack = tmp_path / "pack"
    pack.mkdir()
    np.savez(pack / "stills.npz", split=np.array(["val"] * 3), path=np.array(names),
             identity=np.array(["id:0", "id:1", "id:2"]))
    info = write_clipset(pack, faces, "val", tmp_path / "out", n=3, frames=6,
                         families=("sbi", "softswap", "animate"))  # softswap: takes another person's face too
    assert info["real_still_clips"] == 3 and info["fake"] == {"sbi": 1, "softswap": 1, "animate": 1}
    reals = sorted((tmp_path / "out" / "real" / "still").glob("*.mp4"))
    fakes = sorted((tmp_path / "out" / "fake").rglob("*.mp4"))
    assert len(reals) == 3 and len(fakes) == 3
    assert {p.name for p in reals} == {p.name for p in fakes}  # paired by identity
    info0 = probe(reals[0])
    assert (info0.width, info0.height, info0.frame_count) == (224, 224, 6)


@pytest.mark.slow
def test_distill_teacher_student_and_init_backbone(tmp_path, crop_clips):
    """Stage 0: the teacher's descriptors tell the two speakers apart and are cached without pickles; the
    student trains, resumes, and its backbone loads into train-pack's model (`TrainConfig.init_backbone`)."""
    import torch
    from safetensors.torch import load_file

    from research.distill import DESCRIPTORS, DistillConfig, distill, teacher_targets
    from detector.training.loop import TrainConfig, build_for_training

    _tiny_pack(tmp_path, crop_clips)
    cfg = DistillConfig(batch=4, steps=2, eval_every=1)
    t = teacher_targets(tmp_path, cfg, workers=1)
    assert t["train"].shape == (6 + 2, 128) and t["val"].shape == (2 + 2, 128)  # stills, then every 2nd frame
    a, b = t["train"][:3], t["train"][3:6]  # stills of speakers a and b
    within = np.linalg.norm(a[:, None] - a[None], axis=-1).sum() / 6
    across = np.linalg.norm(a[:, None] - b[None], axis=-1).mean()
    assert within < across
    with np.load(tmp_path / DESCRIPTORS, allow_pickle=False) as z:
        assert np.array_equal(z["train"], t["train"])
    # The carry pack takes the descriptors along, and its rows line up with them.
    from research.distill import real_crops
    from detector.training.pack import compact, load_pack

    compact(tmp_path, tmp_path / "carry")
    assert (tmp_path / "carry" / DESCRIPTORS).is_file()
    full, carry = load_pack(tmp_path), load_pack(tmp_path / "carry")
    for split in ("train", "val"):
        (xp, ip), (xc, ic) = real_crops(full, split, 2), real_crops(carry, split, 2)
        assert np.array_equal(ip, ic) and xp.shape == xc.shape
        assert np.abs(xp.astype(int) - xc.astype(int)).mean() < 3  # WebP q85
    run = tmp_path / "distill"
    s = distill(tmp_path, run, cfg, budget_min=2, backbone_name="resnet18", workers=1)
    assert s["steps"] == 2 and s["best_val_r2"] <= 1
    s = distill(tmp_path, run, DistillConfig(batch=4, steps=3, eval_every=1), budget_min=2,
                backbone_name="resnet18", workers=1)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # resumed at step 2, not restarted
    cfg_train = TrainConfig(backbone="resnet18", init_backbone=str(run / "backbone.safetensors"))
    model, _, note = build_for_training(cfg_train, 4, 112, "cpu")
    saved = load_file(run / "backbone.safetensors")
    assert all(torch.equal(v.float(), saved[k]) for k, v in model.backbone.state_dict().items())
    assert "backbone initialised from backbone.safetensors" in note


@pytest.mark.slow
def test_train_residual_end_to_end_and_resume(tmp_path, crop_clips):
    """A frozen backbone from `init`, the stream + LSTM + head trained and saved; --resume continues."""
    import dataclasses

    import torch

    from detector.model import build_model, spec_for
    from detector.training.train_residual import ResidualConfig, train_residual
    from detector.weights import load_weights, save_weights

    _tiny_pack(tmp_path, crop_clips)
    torch.manual_seed(0)
    init_spec = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16, sequence_length=6, trained=True,
                         trained_on="a test")
    init = tmp_path / "init.safetensors"
    init_model = build_model(init_spec)
    save_weights(init_model, init_spec, init)
    rc = ResidualConfig(width=2, families=("reenact", "swap", "sbi"), pseudo_train=3, pseudo_val=2, batch=2,
                        eval_every=2, patience=100, max_steps=4, aux_weight=0.5)
    out = tmp_path / "out" / "tiny_res.safetensors"
    run = tmp_path / "run"
    _, spec = train_residual(tmp_path, init, run, rc, budget_min=5, out=out)
    model, spec2 = load_weights(out)
    assert spec2.residual_width == 2 and spec2.trained and "residual-pair stream" in spec2.training["recipe"]
    assert spec2.training["init"]["name"] == init_spec.name
    src = load_weights(init)[0].backbone.state_dict()
    for k, v in model.backbone.state_dict().items():  # frozen: exactly the init's (to fp16 rounding)
        assert torch.allclose(v.float(), src[k].float(), atol=1e-2), k
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "step" in r]
    assert steps and (run / "checkpoint.pt").is_file()
    train_residual(tmp_path, init, run, dataclasses.replace(rc, max_steps=6), budget_min=5, out=out,
                   resume=True)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    resumed = [r["resumed_at_step"] for r in rows if "resumed_at_step" in r]
    assert resumed == [max(steps)]


@pytest.mark.slow
def test_train_residual_on_a_next_pack(tmp_path, crop_clips):
    """A pack of (frame, successor) pairs (`pack --next`) trains a stream that pairs "next" frames."""
    import torch

    from detector.model import build_model, spec_for
    from detector.training.train_residual import ResidualConfig, split_next, train_residual
    from detector.weights import load_weights, save_weights

    _tiny_pack(tmp_path, crop_clips)
    (tmp_path / "pack.json").write_text(json.dumps({"pairs": "next"}))
    x = np.arange(2 * 4).reshape(2, 4)
    a, b = split_next(x)
    assert a.tolist() == [[0, 2], [4, 6]] and b.tolist() == [[1, 3], [5, 7]]
    torch.manual_seed(0)
    init_spec = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16, sequence_length=2, trained=True)
    init = tmp_path / "init.safetensors"
    save_weights(build_model(init_spec), init_spec, init)
    rc = ResidualConfig(width=2, pseudo_train=3, pseudo_val=2, batch=2, eval_every=2, patience=100, max_steps=2,
                        aux_weight=0.5)
    out = tmp_path / "out" / "tiny_next.safetensors"
    train_residual(tmp_path, init, tmp_path / "run", rc, budget_min=5, out=out)
    model, spec = load_weights(out)
    assert spec.residual_pairs == "next" and "successor" in spec.training["recipe"]
    clip = torch.randint(0, 255, (1, 2, 3, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        assert not model.forward_features(clip)[..., 512:].any()  # no successors: no stream evidence
        assert model.forward_features(clip, clip.roll(1, -1))[..., 512:].any()


def test_clip_crops_with_partners_interleaves_successors(face_clip):
    from detector.training.prepare import clip_crops

    plain = clip_crops(str(face_clip), 5)
    both = clip_crops(str(face_clip), 5, partners=True)
    assert both.shape == (10, 112, 112, 3) and np.array_equal(both[0::2], plain)
    diff = np.abs(both[1::2].astype(float) - both[0::2].astype(float)).mean(axis=(1, 2, 3))
    assert (diff > 0).all() and (diff < 20).all()  # the next frame, in the same box


@pytest.mark.slow
def test_train_residual_freeze_stream_keeps_init_stream(tmp_path, crop_clips):
    """--freeze-stream: init's stream is kept bit for bit (fp16), only a fresh LSTM + head train; it needs a
    "next" pack and init weights with a stream."""
    import dataclasses

    import torch

    from detector.model import build_model, spec_for
    from detector.training.train_residual import ResidualConfig, train_residual
    from detector.weights import load_weights, save_weights

    _tiny_pack(tmp_path, crop_clips)
    torch.manual_seed(0)
    plain = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16, sequence_length=2, trained=True)
    init_spec = dataclasses.replace(plain, residual_width=2, residual_pairs="next")
    init = tmp_path / "init.safetensors"
    init_model = build_model(init_spec)
    for p in init_model.residual.parameters():  # not the default init: a kept stream is recognisable
        p.data.uniform_(-1, 1)
    save_weights(init_model, init_spec, init)
    rc = ResidualConfig(width=4, pseudo_train=3, pseudo_val=2, batch=2, eval_every=2, patience=100, max_steps=4,
                        freeze_stream=True, rgb_drop=0.8)
    with pytest.raises(ValueError, match="pack --next"):  # a pack of sampled pairs
        train_residual(tmp_path, init, tmp_path / "run0", rc, budget_min=5)
    (tmp_path / "pack.json").write_text(json.dumps({"pairs": "next"}))
    out = tmp_path / "out" / "tiny_frozen.safetensors"
    train_residual(tmp_path, init, tmp_path / "run", rc, budget_min=5, out=out)
    model, spec = load_weights(out)
    src, _ = load_weights(init)
    assert spec.residual_width == 2 and spec.residual_pairs == "next"  # the init's stream, not rc.width
    for k, v in model.residual.state_dict().items():
        assert torch.equal(v, src.residual.state_dict()[k]), k
    assert not torch.equal(model.head.weight, src.head.weight)
    assert "frozen; a fresh LSTM + head" in spec.training["recipe"] and "rgb 0.8" in spec.training["recipe"]
    # A new head seed on the cached features of that run: the clips are not built again (the pack is not
    # even read), the head differs; other clips' caches are refused.
    import shutil
    seeded = tmp_path / "run_h1"
    seeded.mkdir()
    for f in ("rgb_features.pt", "stream_features.pt", "labels.json"):
        shutil.copy(tmp_path / "run" / f, seeded / f)
    moved = tmp_path / "moved_clips.npz"
    (tmp_path / "clips.npz").rename(moved)
    out_h1 = tmp_path / "out" / "tiny_h1.safetensors"
    train_residual(tmp_path, init, seeded, dataclasses.replace(rc, head_seed=1), budget_min=5, out=out_h1,
                   resume=True)
    assert not torch.equal(load_weights(out_h1)[0].head.weight, model.head.weight)
    with pytest.raises(ValueError, match="other clips"):
        train_residual(tmp_path, init, seeded, dataclasses.replace(rc, seed=5), budget_min=5, resume=True)
    moved.rename(tmp_path / "clips.npz")
    plain_init = tmp_path / "plain.safetensors"
    save_weights(build_model(plain), plain, plain_init)
    with pytest.raises(ValueError, match="stream"):
        train_residual(tmp_path, plain_init, tmp_path / "run1", rc, budget_min=5)
    # --stream-from-init: the init's stream is the start, and it trains on
    rc2 = dataclasses.replace(rc, freeze_stream=False, stream_from_init=True, rgb_l2=1e-3)
    out2 = tmp_path / "out" / "tiny_tuned.safetensors"
    train_residual(tmp_path, init, tmp_path / "run2", rc2, budget_min=5, out=out2)
    tuned, spec2 = load_weights(out2)
    assert spec2.residual_width == 2 and "started from" in spec2.training["recipe"]
    conv = "residual.body.0.weight"
    start, end = src.state_dict()[conv].float(), tuned.state_dict()[conv].float()
    assert not torch.equal(start, end) and (end - start).abs().mean() < 0.1 * start.abs().mean()  # moved, not reset
    with pytest.raises(ValueError, match="stream"):
        train_residual(tmp_path, plain_init, tmp_path / "run3", rc2, budget_min=5)


@pytest.mark.slow
def test_train_residual_extra_clips_read_through_the_product_face_path(tmp_path, crop_clips, face_clip,
                                                                       other_face_clip, no_face_clip, monkeypatch):
    """--extra-clips: a folder of video clips (real/, fake/<family>/) is cropped by the product's face path with
    each frame's successor, its clips join the pack's training clips (a clip without a face is left out, with
    its label), their features are cached once and reused, and the recipe says so; it needs --freeze-stream."""
    import dataclasses

    import torch

    import detector.training.prepare as prepare
    from detector.errors import InputError
    from detector.model import build_model, spec_for
    from detector.training.train_residual import ResidualConfig, extra_clip_crops, train_residual
    from detector.weights import save_weights

    _tiny_pack(tmp_path, crop_clips)
    (tmp_path / "pack.json").write_text(json.dumps({"pairs": "next"}))
    extra = tmp_path / "extra"
    for rel, src in (("real/still/a.mpg", face_clip), ("fake/sbi/b.mpg", other_face_clip),
                     ("fake/sbi/none.mp4", no_face_clip)):
        (extra / rel).parent.mkdir(parents=True, exist_ok=True)
        (extra / rel).symlink_to(src)
    x, y, paths = extra_clip_crops(extra, 2)
    assert x.shape == (2, 4, 112, 112, 3) and list(y) == [1, 0] and paths[0].endswith("fake/sbi/b.mpg")
    assert np.array_equal(x[1], prepare.clip_crops(str(face_clip), 2, partners=True))
    torch.manual_seed(0)
    spec = dataclasses.replace(spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16, sequence_length=2,
                                        trained=True), residual_width=2, residual_pairs="next")
    init = tmp_path / "init.safetensors"
    save_weights(build_model(spec), spec, init)
    rc = ResidualConfig(width=4, pseudo_train=3, pseudo_val=2, batch=2, eval_every=2, patience=100, max_steps=4,
                        freeze_stream=True, extra_clips=str(extra))
    with pytest.raises(ValueError, match="freeze_stream"):
        train_residual(tmp_path, init, tmp_path / "run0", dataclasses.replace(rc, freeze_stream=False), budget_min=5)
    _, spec1 = train_residual(tmp_path, init, tmp_path / "run", rc, budget_min=5, out=tmp_path / "o" / "e.safetensors")
    assert "2 clips of the training identities as video files" in spec1.training["recipe"]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"stage": 3, "extra_clips": 2, "extra_fake": 1} in log
    cached = torch.load(tmp_path / "run" / "extra_features.pt", weights_only=True)
    assert cached["rgb"].shape[:2] == (2, 2) and cached["res"].shape[:3] == (2, 2, 2)

    def no_decode(*a, **k):
        raise AssertionError("the cached extra clips were decoded again")

    monkeypatch.setattr(prepare, "clip_crops", no_decode)
    train_residual(tmp_path, init, tmp_path / "run", dataclasses.replace(rc, head_seed=1), budget_min=5, resume=True)
    (extra / "real" / "still" / "c.mpg").symlink_to(face_clip)  # a clip added since: the cache is stale
    with pytest.raises(AssertionError, match="decoded again"):
        train_residual(tmp_path, init, tmp_path / "run", rc, budget_min=5, resume=True)
    (extra / "real").rename(tmp_path / "gone_real")
    (extra / "fake").rename(tmp_path / "gone_fake")
    with pytest.raises(InputError):
        extra_clip_crops(extra, 2)
