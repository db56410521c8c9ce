"""Calibrated clip scores and what a verdict means (inference side; fitting lives in detector/training/calibrate.py).

The model's clip score is the fake-minus-real logit margin `m` of the most suspicious face track (the
raw p_fake is sigmoid(m)). A sidecar's `calibration` block maps it to a calibrated probability

    p_fake = sigmoid(a * m + b)            (Platt scaling; a temperature T is a = 1/T, b = 0)

and carries a threshold and an INCONCLUSIVE band, both in calibrated-p space, chosen on validation clips:

    p >= threshold           -> FAKE          (threshold: at most target_fpr of validation real clips reach it)
    band_low <= p < threshold -> INCONCLUSIVE  (band_low: at most target_fnr of validation fakes fall below it)
    p < band_low              -> REAL

so each firm verdict is wrong on at most ~5% of the validation clips of the class it rules out, and the
scores between the two edges are the ones where the validation data says the model cannot tell. When
the validation classes separate well, band_low == threshold and there is no band.

Pure functions on floats and dicts: no torch, no model, no files.
"""

from __future__ import annotations

import math

FAKE, REAL, INCONCLUSIVE = "FAKE", "REAL", "INCONCLUSIVE"


def sigmoid(x: float) -> float:
    """Logistic function, stable for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def logit(p: float, eps: float = 1e-12) -> float:
    p = min(max(float(p), eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def is_calibrated(block: dict | None) -> bool:
    return bool(block) and "a" in block and "b" in block and "threshold" in block


def calibrate(margin: float, block: dict | None) -> float:
    """Calibrated p_fake of a fake-real logit margin; sigmoid(margin) (the raw p_fake) without calibration."""
    if not is_calibrated(block):
        return sigmoid(margin)
    return sigmoid(float(block["a"]) * margin + float(block["b"]))


def band(block: dict | None) -> tuple[float, float] | None:
    """(band_low, threshold) of a calibration block, or None when uncalibrated or the band is empty."""
    if not is_calibrated(block):
        return None
    lo, hi = float(block.get("band_low", block["threshold"])), float(block["threshold"])
    return (lo, hi) if lo < hi else None


def decide(p: float, threshold: float, band_low: float | None = None) -> str:
    """FAKE at or above threshold, INCONCLUSIVE in [band_low, threshold), REAL below."""
    if p >= threshold:
        return FAKE
    if band_low is not None and p >= band_low:
        return INCONCLUSIVE
    return REAL


def frames_note(block: dict | None, frames: int) -> str | None:
    """A warning when a clip is read at another frame count than the calibration's validation clips were:
    more or fewer frames change how much a clip's score varies with the frames read (20 frames: the dev
    set's AUC moves by +-0.03 between samplings), so the threshold's measured rates only approximately hold."""
    fitted = (block or {}).get("validation", {}).get("frames") if is_calibrated(block) else None
    if not fitted or int(fitted) == int(frames):
        return None
    return (f"the threshold was calibrated on clips read at {int(fitted)} frames; at {int(frames)} frames its "
            f"measured false-alarm and detection rates hold only approximately (use --frames {int(fitted)})")


def raw_threshold(p_calibrated: float, block: dict) -> float:
    """The raw p_fake (sigmoid of the margin) that calibrates to `p_calibrated` (the map is increasing)."""
    return sigmoid((logit(p_calibrated) - float(block["b"])) / float(block["a"]))


def report_block(spec_calibration: dict | None, metrics: dict | None, threshold: float,
                 threshold_overridden: bool) -> dict:
    """The `calibration` block of a report: what the threshold is, how it was chosen, what it means.

    spec_calibration: the sidecar's `calibration` ({} when none); metrics: the sidecar's `metrics` (for
    `metrics.devset`); threshold: the one the verdict used.
    """
    cal = spec_calibration or {}
    dev = (metrics or {}).get("devset")
    out: dict = {"calibrated": is_calibrated(cal), "threshold": threshold,
                 "threshold_overridden": bool(threshold_overridden)}
    if not is_calibrated(cal):
        out.update({"status": "not calibrated", "p_fake": "raw softmax probability of the model",
                    "meaning": f"not calibrated: threshold {threshold:.2f} on the raw model probability; how "
                               "often it flags real clips has not been measured"
                               + _dev_clause(dev, threshold, False)})
        return out
    val = cal.get("validation", {})
    out.update({"status": "calibrated", "method": cal.get("method"), "a": cal["a"], "b": cal["b"],
                "band": None if threshold_overridden else [cal.get("band_low", cal["threshold"]), cal["threshold"]],
                "threshold_raw": raw_threshold(threshold, cal), "target_fpr": cal.get("target_fpr"),
                "rule": cal.get("rule"), "validation": val})
    rw = cal.get("real_world") or {}
    if "false_alarms_leave_one_source_out" in rw:  # the plain verdict sentence (detector/plain.py) reads it
        out["real_world"] = {k: rw.get(k) for k in ("n_real", "sources", "target_fpr", "raised",
                                                    "false_alarms_leave_one_source_out", "data")}
    if dev:
        out["devset"] = {k: dev.get(k) for k in ("n_real", "n_fake", "fpr", "tpr", "flagged_real",
                                                 "detected_fake", "roc_auc", "threshold", "data") if k in dev}
    if threshold_overridden:
        out["meaning"] = (f"threshold set by hand to {threshold:.2f}: the calibration's measured rates "
                          f"(at {cal['threshold']:.2f}) do not apply")
    else:
        out["meaning"] = meaning(cal, dev, threshold)
    return out


def meaning(cal: dict, dev: dict | None, threshold: float) -> str:
    """One plain sentence: how often this threshold flags real clips (and catches fakes), and on what data."""
    v = cal.get("validation", {})
    s = (f"at this threshold, {v.get('false_alarms', '?')} of {v.get('n_real', '?')} real validation clips "
         f"are flagged FAKE and {v.get('detected', '?')} of {v.get('n_fake', '?')} validation fakes are caught "
         f"({v.get('data', 'validation data')})")
    return s + _real_world_clause(cal.get("real_world")) + _dev_clause(dev, threshold, True)


def _real_world_clause(rw: dict | None) -> str:
    """How the threshold was raised on real-world real clips, and its honest (held-out source) rate."""
    if not rw or "false_alarms_leave_one_source_out" not in rw:
        return ""
    return (f"; it was {'raised' if rw.get('raised') else 'checked'} so that at most {rw['target_fpr']:.0%} of "
            f"{rw['n_real']} real-world real clips reach it; fitted with each of their {rw['sources']} sources left "
            f"out, {rw['false_alarms_leave_one_source_out']} of {rw['n_real']} were flagged (what to expect on "
            "footage from a source it has not seen)")


def _dev_clause(dev: dict | None, threshold: float, calibrated: bool) -> str:
    """The dev-set half of the sentence, only when metrics.devset was measured at this very threshold."""
    if not dev or "flagged_real" not in dev or bool(dev.get("calibrated")) != calibrated \
            or abs(float(dev.get("threshold", -1)) - threshold) > 1e-9:
        return ""
    return (f"; on the public dev set, {dev['flagged_real']} of {dev['n_real']} real clips are flagged and "
            f"{dev.get('detected_fake', '?')} of {dev.get('n_fake', '?')} fakes caught")
