"""detector/onnx_trunk.py and the engine choice in detector/runtime.py: ONNX Runtime runs the same trunk.

Small random models (ResNet18 with BasicBlocks, ResNeXt50 with grouped Bottlenecks), offline. What must hold:
the hand-written graph gives the trunk's own output (batch norms folded, so equal up to float rounding), the
Detector's features and margins do not depend on the engine, and an engine that cannot run says why.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from detector.errors import InputError
from detector.model import build_model, spec_for
from detector.onnx_trunk import Graph, OrtTrunk, _varint, available
from detector.runtime import Detector
from tests.conftest import spread_batch_norms


def test_onnxruntime_is_installed():
    """A dependency (pyproject.toml): without it every fp32 analysis falls back to the slower PyTorch trunk."""
    assert available()


def _model(backbone: str, **overrides):
    torch.manual_seed(0)
    model = build_model(spec_for("resnext50_lstm", backbone=backbone, lstm_hidden=16, **overrides)).eval()
    return spread_batch_norms(model)  # a wrong fold would show


def _crops(t: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)


def test_varint_is_protobufs():
    assert _varint(0) == b"\x00" and _varint(1) == b"\x01" and _varint(300) == b"\xac\x02"
    assert _varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes, as protobuf writes it


@pytest.mark.parametrize("backbone", ["resnet18", "resnext50_32x4d"])
def test_graph_gives_the_trunks_output(backbone):
    model = _model(backbone)
    crops = _crops(3, 64)
    with torch.inference_mode():
        ref = model.backbone(model.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2)))
    out = torch.from_numpy(OrtTrunk(model, threads=1).maps(crops))
    assert out.shape == ref.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    # another batch size and crop size run through the same session (dynamic axes)
    assert OrtTrunk(model, threads=1).maps(_crops(1, 96)).shape == (1, model.backbone.num_features, 3, 3)


class _Clamped(Graph):
    """Hooks that change nothing when they are wired right: a ReLU on every activation said to be non-negative,
    each convolution's weight as given; counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = {"weight": 0, "nonneg": 0, "signed": 0}

    def weight(self, w):
        self.calls["weight"] += 1
        return super().weight(w)

    def activation(self, x, name, nonneg):
        self.calls["nonneg" if nonneg else "signed"] += 1
        return self.op("Relu", [x], "clamp") if nonneg else x


def test_graph_hooks_see_every_weight_and_activation():
    """onnx_trunk.Graph's hooks (what an int8 graph quantises, benchmarks/bench_model.py): every convolution's
    weight and every activation reach them, and `nonneg` is true only where a ReLU came before (a ReLU added
    there changes nothing; on a residual branch's output, which is signed, it would)."""
    model = _model("resnet18")
    crops = _crops(2, 64, seed=4)
    g = _Clamped()
    out = OrtTrunk(model, threads=1, graph=g).maps(crops)
    ref = OrtTrunk(model, threads=1).maps(crops)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.backbone.modules())
    blocks = sum(len(s) for s in (model.backbone.layer1, model.backbone.layer2, model.backbone.layer3,
                                  model.backbone.layer4))
    downsamples = sum(b.downsample is not None for s in (model.backbone.layer1, model.backbone.layer2,
                                                          model.backbone.layer3, model.backbone.layer4) for b in s)
    assert g.calls["weight"] == convs
    # non-negative: the stem's conv and MaxPool, each block's first conv and its output; signed: each block's
    # last conv and its downsampling conv (added before the ReLU)
    assert g.calls["nonneg"] == 2 + 2 * blocks and g.calls["signed"] == blocks + downsamples


def test_detector_features_and_margin_do_not_depend_on_the_engine():
    spec = spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16)
    spec = dataclasses.replace(spec, residual_width=4, residual_pairs="next")
    model = _model("resnet18")
    stream = build_model(spec).eval()
    stream.backbone.load_state_dict(model.backbone.state_dict())  # the folded-looking trunk, plus a stream
    crops = _crops(5, 64, seed=2)
    partners = np.clip(crops.astype(int) + np.random.default_rng(3).integers(-6, 7, crops.shape), 0, 255)
    partners = partners.astype(np.uint8)
    ort_det, torch_det = Detector(stream, spec, "fp32", "onnxruntime"), Detector(stream, spec, "fp32", "torch")
    fo, mo = ort_det.features_and_maps(crops, partners)
    ft, mt = torch_det.features_and_maps(crops, partners)
    assert fo.shape == ft.shape == (1, 5, 512 + 16)
    torch.testing.assert_close(fo, ft, rtol=1e-4, atol=1e-4)
    assert abs(ort_det.margin(fo) - torch_det.margin(ft)) < 1e-4
    for k in ("appearance", "texture"):
        torch.testing.assert_close(mo[k], mt[k], rtol=1e-4, atol=1e-4)
    assert ort_det.model_info()["engine"] == "onnxruntime" and torch_det.model_info()["engine"] == "torch"
    assert ort_det.features(crops, partners).shape == fo.shape  # without maps, the same features


def test_engine_choice_and_its_errors():
    model = _model("resnet18")
    spec = model.spec
    assert Detector(model, spec, "fp32", "auto").engine == "onnxruntime"
    assert Detector(model, spec, "bf16", "auto").engine == "torch"  # bf16 autocast is PyTorch's
    with pytest.raises(InputError, match="fp32 only"):
        Detector(model, spec, "bf16", "onnxruntime")
    legacy_spec = spec_for("legacy_reference", lstm_hidden=8)
    legacy = build_model(legacy_spec)
    assert Detector(legacy, legacy_spec, "fp32", "auto").engine == "torch"
    with pytest.raises(InputError, match="legacy BGR"):
        Detector(legacy, legacy_spec, "fp32", "onnxruntime")
    with pytest.raises(InputError, match="engine must be one of"):
        Detector(model, spec, "fp32", "tensorrt")


def test_a_report_names_the_engine_and_its_version(face_clip):
    """Which library ran the trunk is part of what made the result: the report's model block and software say it."""
    import onnxruntime

    from detector.pipeline import AnalysisConfig, analyze_video
    from detector.render import render_html

    model = _model("resnet18")
    r = analyze_video(face_clip, AnalysisConfig(frames=4), detector=Detector(model, model.spec, "fp32"))
    assert r.model["engine"] == "onnxruntime" and r.software["onnxruntime"] == onnxruntime.__version__
    assert "trunk on onnxruntime" in render_html(r)
    r = analyze_video(face_clip, AnalysisConfig(frames=4), detector=Detector(model, model.spec, "fp32", "torch"))
    assert r.model["engine"] == "torch" and "onnxruntime" not in r.software
