"""Adaptive frame count: read a third of the frames first, stop there when the verdict is already clear.

A clip read at `AdaptiveRule.total` frames (the product's default, 60) is decoded once, and its first read
(`first` = total / 3 = 20 frames: the middle one of every three, with face tracks found on those frames alone,
as a read of 20 frames would) is scored first. If the calibrated score of those 20 lies at least `distance`
(in calibrated-logit units, logit(p) = a * margin + b) above the threshold, or as far below the INCONCLUSIVE
band's lower edge, the 20-frame verdict stands; otherwise the remaining crops go through the model (the first
read's crops are not run again: a crop's trunk output does not depend on the batch around it) and the report is
exactly a plain 60-frame run's (tests/test_pipeline_adaptive.py). So an undecided clip costs about what a plain
run costs, and a decided one a third of its model pass (pipeline._analyze_adaptive). The first read's frames
are sample_indices(N, 20) whenever float rounding lets every third of sample_indices(N, 60) be exactly that
(94 % of frame counts; otherwise one of them lies a frame away).

Why a distance in logit units: how far a clip's score moves between 20 and 60 frames of it is what the rule
must cover, and on a logistic scale that spread is roughly constant away from the extremes.

The rule's constants live in `RULE` (one frozen config). `fit_distance` chooses `distance` on validation
clips' paired (20-frame, 60-frame) scores: the smallest distance at which at most `max_flip` of the clips the
rule would stop early change verdict at 60 frames. See `RULE.fitted_on` for what it was fitted and measured on.
Pure functions on floats: no torch, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector import calibration as cal


@dataclass(frozen=True)
class AdaptiveRule:
    """first: frames read first; total: frames of a full read (3 * first); distance: calibrated-logit distance
    from the threshold (above) or the band's lower edge (below) at which the first read's verdict stands.
    fitted_on / error: where the distance came from and the measured rate of early verdicts that a full read
    changes (plain text, copied into every report that uses the rule)."""

    first: int = 20
    total: int = 60
    distance: float = 0.0
    fitted_on: str = ("fitted with fit_distance (at most 1 % of early stops changed) on the 357 identity-held-out "
                      "validation clips of data/val_all for the default's verdict rule of issue 38 (2026-12-07, "
                      "benchmarks/bench_adaptive.py --clips data/val_all --fit); AMD EPYC Zen 3, fp32")
    error: str = ("on those clips 94 of 357 (26 %) stop at 20 frames and a full read changes 0 of the 94 (95 % upper "
                  "bound about 3 %); re-measured with the one-decode first read (issue 41): the same 94 and 0, the "
                  "model pass over all 357 clips 0.92x a plain run's. On the 74-clip dev set (read once with it, as "
                  "the candidate default, 2026-12-08): 6 stop at 20 frames and a full read changes 3 of the 6 (4 % of "
                  "all clips; a fake FAKE at 20 frames is INCONCLUSIVE at 60, two reals REAL at 20 are INCONCLUSIVE "
                  "at 60); ROC-AUC 0.8567 either way. So it stays opt-in")

    def __post_init__(self) -> None:
        if self.total != 3 * self.first or self.first < 1:
            raise ValueError(f"total must be 3 * first (the first read is every third frame), not {self}")
        if self.distance < 0:
            raise ValueError(f"distance must be >= 0, not {self.distance}")


RULE = AdaptiveRule()


def applies(frames: int, calibration: dict | None, threshold_overridden: bool,
            rule: AdaptiveRule | None = None) -> bool:
    """Whether a read of `frames` frames may stop early: only at the rule's total, with a calibrated threshold
    (the distance is in its units) that was not set by hand. rule: None is `RULE` (read at call time)."""
    rule = rule or RULE
    return frames == rule.total and cal.is_calibrated(calibration) and not threshold_overridden


def early_verdict(p_fake: float | None, threshold: float, band_low: float | None,
                  rule: AdaptiveRule | None = None) -> str | None:
    """The first read's verdict if it is far enough from the threshold and band, else None (read them all).

    p_fake: calibrated p of the clip's most suspicious face after `rule.first` frames; None (no face found in
    them) never stops early: more frames may find one."""
    rule = rule or RULE
    if p_fake is None:
        return None
    z = cal.logit(p_fake)
    if z >= cal.logit(threshold) + rule.distance:
        return cal.FAKE
    if z <= cal.logit(band_low if band_low is not None else threshold) - rule.distance:
        return cal.REAL
    return None


def report_block(p_first: float | None, verdict: str | None, rule: AdaptiveRule | None = None) -> dict:
    """What a report says about the rule: the first read's calibrated p, whether it decided, and the rule."""
    rule = rule or RULE
    return {"first": rule.first, "total": rule.total,
            "p_fake_first": None if p_first is None else round(float(p_first), 4),
            "stopped_early": verdict is not None, "distance": rule.distance,
            "rule": f"stop after {rule.first} of {rule.total} frames when the calibrated logit of p(fake) lies at "
                    f"least {rule.distance:g} above the threshold's or below the INCONCLUSIVE band's lower edge's",
            "fitted_on": rule.fitted_on, "error": rule.error}


def fit_distance(pairs: list[tuple[float, str]], threshold: float, band_low: float | None,
                 max_flip: float = 0.01, step: float = 0.05) -> tuple[float, int, int]:
    """The smallest distance (multiple of `step`) at which at most `max_flip` of the clips stopped early have a
    full-read verdict other than the early one.

    pairs: per validation clip, (calibrated p after `first` frames, verdict after `total` frames).
    Returns (distance, clips stopped early, of which changed)."""
    d = 0.0
    while True:
        rule = AdaptiveRule(distance=d)
        early = [(early_verdict(p, threshold, band_low, rule), v) for p, v in pairs]
        stopped = [(e, v) for e, v in early if e is not None]
        flips = sum(e != v for e, v in stopped)
        if flips <= max_flip * max(1, len(stopped)) or not stopped:
            return round(d, 4), len(stopped), flips
        d += step
