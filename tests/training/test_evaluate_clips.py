"""`evaluate --clips` and `calibrate` end to end on a tiny generated folder with a tiny model.

Folder: two real GRID fixture clips, two synthesised fakes (SBI and face swap, 16 frames), one clip
without a face (NO_FACE) and one file that is not a video (failed). Weights: resnet18 trunk, 32 hidden,
randomly initialised, saved as safetensors + sidecar in tmp, so the numbers are meaningless but every
count and every key is checked.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from detector.cli import main


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory, face_clip, other_face_clip, no_face_clip):
    from detector.training.synth import clip_landmarks, sbi_clip, swap_clip, write_video
    from detector.video import read_frames

    root = tmp_path_factory.mktemp("clips")
    (root / "real" / "grid").mkdir(parents=True)
    shutil.copy(face_clip, root / "real" / "grid" / face_clip.name)
    shutil.copy(other_face_clip, root / "real" / "grid" / other_face_clip.name)
    (root / "real" / "screens").mkdir()
    shutil.copy(no_face_clip, root / "real" / "screens" / "gradient.mp4")
    a, _ = read_frames(face_clip, list(range(16)), max_grab_gap=10**9)
    b, _ = read_frames(other_face_clip, list(range(16)), max_grab_gap=10**9)
    la, lb = clip_landmarks(a), clip_landmarks(b)
    fakes, _ = sbi_clip(a, la, np.random.default_rng(0))
    write_video(root / "fake" / "sbi" / "s4_sbi.mp4", fakes, 25.0, 90)
    write_video(root / "fake" / "swap" / "s31_swap.mp4", swap_clip(b, lb, a, la), 25.0, 90)
    (root / "fake" / "swap" / "broken.mp4").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_spec):
    import dataclasses

    import torch

    from detector.model import build_model
    from detector.weights import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(build_model(tiny_spec), dataclasses.replace(tiny_spec, trained=True, trained_on="test"), path)
    return path


@pytest.fixture(scope="module")
def first_run(clip_dir, tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    manifest = out / "MANIFEST.tsv"
    manifest.write_text("label\tfamily\tmethod\tsha256\tlocal_file\n"
                        "fake\tself-blend\tSBI\t\tclips/fake/sbi/s4_sbi.mp4\n"
                        "fake\tface-swap\tlandmark swap\t\tclips/fake/swap/s31_swap.mp4\n"
                        "real\treal\tGRID\t\tclips/real/grid/s4_bbae9n.mpg\n")
    js = out / "scores.json"
    rc = main(["evaluate", "--clips", str(clip_dir), "--manifest", str(manifest), "--weights", str(tiny_weights),
               "--frames", "6", "--json-out", str(js), "--roc", str(out / "roc.png"), "--no-progress",
               "--update-sidecar"])
    assert rc == 0
    return json.loads(js.read_text()), out, manifest


def test_counts_no_face_failed_and_rows(first_run):
    res, out, _ = first_run
    assert res["n_clips"] == 6
    assert res["n_real"] == 2 and res["n_fake"] == 2  # scored clips, with a face
    assert res["no_face"] == {"n_real": 1, "n_fake": 0, "clips": ["real/screens/gradient.mp4"]}
    assert res["failed"]["n"] == 1 and "fake/swap/broken.mp4" in res["failed"]["clips"]
    assert "excluded" in res["scoring"]
    rows = {r["path"]: r for r in res["clips"]}
    assert rows["real/screens/gradient.mp4"]["verdict"] == "NO_FACE"
    assert rows["fake/swap/broken.mp4"]["status"] == "failed"
    scored = [r for r in res["clips"] if r["status"] == "scored"]
    for r in scored:
        assert {"path", "label", "family", "method", "p_fake", "p_fake_raw", "margin", "verdict", "seconds"} <= set(r)
        assert r["p_fake"] == pytest.approx(1 / (1 + np.exp(-r["margin"])))  # uncalibrated: raw sigmoid
    # Families and methods come from the manifest by relative path; clips missing from it are said so.
    assert rows["fake/sbi/s4_sbi.mp4"]["family"] == "self-blend" and rows["fake/sbi/s4_sbi.mp4"]["method"] == "SBI"
    assert rows["real/grid/s31_bbac2n.mpg"]["method"] == "not in manifest"
    o = res["overall"]
    for k in ("roc_auc", "eer", "log_loss", "accuracy", "precision", "recall", "f1", "fpr", "tpr"):
        assert k in o
    assert o["roc_auc_ci95"] is None  # two clips a class: no interval rather than a falsely narrow one
    assert o["confusion"]["tn"] + o["confusion"]["fp"] == 2
    assert o["fpr"] == o["flagged_real"] / 2
    assert set(res["per_family"]) == {"self-blend", "face-swap", "real", "not in manifest"}
    assert "roc_auc_vs_all_real" in res["per_family"]["self-blend"]
    assert (out / "roc.png").stat().st_size > 1000
    assert res["timings"]["per_clip_mean_s"] > 0 and res["complete"]


def test_update_sidecar_stores_devset_and_keeps_tensors(first_run, tiny_weights):
    from detector.hashing import sha256_file
    from detector.weights import read_spec

    spec = read_spec(tiny_weights)
    dev = spec.metrics["devset"]
    for k in ("roc_auc", "n_real", "n_fake", "fpr", "tpr", "per_family", "date", "frames", "command", "n_no_face"):
        assert k in dev, k
    assert dev["n_real"] == 2 and dev["n_no_face"] == 1 and dev["frames"] == 6
    assert spec.weights_sha256 == sha256_file(tiny_weights)


def test_resume_scores_nothing_new(first_run, clip_dir, tiny_weights, monkeypatch):
    from detector.training import evaluate_clips as ec

    res, out, manifest = first_run
    calls = []
    real_score = ec.score_clip
    monkeypatch.setattr(ec, "score_clip", lambda root, rel, *a: calls.append(rel) or real_score(root, rel, *a))
    again = ec.evaluate_clips(clip_dir, manifest, out / "scores.json", None, tiny_weights, 6, progress=False)
    assert calls == ["fake/swap/broken.mp4"]  # only the failed clip is tried again
    assert again["n_real"] == res["n_real"] and again["overall"]["roc_auc"] == res["overall"]["roc_auc"]
    # Other frames (or other weights) never mix with stored scores.
    from detector.errors import InputError

    with pytest.raises(InputError, match="another frame count"):
        ec.evaluate_clips(clip_dir, manifest, out / "scores.json", None, tiny_weights, 8, progress=False)


def test_calibrate_then_reports_carry_calibration(first_run, tiny_weights, face_clip):
    from detector.calibration import calibrate
    from detector.pipeline import AnalysisConfig, Detector, analyze_video
    from detector.render import render_html, views
    from detector.weights import load_weights, read_spec, store_calibration

    res, out, _ = first_run
    # The random tiny model ranks these 4 clips as chance has it; where a higher score means "more real" the
    # command refuses (one line, exit 2). Then we give it scores that rank fakes higher, as a trained model.
    scores = json.loads((out / "scores.json").read_text())
    scored = [r for r in scores["clips"] if r["status"] == "scored"]
    for r in scored:
        r["margin"] = 0.0
    scored[0]["margin"] = 1.0 if scored[0]["label"] == "real" else -1.0
    (out / "inverted.json").write_text(json.dumps(scores))
    assert main(["calibrate", "--scores", str(out / "inverted.json"), "--weights", str(tiny_weights)]) == 2
    for i, r in enumerate(scored):
        r["margin"] = (2.0 if r["label"] == "fake" else -1.0) + 0.5 * i
    (out / "ranked.json").write_text(json.dumps(scores))
    assert main(["calibrate", "--scores", str(out / "ranked.json"), "--weights", str(tiny_weights)]) == 0
    block = read_spec(tiny_weights).calibration
    assert {"a", "b", "threshold", "band_low", "validation", "rule", "date"} <= set(block)
    assert block["validation"]["n_real"] == 2 and block["validation"]["n_excluded"] == 2

    model, spec = load_weights(tiny_weights)
    r = analyze_video(face_clip, AnalysisConfig(frames=6), detector=Detector(model, spec, "fp32"))
    d = json.loads(r.to_json())
    assert d["calibration"]["calibrated"] and d["calibration"]["threshold"] == block["threshold"]
    assert "real validation clips" in d["calibration"]["meaning"]
    face = d["faces"][0]
    assert d["p_fake"] == pytest.approx(1 / (1 + np.exp(-(block["a"] * face["logit_margin"] + block["b"]))), abs=1e-6)
    assert d["p_fake_raw"] == face["p_fake_raw"]

    # INCONCLUSIVE: a band that holds every score.
    store_calibration(tiny_weights, block | {"threshold": 1.0 - 1e-12, "band_low": 0.0})
    model, spec = load_weights(tiny_weights)
    r = analyze_video(face_clip, AnalysisConfig(frames=6), detector=Detector(model, spec, "fp32"))
    assert r.verdict == "INCONCLUSIVE"
    assert views.label_value(r).startswith("INCONCLUSIVE")
    assert "What this means" in views.timings_markdown(r)
    page = render_html(r)
    assert "INCONCLUSIVE" in page and "real validation clips" in page
    assert "meaning:" in r.summary()
    # A hand-set threshold gives a two-way verdict again.
    r2 = analyze_video(face_clip, AnalysisConfig(frames=6, threshold=0.5), detector=Detector(model, spec, "fp32"))
    assert r2.verdict in ("REAL", "FAKE") and r2.calibration["band"] is None

    # --real-world: the scored real clips of another evaluation raise the threshold (none may reach it at
    # fpr 0), with the leave-one-source-out count; a bad rate is one line and exit 2.
    args = ["calibrate", "--scores", str(out / "ranked.json"), "--weights", str(tiny_weights),
            "--real-world", str(out / "ranked.json")]
    assert main(args + ["--real-world-fpr", "1.5"]) == 2
    assert main(args + ["--real-world-fpr", "0"]) == 0
    rw_block = read_spec(tiny_weights).calibration
    rw = rw_block["real_world"]
    reals = [r["margin"] for r in scored if r["label"] == "real"]
    top = max(calibrate(m, rw_block) for m in reals)
    assert rw["n_real"] == 2 and rw["false_alarms_in_sample"] == 0 and rw_block["threshold"] > top
    assert "false_alarms_leave_one_source_out" in rw and "real-world" in rw_block["rule"]


def test_old_sidecar_without_calibration_loads():
    from detector.spec import ModelSpec

    s = ModelSpec.from_dict({"name": "x", "threshold": 0.5})
    assert s.calibration == {}


def test_auc_intervals_cover_the_estimate_narrow_with_clips_and_pair_models():
    """Bootstrap intervals of the ROC-AUC: contain the point estimate, shrink as clips are added, are
    degenerate for a perfect ranking, deterministic per seed; the paired difference of a model with
    itself is exactly 0, and a clearly better model's interval excludes 0."""
    from detector.training.evaluate import roc_auc, roc_auc_ci, roc_auc_diff_ci

    rng = np.random.default_rng(0)

    def scores(n, shift):
        y = np.r_[np.zeros(n, int), np.ones(n, int)]
        return y, rng.normal(size=2 * n) + shift * y

    y, p = scores(37, 0.8)
    lo, hi = roc_auc_ci(y, p)
    assert lo < roc_auc(y, p) < hi and hi - lo > 0.1
    assert (lo, hi) == roc_auc_ci(y, p)
    yb, pb = scores(1000, 0.8)
    assert np.subtract(*roc_auc_ci(yb, pb)[::-1]) < 0.4 * (hi - lo)
    assert roc_auc_ci(y, y.astype(float)) == (1.0, 1.0)
    assert all(np.isnan(roc_auc_ci(np.zeros(5, int), np.arange(5.0))))
    from detector.training.evaluate_clips import _ci

    assert _ci(y, p) == [round(lo, 4), round(hi, 4)] and _ci(y[33:41], p[33:41]) is None  # 4 real + 4 fake
    assert roc_auc_diff_ci(y, p, p) == (0.0, 0.0, 0.0)
    better = p + 3.0 * y
    diff, dlo, dhi = roc_auc_diff_ci(y, p, better)
    assert diff > 0 and dlo > 0
    worse = roc_auc_diff_ci(y, better, p)
    assert worse[0] == -diff and worse[2] < 0


def test_auc_diff_over_several_readings_is_the_mean_with_clips_resampled_alike():
    """roc_auc_diff_ci on (K, N) scores (K frame samplings of the same clips): one reading equals the 1-D
    call; K copies of one reading give the same figures; the difference is the mean of the K differences."""
    from detector.training.evaluate import roc_auc, roc_auc_diff_ci

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    a = rng.normal(size=(3, 80)) + 0.5 * y
    b = a + rng.normal(scale=0.5, size=(3, 80)) + 1.0 * y
    assert roc_auc_diff_ci(y, a[0], b[0]) == roc_auc_diff_ci(y, a[:1], b[:1])
    assert roc_auc_diff_ci(y, a[0], b[0]) == roc_auc_diff_ci(y, np.stack([a[0]] * 3), np.stack([b[0]] * 3))
    diff, lo, hi = roc_auc_diff_ci(y, a, b)
    assert diff == pytest.approx(np.mean([roc_auc(y, b[k]) - roc_auc(y, a[k]) for k in range(3)]))
    assert 0 < lo < diff < hi
