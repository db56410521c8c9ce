"""Calibration maths on synthetic scores: fitting (training side) and applying (detector.calibration)."""

import math

import numpy as np
import pytest

from detector import calibration as cal
from detector.training.calibrate import (
    choose_band_low,
    choose_threshold,
    fit_calibration,
    fit_platt,
    leave_one_source_out,
    log_loss,
)


def _miscalibrated(n: int, seed: int = 0, a: float = 0.3, b: float = -1.0):
    """Margins whose true P(fake) is sigmoid(a m + b): sigmoid(m) is over-confident and biased to FAKE."""
    rng = np.random.default_rng(seed)
    m = rng.normal(2.0, 6.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a * m + b)))).astype(int)
    return m, y


def test_platt_recovers_parameters_and_lowers_log_loss():
    m, y = _miscalibrated(6000)
    a, b = fit_platt(m, y)
    assert a == pytest.approx(0.3, abs=0.05) and b == pytest.approx(-1.0, abs=0.2)
    raw = 1 / (1 + np.exp(-m))
    fitted = 1 / (1 + np.exp(-(a * m + b)))
    assert log_loss(y, fitted) < log_loss(y, raw) - 0.1


def test_temperature_lowers_log_loss_on_overconfident_scores():
    rng = np.random.default_rng(1)
    m = rng.normal(0, 8, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-m / 4))).astype(int)  # true temperature 4
    a, b = fit_platt(m, y, temperature_only=True)
    assert b == 0.0 and 1 / a == pytest.approx(4.0, rel=0.15)
    assert log_loss(y, 1 / (1 + np.exp(-a * m))) < log_loss(y, 1 / (1 + np.exp(-m)))


def test_platt_stays_finite_on_separable_scores():
    m = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    a, b = fit_platt(m, np.array([0, 0, 0, 1, 1, 1]))
    assert math.isfinite(a) and math.isfinite(b) and a > 0


def test_inverted_scores_refuse_to_calibrate():
    m = np.array([3.0, 2.5, 2.0, -2.0, -2.5, -3.0])
    with pytest.raises(ValueError, match="cannot be calibrated"):
        fit_platt(m, np.array([0, 0, 0, 1, 1, 1]))


@pytest.mark.parametrize("n_real,target", [(40, 0.05), (100, 0.05), (7, 0.05), (37, 0.1)])
def test_threshold_meets_target_fpr_and_is_tight(n_real, target):
    p = np.random.default_rng(n_real).random(n_real)
    thr = choose_threshold(p, target)
    k = math.floor(target * n_real)
    flagged = int((p >= thr).sum())
    assert flagged == k and flagged / n_real <= target
    # Tight: the highest real score left unflagged would break the target if the threshold went lower.
    assert np.sort(p)[::-1][k] < thr


def test_band_contains_threshold_and_meets_target_fnr():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(0.35, 0.15, 60), rng.normal(0.6, 0.15, 60)
    thr = choose_threshold(real, 0.05)
    lo = choose_band_low(fake, thr, 0.05)
    assert lo <= thr
    assert (fake < lo).mean() <= 0.05 and (real >= thr).mean() <= 0.05
    # Overlapping classes: a real band; scores in it are INCONCLUSIVE.
    assert lo < thr and cal.decide((lo + thr) / 2, thr, lo) == cal.INCONCLUSIVE


def test_no_band_when_classes_separate():
    real, fake = np.linspace(0.0, 0.2, 40), np.linspace(0.8, 1.0, 40)
    thr = choose_threshold(real, 0.05)
    assert choose_band_low(fake, thr, 0.05) == thr


def test_fit_calibration_block_and_its_measured_rates():
    m, y = _miscalibrated(400, seed=5)
    block = fit_calibration(m, y, target_fpr=0.05)
    v = block["validation"]
    assert v["n_real"] == (y == 0).sum() and v["n_fake"] == (y == 1).sum()
    p = np.array([cal.calibrate(x, block) for x in m])
    assert v["false_alarms"] == int((p[y == 0] >= block["threshold"]).sum())
    assert v["false_alarm_rate"] <= 0.05
    assert v["detected"] == int((p[y == 1] >= block["threshold"]).sum())
    assert v["log_loss_calibrated"] < v["log_loss_raw"]
    assert block["band_low"] <= block["threshold"]
    # The raw threshold maps back onto the calibrated one.
    raw = cal.raw_threshold(block["threshold"], block)
    assert cal.calibrate(cal.logit(raw), block) == pytest.approx(block["threshold"], abs=1e-9)


def test_real_world_reals_raise_the_threshold_and_leave_one_source_out_is_honest():
    m, y = _miscalibrated(400, seed=5)
    plain = fit_calibration(m, y, target_fpr=0.05)
    # Real-world reals score higher than validation reals (noisier footage): one loud source, others quiet.
    rng = np.random.default_rng(1)
    rw = np.concatenate([rng.normal(12, 1, 6), rng.normal(-4, 2, 24)])
    src = np.array(["loud"] * 6 + ["a"] * 8 + ["b"] * 8 + ["c"] * 8)
    block = fit_calibration(m, y, target_fpr=0.05, real_world=(rw, src), real_world_fpr=0.10)
    r = block["real_world"]
    p_rw = np.array([cal.calibrate(x, block) for x in rw])
    assert block["threshold"] > plain["threshold"] and r["raised"]
    assert r["false_alarms_in_sample"] == int((p_rw >= block["threshold"]).sum()) <= 3
    # Left out, the loud source meets a threshold fitted on the quiet ones: all 6 of its clips are flagged.
    assert r["per_source"]["loud"][:2] == [6, 6]
    assert r["false_alarms_leave_one_source_out"] >= 6 > r["false_alarms_in_sample"]
    assert "real-world" in block["rule"]
    # Quiet real-world reals never lower a validation threshold.
    quiet = fit_calibration(m, y, target_fpr=0.05, real_world=(np.full(10, -50.0), np.array(["q"] * 10)))
    assert quiet["threshold"] == plain["threshold"] and not quiet["real_world"]["raised"]


def test_leave_one_source_out_counts_per_source():
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    out = leave_one_source_out(p, np.array(["x", "x", "y", "y", "y"]), floor=0.5, target_fpr=0.0)
    assert out["per_source"]["x"][:2] == [2, 2]  # fitted on y alone: (1 + 0.3) / 2 = 0.65
    assert out["per_source"]["y"][:2] == [0, 3]  # fitted on x alone: (1 + 0.9) / 2 = 0.95
    assert out["false_alarms"] == 2 and out["n"] == 5


def test_decide_and_apply():
    assert cal.decide(0.7, 0.6, 0.4) == cal.FAKE
    assert cal.decide(0.5, 0.6, 0.4) == cal.INCONCLUSIVE
    assert cal.decide(0.3, 0.6, 0.4) == cal.REAL
    assert cal.decide(0.5, 0.6, None) == cal.REAL
    assert cal.calibrate(2.0, {}) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert cal.calibrate(2.0, {"a": 0.5, "b": -1.0, "threshold": 0.5}) == pytest.approx(0.5)
    assert cal.band({"a": 1, "b": 0, "threshold": 0.6, "band_low": 0.6}) is None
    assert cal.sigmoid(-1000.0) == 0.0 and cal.sigmoid(1000.0) == 1.0


def test_report_block_says_what_the_threshold_means():
    none = cal.report_block({}, {}, 0.5, False)
    assert none["calibrated"] is False and "not calibrated" in none["meaning"]
    block = {"method": "platt", "a": 0.5, "b": -1.0, "threshold": 0.7, "band_low": 0.4,
             "validation": {"n_real": 40, "n_fake": 40, "false_alarms": 2, "detected": 25, "data": "GRID val"}}
    dev = {"n_real": 36, "n_fake": 38, "flagged_real": 9, "detected_fake": 12, "threshold": 0.7, "calibrated": True}
    r = cal.report_block(block, {"devset": dev}, 0.7, False)
    assert r["band"] == [0.4, 0.7] and r["validation"]["n_real"] == 40
    assert "2 of 40 real validation clips" in r["meaning"] and "9 of 36 real clips" in r["meaning"]
    # Dev-set figures measured at another threshold are not quoted as this one's.
    stale = cal.report_block(block, {"devset": dev | {"threshold": 0.5}}, 0.7, False)
    assert "dev set" not in stale["meaning"]
    # A hand-set threshold voids the measured rates and the band.
    hand = cal.report_block(block, {"devset": dev}, 0.9, True)
    assert hand["band"] is None and "do not apply" in hand["meaning"]
    # A threshold raised on real-world reals says so, with its held-out-source rate.
    rw = {"n_real": 36, "sources": 12, "target_fpr": 0.1, "raised": True, "false_alarms_leave_one_source_out": 5}
    r = cal.report_block(block | {"real_world": rw}, {}, 0.7, False)
    assert "at most 10% of 36 real-world real clips" in r["meaning"] and "5 of 36 were flagged" in r["meaning"]
    assert "real-world" not in cal.report_block(block, {}, 0.7, False)["meaning"]


def test_frames_note_only_when_the_reading_differs_from_the_calibrations():
    block = {"a": 1.0, "b": 0.0, "threshold": 0.7, "validation": {"frames": 60}}
    assert cal.frames_note(block, 60) is None
    note = cal.frames_note(block, 20)
    assert note is not None and "60 frames" in note and "20 frames" in note and "--frames 60" in note
    assert cal.frames_note({"a": 1.0, "b": 0.0, "threshold": 0.7}, 20) is None  # frames not recorded: nothing to say
    assert cal.frames_note({}, 20) is None  # not calibrated
