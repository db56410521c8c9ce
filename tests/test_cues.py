"""detector.cues: the mouth-detail cue measures what it says, and the verdict adds exactly its contribution."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from detector.cues import Regions, apply_cues, cue_sentence, detail_energy, mouth_detail_deficit
from detector.errors import WeightsError
from detector.model import build_model
from detector.pipeline import AnalysisConfig, Detector, analyze_video


def _textured(t: int = 6, side: int = 112, seed: int = 0) -> np.ndarray:
    """uint8 (t, side, side, 3) RGB: the same fine random texture over the whole crop in every frame."""
    g = np.random.default_rng(seed).integers(60, 200, (side, side), dtype=np.uint8)
    return np.repeat(np.repeat(g[None, ..., None], 3, -1), t, 0)


def _blur_rows(x: np.ndarray, lo: float, hi: float, sigma: float = 2.0) -> np.ndarray:
    """x with rows lo..hi (fractions of the side) Gaussian-blurred in every frame."""
    out, s = x.copy(), x.shape[1]
    a, b = int(lo * s), int(hi * s)
    for f in out:
        f[a:b] = cv2.GaussianBlur(f, (0, 0), sigma)[a:b]
    return out


def test_equal_detail_scores_about_zero_and_a_blurred_mouth_scores_high():
    x = _textured()
    assert abs(mouth_detail_deficit(x)) < 0.1
    mouth_blurred = mouth_detail_deficit(_blur_rows(x, 0.55, 1.0))
    eyes_blurred = mouth_detail_deficit(_blur_rows(x, 0.0, 0.5))
    assert mouth_blurred > 0.7  # the lower face keeps well under half the upper face's Laplacian energy
    assert eyes_blurred < -0.7  # the sign says which half lost detail
    assert mouth_detail_deficit(_blur_rows(x, 0.55, 1.0)) == mouth_blurred  # deterministic


def test_median_over_frames_ignores_a_minority_of_odd_frames():
    x = _textured(t=7)
    odd = _blur_rows(x, 0.55, 1.0)
    mixed = np.concatenate([x[:5], odd[:2]])  # 2 of 7 frames with a blurred mouth: the median frame is clean
    assert abs(mouth_detail_deficit(mixed)) < 0.1


def test_regions_are_disjoint_and_bad_shapes_are_refused():
    up, low = Regions().masks(112)
    assert up.sum() > 500 and low.sum() > 500 and not (up & low).any()
    with pytest.raises(ValueError, match=r"\(T, S, S, 3\)"):
        detail_energy(np.zeros((4, 112, 100, 3), np.uint8))
    e_up, e_low = detail_energy(_textured(t=3))
    assert e_up.shape == e_low.shape == (3,)


def test_panel_shows_the_median_frame_and_both_regions():
    from detector.cues import median_frame
    from detector.render.page import cue_panel

    x = _textured(t=5)
    x[2] = _blur_rows(x[2:3], 0.55, 1.0)[0]  # frame 2 alone has a blurred mouth: not the median reading
    assert median_frame(x) != 2
    p = cue_panel(x)
    assert p.shape == (224, 448, 3) and p.dtype == np.uint8
    # The cue's own reading names that frame, and a panel drawn from it is the same picture (no second pass).
    _, details = apply_cues(0.0, x, {"mouth_detail_deficit": {"weight": 1.0, "centre": 0.0}})
    assert details["mouth_detail_deficit"]["frame"] == median_frame(x)
    assert np.array_equal(cue_panel(x, frame=details["mouth_detail_deficit"]["frame"]), p)
    assert not np.array_equal(cue_panel(x, frame=2), p)
    cyan = (p[..., 0] == 0) & (p[..., 1] == 220) & (p[..., 2] == 255)
    orange = (p[..., 0] == 255) & (p[..., 1] == 150) & (p[..., 2] == 0)
    assert cyan[:112].any() and not cyan[130:].any()  # the upper region's outline in the top half only
    assert orange[120:].any() and not orange[:100].any()


def test_apply_cues_adds_weight_times_distance_from_centre():
    x = _blur_rows(_textured(), 0.55, 1.0)
    value = mouth_detail_deficit(x)
    assert apply_cues(-1.5, x, {}) == (-1.5, {})
    assert apply_cues(-1.5, x, None) == (-1.5, {})
    block = {"mouth_detail_deficit": {"weight": 2.0, "centre": 0.1, "real_p90": 0.33, "reference": "36 clips"}}
    m, details = apply_cues(-1.5, x, block)
    c = details["mouth_detail_deficit"]
    assert m == pytest.approx(-1.5 + 2.0 * (value - 0.1))
    assert c["contribution"] == pytest.approx(2.0 * (value - 0.1), abs=1e-4)
    assert c["value"] == pytest.approx(value, abs=1e-4)
    assert "of the upper face's fine detail" in cue_sentence("mouth_detail_deficit", c)
    assert f"{c['contribution']:+.2f} to the fake margin" in cue_sentence("mouth_detail_deficit", c)
    with pytest.raises(WeightsError, match="unknown cue"):
        apply_cues(0.0, x, {"eye_blink_rate": {"weight": 1.0, "centre": 0.0}})
    with pytest.raises(WeightsError, match="needs a number 'weight' and a number 'centre'"):
        apply_cues(0.0, x, {"mouth_detail_deficit": {"weight": 1.0}})


def test_pipeline_verdict_rests_on_model_margin_plus_cue(face_clip, tiny_spec):
    spec = dataclasses.replace(tiny_spec, weights_sha256="c" * 64, cues={
        "mouth_detail_deficit": {"weight": 3.0, "centre": 0.0, "real_p90": 0.3, "reference": "test clips"}})
    det = Detector(build_model(spec), spec, precision="fp32")
    r = analyze_video(face_clip, AnalysisConfig(frames=8), detector=det)
    f = r.faces[0]
    c = f.cues["mouth_detail_deficit"]
    assert c["value"] == pytest.approx(mouth_detail_deficit(f.crops), abs=1e-4)
    assert f.margin == pytest.approx(f.model_margin + 3.0 * mouth_detail_deficit(f.crops))
    d = json.loads(r.to_json())["faces"][0]
    assert d["cues"]["mouth_detail_deficit"]["contribution"] == c["contribution"]
    assert d["model_logit_margin"] == pytest.approx(f.model_margin, abs=1e-5)
    assert "mouth detail" in r.summary()
    from detector.render import views
    from detector.render.page import render_html

    assert f"the network's fake margin {f.model_margin:+.2f}" in views.timings_markdown(r)
    assert "of the upper face&#x27;s fine detail" in render_html(r)
    assert "`mouth_detail_deficit` × 3" in views.model_card_markdown(spec)
    # the per-frame curves are the network's own p: their threshold line is where this face's verdict turns
    from detector.calibration import logit, sigmoid
    from detector.render.page import raw_threshold

    raw = raw_threshold(r)
    assert raw_threshold(r, f) == pytest.approx(sigmoid(logit(raw) - c["contribution"]))
    assert (sigmoid(f.margin) >= raw) == (sigmoid(f.model_margin) >= raw_threshold(r, f))
    [(panel, caption)] = views.cue_gallery(r)
    assert panel.shape == (224, 448, 3) and "mouth detail" in caption and len(views.face_gallery(r)) == 8
    assert "what the mouth-detail cue compares" in render_html(r)
    plain = dataclasses.replace(spec, cues={})  # same network, no cue: the model's own margin
    r0 = analyze_video(face_clip, AnalysisConfig(frames=8), detector=Detector(det.model, plain, precision="fp32"))
    assert r0.faces[0].cues is None and r0.faces[0].margin == pytest.approx(f.model_margin, abs=1e-5)
    assert "cues" not in json.loads(r0.to_json())["faces"][0]
    assert raw_threshold(r0, r0.faces[0]) == raw_threshold(r0)
