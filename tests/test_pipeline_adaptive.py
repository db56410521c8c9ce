"""Adaptive frame count (detector/adaptive.py): the rule on numbers, and the pipeline on a GRID clip.

(Named to sort after test_app.py, whose first test checks that importing the app loaded no model.)
"""

import dataclasses

import pytest

from detector import adaptive
from detector import calibration as cal
from detector.video import sample_indices


@pytest.mark.parametrize("n", [60, 61, 75, 250, 1001, 22500])
def test_first_read_is_every_third_frame_of_the_full_read(n):
    """Why the second read is exactly a plain 60-frame run: the 20 frames are a subset of its 60."""
    assert sample_indices(n, 20) == sample_indices(n, 60)[1::3]


def test_early_verdict_needs_the_distance():
    rule = adaptive.AdaptiveRule(distance=1.0)
    th, lo = 0.7, 0.25
    assert adaptive.early_verdict(cal.sigmoid(cal.logit(th) + 1.01), th, lo, rule) == cal.FAKE
    assert adaptive.early_verdict(cal.sigmoid(cal.logit(th) + 0.99), th, lo, rule) is None
    assert adaptive.early_verdict(cal.sigmoid(cal.logit(lo) - 1.01), th, lo, rule) == cal.REAL
    assert adaptive.early_verdict(cal.sigmoid(cal.logit(lo) - 0.99), th, lo, rule) is None
    assert adaptive.early_verdict(0.5, th, lo, rule) is None  # inside the band: always read on
    assert adaptive.early_verdict(None, th, lo, rule) is None  # no face in 20 frames: more may find one


def test_rule_refuses_a_first_read_that_is_not_a_third():
    with pytest.raises(ValueError, match="3 \\* first"):
        adaptive.AdaptiveRule(first=20, total=50)


def test_applies_only_at_the_total_with_a_calibrated_threshold():
    calib = {"a": 1.0, "b": 0.0, "threshold": 0.7}
    assert adaptive.applies(60, calib, False)
    assert not adaptive.applies(40, calib, False)
    assert not adaptive.applies(60, calib, True)  # a threshold set by hand: the distance means nothing
    assert not adaptive.applies(60, {}, False)


def test_fit_distance_grows_until_early_verdicts_hold():
    th, lo = 0.7, 0.3
    z = cal.logit(th)
    # two clips far above that stay FAKE, one just above that a full read turns REAL
    pairs = [(cal.sigmoid(z + 3), cal.FAKE), (cal.sigmoid(z + 2.5), cal.FAKE), (cal.sigmoid(z + 0.5), cal.REAL)]
    d, stopped, flips = adaptive.fit_distance(pairs, th, lo, max_flip=0.0)
    assert 0.5 < d <= 2.5 and stopped == 2 and flips == 0


@pytest.fixture
def rule(monkeypatch):
    def use(distance):
        monkeypatch.setattr(adaptive, "RULE", dataclasses.replace(adaptive.RULE, distance=distance))
    return use


def test_pipeline_stops_early_when_far(face_clip, rule):
    from detector.pipeline import AnalysisConfig, analyze_video

    rule(0.0)  # any score outside the band decides on the first read
    early = analyze_video(face_clip, AnalysisConfig(adaptive=True))
    plain20 = analyze_video(face_clip, AnalysisConfig(frames=20))
    assert early.sampling["decided_at"] == 20 and early.sampling["adaptive"]["stopped_early"]
    assert early.sampling["indices"] == plain20.sampling["indices"] and early.p_fake == plain20.p_fake
    assert not any("calibrated on clips read at" in w for w in early.warnings)


def test_pipeline_reads_all_frames_when_near(face_clip, rule):
    """Not decided on 20 frames: the report is the plain 60-frame run's, with the first read's time added."""
    from detector.pipeline import AnalysisConfig, analyze_video

    rule(1e6)
    full = analyze_video(face_clip, AnalysisConfig(adaptive=True))
    plain = analyze_video(face_clip, AnalysisConfig())  # the default scores every frame
    assert full.sampling["decided_at"] == 60 and not full.sampling["adaptive"]["stopped_early"]
    assert full.sampling["indices"] == plain.sampling["indices"] and full.p_fake == plain.p_fake
    assert [f.margin for f in full.faces] == [f.margin for f in plain.faces]  # the same features, not close ones
    assert full.timings_s["model_first_read"] > 0 and "adaptive" not in plain.sampling
