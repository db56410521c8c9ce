"""wise-ft: a fine-tuned backbone mixed with the one it started from, in weight space."""

import copy
import dataclasses

import pytest
import torch

from research.wise import interpolate_backbone, main
from detector.errors import WeightsError
from detector.model import build_model
from detector.weights import load_weights, save_weights


@pytest.fixture(scope="module")
def spec(tiny_spec):
    return dataclasses.replace(tiny_spec, residual_width=4, residual_pairs="next", trained=True)


def _pair(spec):
    torch.manual_seed(0)
    base, tuned = build_model(spec).eval(), build_model(spec).eval()
    with torch.no_grad():
        for m in tuned.backbone.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # running statistics are mixed too
                m.running_mean.normal_()
    return base, tuned


def test_ends_and_middle_and_the_rest_is_base(spec):
    base, tuned = _pair(spec)
    a, b = base.backbone.state_dict(), tuned.backbone.state_dict()
    rest = {k: v for k, v in base.state_dict().items() if not k.startswith("backbone.")}
    for alpha in (0.0, 0.5, 1.0):
        m = interpolate_backbone(copy.deepcopy(base), tuned, alpha)
        got = m.backbone.state_dict()
        for k in a:
            want = (1 - alpha) * a[k] + alpha * b[k] if a[k].is_floating_point() else b[k]
            assert torch.allclose(got[k].float(), want.float(), atol=1e-6), (alpha, k)
        assert all(torch.equal(m.state_dict()[k], v) for k, v in rest.items())  # stream, LSTM, head: base's
    with pytest.raises(ValueError, match="alpha must lie in"):
        interpolate_backbone(base, tuned, 1.5)


def test_cli_writes_weights_with_their_lineage(spec, tmp_path):
    base, tuned = _pair(spec)
    pa, pb, out = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "o" / "mix.safetensors"
    save_weights(base, dataclasses.replace(spec, name="a"), pa)
    save_weights(tuned, dataclasses.replace(spec, name="b"), pb)
    assert main([str(pa), str(pb), "--alpha", "0.25", "--out", str(out)]) == 0
    m, s = load_weights(out)
    (ma, _), (mb, sb) = load_weights(pa), load_weights(pb)
    k = next(k for k, v in m.backbone.state_dict().items() if v.is_floating_point())
    want = 0.75 * ma.backbone.state_dict()[k].float() + 0.25 * mb.backbone.state_dict()[k].float()
    assert torch.allclose(m.backbone.state_dict()[k].float(), want, atol=2e-3)  # fp16 file
    assert s.name == "mix" and s.training["alpha"] == 0.25 and s.training["tuned"] == sb.weights_sha256
    assert s.cues == {} and s.calibration == {}
    assert "mixed in weight space" in s.trained_on and "intermediate" in s.limits[0]


def test_other_architecture_is_refused(spec):
    base, _ = _pair(spec)
    other = build_model(dataclasses.replace(spec, backbone="resnet50")).eval()
    with pytest.raises(WeightsError, match="one backbone architecture"):
        interpolate_backbone(base, other, 0.5)
