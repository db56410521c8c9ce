"""explain/: Grad-CAM maps, temporal importance, overlays, report wiring and HTML. Small models, offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from detector.model import build_model, spec_for
from explain.gradcam import gradcam
from explain.temporal import temporal_importance


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model(spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=32)).eval()


def _crops(t: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)


class OnlyFrameK(nn.Module):
    """A tiny clip model whose decision reads frame k only (same methods as the real one)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.backbone = nn.Module()
        self.backbone.layer4 = nn.Conv2d(3, 8, 5, stride=4)
        self.head = nn.Linear(8, 2)

    def forward_features(self, clip):  # (N, T, 3, H, W) -> (N, T, 8)
        n, t = clip.shape[:2]
        a = torch.relu(self.backbone.layer4(clip.flatten(0, 1).float() / 255))
        return a.mean(dim=(2, 3)).view(n, t, -1)

    def forward_head(self, f):
        return self.head(f[:, self.k].float())

    def frame_logits(self, f):
        return self.head(f.float())

    def forward(self, clip):
        return self.forward_head(self.forward_features(clip))


@pytest.mark.parametrize("method", ["fast", "library"])
def test_gradcam_maps_shape_range(small_model, method):
    crops = _crops(4)
    r = gradcam(small_model, crops, "fake", method=method)
    assert r.maps.shape == r.raw.shape == (4, 64, 64)
    assert r.maps.dtype == np.float32 and np.isfinite(r.maps).all() and np.isfinite(r.raw).all()
    assert r.maps.min() >= 0 and r.maps.max() <= 1
    assert (r.raw >= 0).all()
    assert not small_model.training


def test_fast_matches_library(small_model):
    crops = _crops(3, seed=1)
    a = gradcam(small_model, crops, "real", method="fast")
    b = gradcam(small_model, crops, "real", method="library")
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-3, atol=1e-5 * max(1.0, float(a.raw.max())))
    np.testing.assert_allclose(a.maps, b.maps, atol=5e-3)
    assert all(p.grad is None for p in small_model.parameters())  # the library's .grad is dropped


def test_margin_objective_is_the_difference_of_the_two_logit_maps(small_model):
    """Grad-CAM is linear in the gradient before its ReLU: margin weights = fake weights - real weights,
    and the fast path and the library agree on it."""
    import torch

    from explain.gradcam import _fast, score

    x = torch.from_numpy(_crops(3, seed=4)).permute(0, 3, 1, 2).float()
    with pytest.raises(ValueError, match="objective"):
        score(torch.zeros(2), 1, "probability")
    store = {}
    h = small_model.backbone.layer4.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            xg = x.clone()
            logits = small_model(xg.unsqueeze(0))
            a = store["a"]
            g_fake, = torch.autograd.grad(logits[0, 1], a, retain_graph=True)
            g_real, = torch.autograd.grad(logits[0, 0], a)
    finally:
        h.remove()
    want = torch.relu(((g_fake - g_real).mean((2, 3), keepdim=True) * a).sum(1)).detach().numpy()
    (got,), _ = _fast(small_model, x, 1, objective="margin")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    a_m = gradcam(small_model, _crops(3, seed=4), "fake", method="fast", objective="margin")
    b_m = gradcam(small_model, _crops(3, seed=4), "fake", method="library", objective="margin")
    np.testing.assert_allclose(a_m.raw, b_m.raw, rtol=1e-3, atol=1e-5 * max(1.0, float(a_m.raw.max())))
    real_m = gradcam(small_model, _crops(3, seed=4), "real", method="fast", objective="margin")
    assert not np.allclose(real_m.raw, a_m.raw)  # the real margin is the fake one's negative: another map


@pytest.mark.parametrize("method", ["fast", "library"])
def test_hooks_released(small_model, method):
    layer = small_model.backbone.layer4
    before = (len(layer._forward_hooks), len(layer._backward_hooks), len(layer._forward_pre_hooks))
    for _ in range(3):
        gradcam(small_model, _crops(2, 32), "fake", method=method)
    assert (len(layer._forward_hooks), len(layer._backward_hooks), len(layer._forward_pre_hooks)) == before


def test_only_frame_k_matters():
    torch.manual_seed(0)
    k, t = 2, 5
    model = OnlyFrameK(k).eval()
    crops = _crops(t, 64, seed=3)
    feats = model.forward_features(torch.from_numpy(crops).permute(0, 3, 1, 2)[None])
    tem = temporal_importance(model, feats, "fake")
    norm = tem.methods["grad_norm"]
    assert np.allclose(np.delete(norm, k), 0) and norm[k] > 0
    for name in ("integrated_gradients", "occlusion", "grad_x_input"):  # signed: zero where nothing is read
        assert np.allclose(np.delete(tem.methods[name], k), 0, atol=1e-6)
    assert tem.frame_p_fake.shape == (t,) and ((tem.frame_p_fake >= 0) & (tem.frame_p_fake <= 1)).all()
    cam = gradcam(model, crops, "fake")
    assert np.allclose(np.delete(cam.peaks, k), 0)  # raw maps keep which frame mattered


def test_temporal_on_lstm_and_inference_tensors(small_model):
    from detector.pipeline import Detector

    det = Detector(small_model, small_model.spec, precision="fp32")
    feats = det.features(_crops(6))  # an inference tensor, as the pipeline caches it
    tem = temporal_importance(det.model, feats, "fake")
    assert all(v.shape == (6,) and v.dtype == np.float32 for v in tem.methods.values())
    assert tem.method == "integrated_gradients" and tem.importance is tem.methods[tem.method]
    assert (tem.methods["grad_norm"] >= 0).all()
    assert abs(tem.p_fake - det.p_fake(feats)) < 1e-5
    assert all(tem.importance[t] > 0 for t in tem.top) and len(tem.top) <= 3
    assert not det.model.training


def test_image_t1(small_model):
    crops = _crops(1)
    feats = small_model.forward_features(torch.from_numpy(crops).permute(0, 3, 1, 2)[None]).detach()
    tem = temporal_importance(small_model, feats)
    # One frame: the mean baseline is the frame itself, so there is nothing to attribute between frames.
    assert tem.importance.tolist() == [0.0] and tem.top == [] and tem.methods["grad_norm"].shape == (1,)
    r = gradcam(small_model, crops)
    assert r.maps.shape == (1, 64, 64) and np.isfinite(r.maps).all()


def test_overlay_frame_window():
    from explain.overlay import overlay_crops, overlay_frame

    frame = np.zeros((100, 160, 3), np.uint8)
    m = np.ones((112, 112), np.float32)
    out = overlay_frame(frame, m, [100, 40, 150, 90], margin=0.3)  # window runs past the right/bottom edge
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert out[:, :80].sum() == 0 and out[60, 130].sum() > 0
    ov = overlay_crops(np.zeros((2, 112, 112, 3), np.uint8), np.stack([m, m * 0]))
    assert ov[0, 50, 50, 0] > ov[0, 50, 50, 2]  # RGB order: JET high = red
    assert ov[1, 50, 50, 2] > ov[1, 50, 50, 0]  # low = blue


def _synthetic_report(model, t: int = 3):
    from detector.pipeline import Detector
    from detector.report import FaceResult, Report

    det = Detector(model, model.spec, precision="fp32")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (t + 1, 120, 160, 3), dtype=np.uint8)
    indices = [0, 10, 20, 30][: t + 1]
    crops = _crops(t, 112)
    f = det.features(crops)
    face = FaceResult(0, det.p_fake(f), indices[1:], [[40, 30, 100, 90]] * t, [False] * t, crops)
    report = Report(file={"name": "<script>alert(1)</script>.mp4", "bytes": 1, "sha256": "ab" * 32},
                    video={"width": 160, "height": 120, "fps": 25.0, "frame_count": 31, "duration_s": 1.2,
                           "codec": "mp4v", "rotation": 0},
                    model=det.model_info(), verdict="FAKE", p_fake=face.p_fake, threshold=0.5, faces=[face],
                    timings_s={"model": 0.1},
                    sampling={"requested": t + 1, "used": t + 1, "indices": indices},
                    warnings=["a <b>warning</b> & more"], software={"deepfake_forensics": "test"},
                    frames=frames)
    return report, det, [f]


def test_explain_report_and_export(small_model, tmp_path):
    from detector.render import render_html, write_explanations
    from explain import explain_report

    report, det, feats = _synthetic_report(small_model)
    explain_report(report, det, feats, target="fake")
    ex = report.faces[0].explanation
    assert ex["cam"].shape == (3, 112, 112) and ex["crop_overlays"].shape == (3, 112, 112, 3)
    assert ex["frame_overlays"].shape == (3, 120, 160, 3) and ex["frame_overlays"].dtype == np.uint8
    d = json.loads(json.dumps(report.to_dict()))
    pf = d["explanations"]["per_face"][0]
    assert len(pf["temporal_importance"]) == len(pf["frame_p_fake"]) == len(pf["cam_peak"]) == 3
    assert pf["temporal_method"] == "integrated_gradients" and pf["temporal_importance"] == pf["integrated_gradients"]
    assert all(len(pf[k]) == 3 for k in ("occlusion", "grad_x_input", "grad_norm"))
    assert set(pf["top_frames"]) <= {10, 20, 30}
    assert abs(pf["completeness"]["sum_minus_delta"]) < 1e-2
    assert "SENSITIVITY" in d["explanations"]["method"]["temporal"]["methods"]["grad_norm"]
    assert "explain/face0_f00010_crop.png" in pf["overlays"]
    assert "explain/face0_f00030_frame.png" in pf["overlays"]
    written = write_explanations(report, tmp_path)
    assert {str(p.relative_to(tmp_path)) for p in written} == set(pf["overlays"]) | {"report.html"}
    page = (tmp_path / "report.html").read_text()
    assert "FAKE" in page and "<svg" in page and "data:image/jpeg;base64," in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>warning</b>" not in page
    assert render_html(report) == page


def test_render_html_without_explanations(small_model):
    from detector.render import render_html

    report, _, _ = _synthetic_report(small_model, t=2)
    page = render_html(report)
    assert "FAKE" in page and "Grad-CAM overlays" not in page and "<script>" not in page


def test_html_signed_bars_and_faithfulness_sentence():
    from detector.render.page import faithfulness_sentence, svg_bars, top_positions

    svg = svg_bars([0.5, -0.25, 0.0, 1.0], [0, 10, 20, 30], top=[3, 0])
    assert svg.count('fill="#d62728"') == 2 and svg.count('fill="#1f77b4"') == 2  # red above, blue below
    assert "#1</text>" in svg and "#2</text>" in svg and "#3</text>" not in svg
    assert top_positions({"temporal_importance": [0.5, -0.25, 0.0, 1.0]}) == [3, 0]
    assert top_positions({"top_frames": [2], "temporal_importance": [0.5, -0.25, 0.0, 1.0]}) == [2]
    assert "not measured" in faithfulness_sentence({})
    ex = {"method": {"temporal": {"method": "occlusion"}},
          "faithfulness": {"measured_on": "x", "temporal": {"integrated_gradients": {"k3": {}}}}}
    assert "not for occlusion" in faithfulness_sentence(ex)
    k3 = {"top_drop": 0.4, "random_drop": 0.1}
    ex = {"method": {"temporal": {"method": "integrated_gradients"}},
          "faithfulness": {"measured_on": "x", "temporal": {"integrated_gradients": {"k3": k3}},
                           "spatial": {"top_drop": -1.5, "random_blobs_drop": 0.1},
                           "spatial_texture": {"top_drop": 0.7, "random_blobs_drop": 0.2}}}
    text = faithfulness_sentence(ex)
    assert "-0.40" in text and "+1.50" in text and "texture Grad-CAM pixels" in text and "-0.70" in text
    assert "top 20% appearance Grad-CAM pixels" in text and "the 3 frames" in text
    # where each map states its own test (HTML report, app chart), the sentence leaves the maps out
    short = faithfulness_sentence(ex, spatial=False)
    assert "-0.40" in short and "Grad-CAM" not in short and text.startswith(short[:-1])
    # Measured at 60 frames: the headline k is 15 % of them (9), and the sentence names it and T.
    k9 = {"top_drop": 0.2, "random_drop": 0.0}
    ex["faithfulness"] |= {"headline_k": 9, "method": {"frames": 60},
                           "temporal": {"integrated_gradients": {"k3": k3, "k9": k9}}}
    text = faithfulness_sentence(ex)
    assert "the 9 frames of 60" in text and "-0.20" in text and "-0.40" not in text


def test_map_check_says_whether_each_map_passed_its_deletion_test():
    from detector.render.page import map_check

    assert map_check(None).startswith("Not checked") and map_check({}, "texture").startswith("Not checked")
    f = {"measured_on": "38 dev fakes",
         "spatial": {"top_drop": -1.08, "random_blobs_drop": 0.55, "clips_top_beats_blobs": 0.08},
         "spatial_texture": {"top_drop": 0.86, "random_blobs_drop": 0.18, "clips_top_beats_blobs": 0.84}}
    tex, app = map_check(f, "texture"), map_check(f, "appearance")
    assert "38 dev fakes" in tex and "lowered it by 0.86, against lowered it by 0.18" in tex
    assert "84% of clips" in tex and tex.endswith("it points at what the model uses.")
    assert "raised it by 1.08, against lowered it by 0.55" in app and "does NOT point" in app
    # a larger mean drop on a minority of clips (a few large drops) does not pass either
    f["spatial"] = {"top_drop": 0.9, "random_blobs_drop": 0.2, "clips_top_beats_blobs": 0.4}
    assert "does NOT point" in map_check(f, "appearance")
    # the isolated test (the fill seen by the map's own stream only) must pass too, where recorded
    f["spatial_texture"]["isolated"] = {"top_drop": 0.95, "random_blobs_drop": 0.40, "clips_top_beats_blobs": 0.95}
    tex = map_check(f, "texture")
    assert "seen only by the stream this map explains: lowered it by 0.95" in tex and "points at what" in tex
    f["spatial_texture"]["isolated"] = {"top_drop": 0.1, "random_blobs_drop": 0.4, "clips_top_beats_blobs": 0.3}
    assert "does NOT point" in map_check(f, "texture")


def test_html_report_shows_top_frames(small_model):
    from detector.render import render_html
    from explain import explain_report

    report, det, feats = _synthetic_report(small_model)
    explain_report(report, det, feats, target="fake")
    page = render_html(report)
    pf = report.explanations["per_face"][0]
    assert "Which frames moved the verdict (integrated_gradients, signed)" in page
    assert "Faithfulness not measured" in page or "Faithfulness" in page
    if pf["top_frames"]:
        assert "The frames that moved the verdict most" in page
        assert f"#1 frame {pf['top_frames'][0]}" in page


@pytest.fixture(scope="module")
def stream_model():
    import dataclasses

    torch.manual_seed(0)
    spec = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16)
    return build_model(dataclasses.replace(spec, residual_width=4, residual_pairs="next")).eval()


def _partners(crops: np.ndarray, seed: int = 5) -> np.ndarray:
    """Each crop's 'successor': the same picture with fresh noise (what a camera's next frame looks like)."""
    noise = np.random.default_rng(seed).normal(0, 6, crops.shape)
    return np.clip(crops.astype(float) + noise, 0, 255).astype(np.uint8)


def test_texture_gradcam_on_the_residual_stream(stream_model):
    from explain.gradcam import gradcams, target_layer

    crops = _crops(4, seed=2)
    partners = _partners(crops)
    partners[1] = crops[1]  # a duplicated frame: the stream ignores the pair, so its map is 0
    both = gradcams(stream_model, crops, "fake", partners=partners, layers=("appearance", "texture"))
    tex, app = both["texture"], both["appearance"]
    assert tex.maps.shape == tex.raw.shape == (4, 64, 64) and (tex.raw >= 0).all()
    assert not tex.raw[1].any() and tex.raw[[0, 2, 3]].any()
    # one pass for both layers gives the single-layer results, and the logit the model reports
    alone = gradcam(stream_model, crops, "fake", partners=partners)
    np.testing.assert_allclose(app.raw, alone.raw, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        logits = stream_model(torch.from_numpy(crops).permute(0, 3, 1, 2)[None],
                              torch.from_numpy(partners).permute(0, 3, 1, 2)[None])[0].numpy()
    np.testing.assert_allclose(tex.logits, logits, rtol=1e-4, atol=1e-5)
    lib = gradcam(stream_model, crops, "fake", method="library", partners=partners, layer="texture")
    np.testing.assert_allclose(tex.raw, lib.raw, rtol=1e-3, atol=1e-5 * max(1.0, float(tex.raw.max())))
    layer = target_layer(stream_model, "texture")
    assert isinstance(layer, nn.ReLU) and not layer._forward_hooks  # hooks released
    # no successors (a still image, or a caller without them): no pair, a map of 0, the model still runs
    none = gradcam(stream_model, crops, "fake", layer="texture")
    assert not none.raw.any() and np.isfinite(none.logits).all()


def test_html_shows_the_texture_map_first_with_each_maps_check(stream_model):
    from detector.render import render_html
    from explain import explain_report

    report, det, feats = _synthetic_report(stream_model)
    explain_report(report, det, feats, target="fake")
    page = render_html(report)
    tex, app = page.index("Grad-CAM on the grain between"), page.index("Grad-CAM overlays (appearance")
    assert tex < app and page.count("Not checked: no deletion test of this map") == 2
    top = report.faces[0].explanation["top_frames"]
    assert top  # some frame pushed towards FAKE, so the figures are there to check
    assert page.count("(appearance map; beside it the grain map)") == len(top)
    assert all(f'alt="grain map, frame {report.faces[0].frame_indices[t]}"' in page for t in top)
    report.explanations["faithfulness"] = {"measured_on": "dev fakes", "spatial_texture": {
        "top_drop": 0.86, "random_blobs_drop": 0.18, "clips_top_beats_blobs": 0.84}}
    assert "it points at what the model uses" in render_html(report)


def test_texture_gradcam_needs_a_stream(small_model):
    with pytest.raises(ValueError, match="residual-pair stream"):
        gradcam(small_model, _crops(2), layer="texture")
    with pytest.raises(ValueError, match="layer must be one of"):
        gradcam(small_model, _crops(2), layer="pixels")


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_cached_gradcam_is_the_fast_one_from_the_analysis_pass(stream_model, engine):
    """Grad-CAM from the analysis pass's activations and the feature gradient (no second trunk pass) gives
    the maps of the full forward + backward pass, duplicate pair included, on either engine."""
    from detector.runtime import Detector
    from explain.gradcam import gradcams

    crops = _crops(4, seed=2)  # as in test_texture_gradcam_on_the_residual_stream: texture maps that are not 0
    partners = _partners(crops)
    partners[1] = crops[1]  # a duplicated frame: the stream ignores the pair, so its map is 0
    det = Detector(stream_model, stream_model.spec, "fp32", engine)
    feats, maps = det.features_and_maps(crops, partners)
    layers = ("appearance", "texture")
    for target in ("fake", "real"):
        fast = gradcams(stream_model, crops, target, "fast", partners, layers)
        cached = gradcams(stream_model, crops, target, "cached", partners, layers, features=feats, maps=maps)
        for name in layers:
            a, b = fast[name], cached[name]
            np.testing.assert_allclose(b.raw, a.raw, rtol=1e-3, atol=1e-4 * max(1.0, float(a.raw.max())))
            np.testing.assert_allclose(b.maps, a.maps, atol=5e-3)
            np.testing.assert_allclose(b.logits, a.logits, rtol=1e-4, atol=1e-5)
        assert not cached["texture"].raw[1].any()
        if target == "fake":  # the comparison saw maps, not only zeros
            assert cached["texture"].raw[[0, 2, 3]].any() and cached["appearance"].raw.any()
    with pytest.raises(ValueError, match="needs the analysis pass"):
        gradcams(stream_model, crops, "fake", "cached", partners, layers)


def test_an_analysis_with_explanations_uses_its_own_pass(face_clip):
    """analyze_video(explain=True) keeps the activations and explains from them: method "cached"."""
    from detector.pipeline import AnalysisConfig, analyze_video
    from detector.runtime import Detector

    torch.manual_seed(0)
    model = build_model(spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16)).eval()
    r = analyze_video(face_clip, AnalysisConfig(frames=6, explain=True), detector=Detector(model, model.spec, "fp32"))
    assert r.faces and r.explanations["method"]["gradcam"]["implementation"] == "cached"
    assert r.faces[0].explanation["cam"].shape == (len(r.faces[0].frame_indices), 112, 112)


def test_cached_gradcam_with_sampled_pairs():
    """A "sampled"-pairing stream (pairs of consecutive sampled frames, step 0 repeating pair 0): the cached
    maps are the full pass's."""
    import dataclasses

    from detector.runtime import Detector
    from explain.gradcam import gradcams

    torch.manual_seed(0)
    spec = dataclasses.replace(spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16), residual_width=4,
                               residual_pairs="sampled")
    model = build_model(spec).eval()
    crops = _crops(4, seed=2)
    crops[2] = crops[1]  # frames 1 and 2 the same: pair (1, 2) is ignored
    feats, maps = Detector(model, spec, "fp32", "torch").features_and_maps(crops)
    assert maps["texture"].shape[0] == 3  # P = T - 1 pairs
    layers = ("appearance", "texture")
    for target in ("fake", "real"):
        fast = gradcams(model, crops, target, "fast", None, layers)
        cached = gradcams(model, crops, target, "cached", None, layers, features=feats, maps=maps)
        for name in layers:
            a, b = fast[name].raw, cached[name].raw
            np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * max(1.0, float(a.max())))


def test_frame_overlays_follow_display_copies(small_model):
    """Frames kept at half the video's size: each overlay's window is the box scaled onto them."""
    from explain import explain_report

    report, det, feats = _synthetic_report(small_model)
    report.video.update(width=320, height=240)
    report.frames = np.zeros_like(report.frames)  # (T, 120, 160, 3): half of 320 x 240
    report.faces[0].boxes = [[80, 60, 200, 180]] * 3  # at half size (40, 30) to (100, 90), centre (70, 60)
    explain_report(report, det, feats, target="fake")
    ov = report.faces[0].explanation["frame_overlays"]
    assert ov.shape == (3, 120, 160, 3)
    assert ov[0, 60, 70].sum() > 0 and ov[0, :, 125:].sum() == 0  # window 22..118 wide, not past 125
