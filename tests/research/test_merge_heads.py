"""merge-heads: K heads on one backbone + stream become one ResNeXtLSTM whose logits are the members' mean."""

import dataclasses

import pytest
import torch

from detector.errors import WeightsError
from detector.model import build_model
from research.merge_heads import merge_heads
from detector.weights import load_weights, save_weights


def _members(spec, k: int, seed: int = 0):
    torch.manual_seed(seed)
    base = build_model(spec).eval()
    out = []
    for _ in range(k):
        m = build_model(spec).eval()  # fresh LSTM + head per member ...
        m.backbone.load_state_dict(base.backbone.state_dict())  # ... on one shared backbone and stream
        m.residual.load_state_dict(base.residual.state_dict())
        with torch.no_grad():  # a non-zero head bias, so the bias mean is tested too
            m.head.bias.normal_()
        out.append(m)
    return out


@pytest.fixture(scope="module")
def spec(tiny_spec):
    return dataclasses.replace(tiny_spec, residual_width=4, residual_pairs="next", trained=True)


def test_merged_logits_are_the_members_mean(spec, tmp_path):
    members = _members(spec, 3)
    cued = dataclasses.replace(spec, cues={"mouth_detail_deficit": {"weight": 1.0, "centre": 0.1}})
    merged, mspec = merge_heads(members, [cued] * 3, "merged")
    assert mspec.lstm_hidden == 3 * spec.lstm_hidden
    assert mspec.cues == {} and mspec.calibration == {}  # a cue's weight was chosen for its network, not this one
    torch.manual_seed(1)
    x = torch.randint(0, 256, (2, 5, 3, 112, 112), dtype=torch.uint8)
    nx = torch.randint(0, 256, (2, 5, 3, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        f = members[0].forward_features(x, nx)
        want = torch.stack([m.forward_head(f) for m in members]).mean(0)
        want_frames = torch.stack([m.frame_logits(f) for m in members]).mean(0)
        assert torch.allclose(merged(x, nx), want, atol=1e-5)
        assert torch.allclose(merged.frame_logits(f), want_frames, atol=1e-5)
        # A single member is not the mean: the test can tell members apart.
        assert not torch.allclose(members[0].forward_head(f), want, atol=1e-3)
    # It saves and loads as an ordinary model (fp16 on disk: looser tolerance).
    path = save_weights(merged, mspec, tmp_path / "merged.safetensors") and tmp_path / "merged.safetensors"
    loaded, lspec = load_weights(path)
    with torch.no_grad():
        assert torch.allclose(loaded(x, nx), want, atol=5e-2)
    assert lspec.lstm_hidden == 3 * spec.lstm_hidden


def test_members_on_different_features_refuse_to_merge(spec):
    a, b = _members(spec, 1, seed=0)[0], _members(spec, 1, seed=1)[0]
    with pytest.raises(WeightsError, match="backbone differs"):
        merge_heads([a, b], [spec, spec], "x")
    other = dataclasses.replace(spec, lstm_hidden=spec.lstm_hidden * 2)
    with pytest.raises(WeightsError, match="lstm_hidden"):
        merge_heads([a, build_model(other).eval()], [spec, other], "x")
    with pytest.raises(ValueError, match="at least 2"):
        merge_heads([a], [spec], "x")
