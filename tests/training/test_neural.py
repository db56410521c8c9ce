"""The neural-generator corpus stage (issue 38): manifest, generator groups, leave-one-method-out folds, the
face path with crop_x, and the clip stage on cached features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.training import neural as N
from detector.training import train_neural as TN

HEADER = ("label\tfamily\tmethod\trepo\tcommit\tpath_in_repo\tbytes\tsha256\tframes\tfps\twidth\theight\t"
          "local_file\tcrop_x\tlicence\tperson\tnote\n")


def _row(label, family, method, repo, file, crop="", note=""):
    return f"{label}\t{family}\t{method}\t{repo}\tc\tp\t1\ts\t50\t25\t64\t64\tclips/{label}/m/{file}\t{crop}\tMIT\tp\t{note}\n"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread, so a loaded machine's spinning workers do not cost more than the work."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    rows = [_row("fake", "lip-sync", "MuseTalk 1.5 (fork)", "a/one", "f1.mp4", note="pair:P1"),
            _row("fake", "lip-sync", "MuseTalk (baseline, as run by InfiniteTalk authors)", "b/two", "f2.mp4"),
            _row("fake", "lip-sync", "LatentSync (baseline, as run by InfiniteTalk authors)", "b/two", "f3.mp4"),
            _row("fake", "talking-head", "JoyHallo (English)", "c/three", "f4.mp4"),
            _row("fake", "talking-head", "Hallo (baseline in JoyHallo project page)", "c/three", "f5.mp4",
                 crop="0.5,1.0"),
            _row("real", "real", "", "a/one", "r1.mp4", note="pair:P1"),
            _row("real", "real", "real (stock)", "d/four", "r2.mp4"),
            _row("real", "real", "", "e/five", "r3.mp4")]
    p = tmp_path / "MANIFEST.tsv"
    p.write_text(HEADER + "".join(rows))
    return p


def test_method_groups_read_the_leading_name(manifest: Path) -> None:
    clips = N.read_manifest(manifest)
    assert [c.group for c in clips] == ["MuseTalk", "MuseTalk", "LatentSync", "Hallo", "Hallo", "real", "real", "real"]
    assert clips[4].crop_x == (0.5, 1.0) and clips[0].pair == "P1" and clips[0].y == 1 and clips[5].y == 0
    assert N.method_group("Wav2Lip 384x384 variant (demo)") == "Wav2Lip"
    assert N.method_group("SomethingNew (v2)") == "SomethingNew"


def test_bad_crop_x_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "m.tsv"
    p.write_text(HEADER + _row("fake", "nerf", "X", "a/b", "f.mp4", crop="0.9,0.2"))
    with pytest.raises(ValueError, match="crop_x"):
        N.read_manifest(p)


def test_folds_hold_each_method_out_once_and_never_train_on_a_scored_repository(manifest: Path) -> None:
    clips = N.read_manifest(manifest)
    rounds = N.folds(clips)
    assert sorted(r["group"] for r in rounds) == ["Hallo", "LatentSync", "MuseTalk"]
    held_fakes = [i for r in rounds for i in r["test"] if clips[i].y == 1]
    assert sorted(held_fakes) == [0, 1, 2, 3, 4]  # every fake exactly once
    for r in rounds:
        test, train = set(r["test"]), set(r["train"])
        assert not test & train
        assert all(clips[i].group != r["group"] for i in train)
        assert not {clips[i].repo for i in test} & {clips[i].repo for i in train}
        assert any(clips[i].y == 0 for i in test)  # every round scores some real clips
    muse = next(r for r in rounds if r["group"] == "MuseTalk")
    assert 5 in muse["test"]  # the real input paired with a held-out fake is held out with it
    assert {i for r in rounds for i in r["test"] if clips[i].y == 0} == {5, 6, 7}


def test_crop_x_cuts_the_generated_panel() -> None:
    frames = np.zeros((2, 4, 10, 3), np.uint8)
    frames[:, :, 5:] = 200
    cut = N._cut(frames, (0.5, 1.0))
    assert cut.shape == (2, 4, 5, 3) and cut.min() == 200 and cut.flags["C_CONTIGUOUS"]
    assert N._cut(frames, None) is frames


@pytest.mark.slow
def test_neural_pack_reads_clips_through_the_face_path(tmp_path: Path, face_clip: Path) -> None:
    root = tmp_path / "neural"
    for label, name in (("fake", "f.mpg"), ("real", "r.mpg")):
        (root / label / "m").mkdir(parents=True, exist_ok=True)
        shutil.copy(face_clip, root / label / "m" / name)
    m = tmp_path / "MANIFEST.tsv"
    m.write_text(HEADER + _row("fake", "lip-sync", "Wav2Lip", "a/b", "f.mpg", crop="0.0,1.0")
                 + _row("real", "real", "", "c/d", "r.mpg"))
    info = N.build_neural_pack(m, root, tmp_path / "pack", frames=6, log=lambda *_: None)
    clips, x, aug = N.load_neural_pack(tmp_path / "pack")
    assert len(clips) == 2 and x.shape == (2, 12, 112, 112, 3) and aug.shape == x.shape
    assert [c.y for c in clips] == [1, 0] and info["no_face"] == []
    assert not np.array_equal(np.asarray(x), np.asarray(aug))  # the degraded copy differs
    with pytest.raises(FileNotFoundError, match="restore.py"):
        N.build_neural_pack(m, tmp_path / "missing", tmp_path / "p2", frames=6, log=lambda *_: None)


def _fake_data(tmp_path: Path, manifest: Path) -> TN.Data:
    """Cached-feature files with a planted signal: fakes' residual features are shifted."""
    g = torch.Generator().manual_seed(0)
    clips = N.read_manifest(manifest)
    y = torch.tensor([c.y for c in clips])

    def feats(n, t, yy):
        rgb = torch.randn(n, t, 8, generator=g).half()
        res = torch.randn(2, n, t, 4, generator=g) + 1.5 * yy.view(1, -1, 1, 1)
        return {"rgb": rgb, "res": res.half()}

    ytr, yva = torch.arange(40) % 2, torch.arange(20) % 2
    torch.save({"train": {**feats(40, 20, ytr), "y": ytr, "family": ["x"] * 40},
                "val": {**feats(20, 20, yva), "y": yva, "family": ["real", "sbi"] * 10}, "init": "t"},
               tmp_path / "feat_pack.pt")
    torch.save({"orig": feats(len(y), 60, y), "aug": feats(len(y), 30, y), "y": y}, tmp_path / "feat_neural.pt")
    (tmp_path / "npack").mkdir()
    (tmp_path / "npack" / "clips.json").write_text(json.dumps({"clips": [c.__dict__ for c in clips]}))
    np.save(tmp_path / "npack" / "crops.npy", np.random.default_rng(0).integers(0, 255, (len(y), 4, 16, 16, 3), np.uint8))
    return TN.Data(tmp_path / "feat_pack.pt", tmp_path / "feat_neural.pt", tmp_path / "npack")


@pytest.mark.parametrize("cell", ["lstm", "gru", "mean"])
def test_heads_learn_a_planted_signal_and_lomo_scores_every_clip(tmp_path: Path, manifest: Path, cell: str) -> None:
    d = _fake_data(tmp_path, manifest)
    nc = TN.NeuralConfig(steps=40, batch=8, cell=cell, hidden=8, rgb_drop=0.0, residual_drop=0.0)
    res = TN.lomo(d, nc, log=lambda *_: None)
    m = np.array(res["margins"])
    assert not np.isnan(m).any()
    assert res["pooled_roc_auc"] > 0.9  # the shifted stream separates fakes from reals out of fold
    assert set(res["per_method"]) == {"MuseTalk", "LatentSync", "Hallo"}
    assert set(res["cue"]) == {"centre", "0.0", "0.5", "1.0", "2.0"}
    assert res["cue"]["0.0"]["pooled_roc_auc"] == res["pooled_roc_auc"]
    assert TN.val_figures(d, TN.train_head(d, np.arange(8), nc, log=lambda *_: None))["roc_auc"] > 0.9


def test_unknown_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="cell"):
        TN.TemporalHead(8, TN.NeuralConfig(cell="transformer"))


def test_lomo_in_two_processes_gives_the_same_scores(tmp_path: Path, manifest: Path) -> None:
    d = _fake_data(tmp_path, manifest)
    nc = TN.NeuralConfig(steps=20, batch=8, cell="mean")
    one, two = TN.lomo(d, nc, log=lambda *_: None), TN.lomo(d, nc, log=lambda *_: None, workers=2)
    np.testing.assert_allclose(one["margins"], two["margins"], rtol=1e-5, atol=1e-6)


def test_temporal_ablation_scores_every_variant_and_the_shuffled_frames(tmp_path: Path, manifest: Path) -> None:
    d = _fake_data(tmp_path, manifest)
    rows = TN.ablation(d, TN.NeuralConfig(steps=10, batch=8, hidden=8))
    assert [r["variant"] for r in rows] == list(TN.ABLATION)
    mean = rows[-1]
    assert mean["shuffled_frames_mean_abs_margin_change"] < 1e-4  # a mean over frames cannot read their order
    assert all(0 <= r["unseen_generators_pooled_roc_auc"] <= 1 for r in rows)
