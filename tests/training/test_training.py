"""Synthesis, preparation, training and evaluation on tiny data."""

import json

import numpy as np
import pytest

from detector.training.evaluate import binary_metrics, eer, roc_auc
from detector.training.prepare import Item, assign_splits


# ------------------------------------------------------------------ metrics vs hand-computed values
def test_metrics_hand_computed():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.3, 0.8, 0.4, 0.9])
    m = binary_metrics(y, p, 0.5)
    # predictions: 0 1 0 1 0 1 -> tp=2 (0.8, 0.9), fp=1 (0.6), fn=1 (0.4), tn=2
    assert m["confusion"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: pairs (fake > real) out of 9: 0.8 beats 3, 0.9 beats 3, 0.4 beats 0.1 and 0.3 -> 8/9
    assert m["roc_auc"] == pytest.approx(8 / 9)
    ll = -np.mean(np.log([0.9, 0.4, 0.7, 0.8, 0.4, 0.9]))
    assert m["log_loss"] == pytest.approx(ll)


def test_auc_ties_and_eer():
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert eer(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    # Perfectly inverted scores: every threshold errs -> EER 1.
    assert eer(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


# ------------------------------------------------------------------ splits
def test_splits_are_identity_disjoint():
    items = [Item(f"{i}_{k}.mp4", k % 2, "sbi" if k % 2 else "real", f"id{i}") for i in range(20) for k in range(4)]
    assign_splits(items, set(), set(), seed=3)
    by_split = {}
    for it in items:
        by_split.setdefault(it.split, set()).add(it.identity)
    assert set(by_split) == {"train", "val", "test"}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])
    items2 = [Item("a.mp4", 0, "real", "s4"), Item("b.mp4", 1, "swap", "s4"), Item("c.mp4", 0, "real", "s1")]
    assign_splits(items2, {"s5"}, {"s4"})
    assert [it.split for it in items2] == ["test", "test", "train"]


# ------------------------------------------------------------------ synthesis
@pytest.fixture(scope="module")
def clip_and_landmarks(face_clip):
    from detector.training.synth import clip_landmarks
    from detector.video import read_frames

    frames, _ = read_frames(face_clip, list(range(0, 24, 3)), max_grab_gap=10**9)
    return frames, clip_landmarks(frames)


def test_sbi_shapes_determinism_and_mask_inside_face(clip_and_landmarks):
    from detector.training.synth import sbi_clip

    frames, lms = clip_and_landmarks
    assert lms.shape == (len(frames), 68, 2)
    a, ma = sbi_clip(frames, lms, np.random.default_rng(7))
    b, mb = sbi_clip(frames, lms, np.random.default_rng(7))
    c, _ = sbi_clip(frames, lms, np.random.default_rng(8))
    assert a.shape == frames.shape and a.dtype == np.uint8 and ma.shape == frames.shape[:3]
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)
    for m, lm in zip(ma, lms):
        x0, y0 = lm.min(0)
        x1, y1 = lm.max(0)
        pad = 0.35 * max(x1 - x0, y1 - y0)  # deformation + blur reach a little past the hull
        outside = m.copy()
        outside[int(y0 - pad):int(y1 + pad), int(x0 - pad):int(x1 + pad)] = 0
        assert outside.max() < 1e-3 and m.max() > 0.2
    diff = np.abs(a.astype(int) - frames.astype(int)).sum(-1)
    assert diff[ma < 1e-3].max() == 0 and diff[ma > 0.3].mean() > 1  # changed inside the mask only


def test_face_swap_changes_the_face(clip_and_landmarks, other_face_clip):
    from detector.training.synth import clip_landmarks, swap_clip
    from detector.video import read_frames

    frames, lms = clip_and_landmarks
    src, _ = read_frames(other_face_clip, list(range(0, 24, 3)), max_grab_gap=10**9)
    out = swap_clip(frames[:3], lms[:3], src[:3], clip_landmarks(src[:3]))
    assert out.shape == frames[:3].shape
    x0, y0 = lms[0].min(0).astype(int)
    x1, y1 = lms[0].max(0).astype(int)
    inside = np.abs(out[0, y0:y1, x0:x1].astype(int) - frames[0, y0:y1, x0:x1].astype(int)).mean()
    corner = np.abs(out[0, :20, :20].astype(int) - frames[0, :20, :20].astype(int)).mean()
    assert inside > 5 and corner < 1


# ------------------------------------------------------------------ online fakes (crop level)
def test_crop_landmarks_find_the_face(crop_clips):
    _, lms = crop_clips
    # The face fills the middle of a crop with margin 0.3: landmarks spread over ~40-80 px around the centre.
    centre = lms.mean(axis=2)
    assert np.all(np.abs(centre - 56) < 15)
    spread = np.ptp(lms, axis=2)
    assert np.all((spread > 35) & (spread < 95))
    # Eyes (36-47) above the mouth (48-67) in every crop.
    assert np.all(lms[:, :, 36:48, 1].mean(-1) < lms[:, :, 48:68, 1].mean(-1) - 15)


def test_online_sbi_and_swap_change_only_the_face(crop_clips):
    from detector.training.online_fakes import OnlineFakes

    crops, lms = crop_clips
    of = OnlineFakes(crops, lms, ["s4", "s31"])
    diffs = []
    for seed in range(6):
        f = of.sbi_frame(0, 1, np.random.default_rng(seed))
        assert f.shape == (112, 112, 3) and f.dtype == np.uint8
        diffs.append(np.abs(f.astype(int) - crops[0, 1].astype(int)))
    d = np.mean(diffs, axis=0).mean(-1)
    assert d[40:80, 40:72].mean() > 3 * d[:12, :12].mean() + 1  # inside the face, not in the corner
    a = of.sbi_frame(0, 1, np.random.default_rng(3))
    assert np.array_equal(a, of.sbi_frame(0, 1, np.random.default_rng(3)))  # deterministic per seed
    clip = of.sbi_clip(1, np.random.default_rng(0))
    assert clip.shape == crops[1].shape
    sw = of.swap_frame(0, 2, np.random.default_rng(0))
    assert sw.shape == (112, 112, 3) and np.abs(sw.astype(int) - crops[0, 2].astype(int))[40:80, 40:72].mean() > 4
    assert of.swap_clip(1, np.random.default_rng(0)).shape == crops[1].shape
    assert OnlineFakes(crops[:1], lms[:1], ["s4"]).swap_frame(0, 0, np.random.default_rng(0)) is None


def test_frame_batch_is_balanced_and_pairs_online_fakes(crop_clips):
    from detector.training.online_fakes import OnlineFakes
    from detector.training.grid import frame_batch
    from detector.training.loop import TrainConfig

    crops, lms = crop_clips
    x = np.concatenate([crops, crops[:1, :, ::-1]])  # two real clips and one "prepared fake"
    y = np.array([0, 0, 1])
    cfg = TrainConfig(frame_batch=8, online_sbi=2, online_swap=1)
    of = OnlineFakes(crops, lms, ["s4", "s31"])
    frames, labels = frame_batch(x, y, cfg, np.random.default_rng(0), of)
    assert frames.shape == (8, 112, 112, 3) and frames.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    again, _ = frame_batch(x, y, cfg, np.random.default_rng(0), of)
    assert np.array_equal(frames, again)
    # Without online fakes and without prepared fakes there is nothing to learn "fake" from: a clear error.
    with pytest.raises(ValueError, match="no fake clips"):
        frame_batch(x[:2], y[:2], cfg, np.random.default_rng(0), None)


@pytest.mark.slow
def test_training_with_online_fakes_runs_both_stages(crop_clips, tmp_path):
    from detector.training.grid import train
    from detector.training.loop import TrainConfig

    crops, _ = crop_clips
    root = tmp_path / "prep"
    (root / "crops").mkdir(parents=True)
    rows = []
    for split in ("train", "val"):
        for k, (clip, label, ident) in enumerate([(crops[0], 0, "s4"), (crops[1], 0, "s31"),
                                                  (crops[0, :, ::-1], 1, "s4")]):
            name = f"crops/{split}_{k}.npy"
            np.save(root / name, np.ascontiguousarray(clip))
            rows.append({"file": name, "label": label, "method": "sbi" if label else "real",
                         "identity": ident if split == "train" else "v" + ident, "split": split, "crops": name})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(backbone="resnet18", lstm_hidden=8, frame_batch=8, frame_steps=3, eval_every=2,
                      seq_epochs=2, online_sbi=2, online_swap=1, seq_online_sbi=2, seq_online_swap=1)
    _, spec = train(root, tmp_path / "run", cfg, budget_min=3)
    assert spec.training["stage2_online_fake_clips"] == 2 * (2 + 1)
    assert spec.training["train_clips"] == 3 and "self-blends" in spec.training["recipe"]
    assert (tmp_path / "run" / "landmarks_train_real.npy").is_file()
    # Final fit on train + val with nothing held out: last backbone, fixed stage-2 epochs, no val losses.
    cfg2 = TrainConfig(backbone="resnet18", lstm_hidden=8, frame_batch=8, frame_steps=2, eval_every=2,
                       seq_epochs=2, online_sbi=2, online_swap=1, seq_online_sbi=1, seq_online_swap=0)
    _, spec2 = train(root, tmp_path / "run2", cfg2, budget_min=3, train_splits=("train", "val"), val_split=None)
    assert spec2.training["train_clips"] == 6 and spec2.training["val_clips"] == 0
    assert spec2.training["stage2"] == {"best_val_loss": None, "epochs": 2}
    log = [json.loads(x) for x in (tmp_path / "run2" / "log.jsonl").read_text().splitlines()]
    assert all(r["val_loss"] is None for r in log)


# ------------------------------------------------------------------ tiny training + evaluation
def _tiny_prepared(root, n=16, t=4, size=32, seed=0):
    """Real: smooth noise; fake: the same with a bright square in the middle (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    (root / "crops").mkdir(parents=True)
    rows = []
    for k in range(n):
        for split in ("train", "val", "test"):
            label = k % 2
            clip = rng.integers(60, 120, (t, size, size, 3)).astype(np.uint8)
            if label:
                clip[:, 10:22, 10:22] = 250
            name = f"crops/{split}_{k}.npy"
            np.save(root / name, clip)
            rows.append({"file": name, "label": label, "method": "square" if label else "real",
                         "identity": f"{split}{k // 4}", "split": split, "crops": name})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.mark.slow
def test_tiny_training_lowers_loss_and_evaluates(tmp_path):
    from detector.training.evaluate import evaluate
    from detector.training.grid import train
    from detector.training.loop import TrainConfig
    from detector.weights import load_weights

    prepared = _tiny_prepared(tmp_path / "prep")
    cfg = TrainConfig(backbone="resnet18", lstm_hidden=16, frame_batch=16, frame_steps=40, eval_every=10,
                      seq_epochs=15, frame_lr=1e-3, online_fakes=False)
    model, spec = train(prepared, tmp_path / "run", cfg, budget_min=5, out=tmp_path / "w.safetensors")
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    s1 = [r for r in log if r["stage"] == 1]
    assert s1[-1]["val_loss"] < s1[0]["val_loss"] and s1[-1]["train_loss"] < 0.6
    assert (tmp_path / "run" / "curves.png").is_file()
    model, spec = load_weights(tmp_path / "w.safetensors")
    res = evaluate(model, spec, prepared, "test", roc_png=tmp_path / "roc.png")
    assert res["video"]["roc_auc"] > 0.9 and res["per_method"]["square"]["n"] == 16
    assert set(res["per_identity"]) == {f"test{i}" for i in range(4)}
    assert all(r["n_real"] == 2 and r["n_fake"] == 2 for r in res["per_identity"].values())
    assert (tmp_path / "roc.png").is_file()
    # Resume: stage 1 is done, so a second call only redoes the cheap stage 2.
    log_len = len(log)
    train(prepared, tmp_path / "run", cfg, budget_min=5)
    s1_after = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][log_len:]
    assert all(r["stage"] == 2 for r in s1_after)
