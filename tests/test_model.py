import dataclasses

import pytest
import torch

from detector.errors import WeightsError
from detector.model import FAKE, LegacyReferenceModel, ResNeXtLSTM, build_model, spec_for
from detector.weights import load_weights, save_weights, sidecar_path


def _clip(t=6, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, t, 3, size, size), generator=g, dtype=torch.uint8)


def test_default_registry_entry_is_resnext50_lstm():
    spec = spec_for("resnext50_lstm")
    m = build_model(spec)
    assert isinstance(m, ResNeXtLSTM) and m.lstm.batch_first and m.lstm.bias
    assert spec.backbone == "resnext50_32x4d"
    n = sum(p.numel() for p in m.parameters())
    assert 24e6 < n < 27e6  # 23.0 M trunk + 2.36 M LSTM(2048->256) + head
    assert n * 2 < 64 * 2**20  # fits the 64 MB fp16 budget


@pytest.mark.parametrize("name", ["resnet50_lstm2x256", "resnext50_bilstm"])
def test_variants_build(name):
    spec = spec_for(name, backbone="resnet18")
    m = build_model(spec).eval()
    with torch.no_grad():
        assert m(_clip(4)).shape == (1, 2)
    if name == "resnet50_lstm2x256":
        assert m.lstm.num_layers == 2 and m.lstm.hidden_size == 256
    else:
        assert m.lstm.bidirectional


def test_forward_shapes(tiny_spec):
    m = build_model(tiny_spec).eval()
    x = torch.cat([_clip(6, seed=1), _clip(6, seed=2)])
    with torch.no_grad():
        f = m.forward_features(x)
        assert f.shape == (2, 6, 512)
        assert m.forward_head(f).shape == (2, 2)
        assert m.frame_logits(f).shape == (2, 6, 2)
        # The clip logit is the mean of the per-step logits (Linear is affine, dropout off in eval).
        assert torch.allclose(m.frame_logits(f).mean(1), m.forward_head(f), atol=1e-5)


def test_default_model_uses_time(tiny_spec):
    """Changing an early frame must change the output: the LSTM really runs across frames."""
    torch.manual_seed(0)
    m = build_model(tiny_spec).eval()
    x = _clip(6)
    y = x.clone()
    y[0, 0] = 255 - y[0, 0]  # change only the first frame
    with torch.no_grad():
        assert not torch.allclose(m(x), m(y), atol=1e-6)


def test_reference_bug_fails_the_time_test():
    """The legacy layout (no batch_first, last step taken) ignores every frame but the last."""
    torch.manual_seed(0)
    spec = spec_for("legacy_reference", backbone="resnext50_32x4d", lstm_hidden=64)
    m = build_model(spec).eval()
    x = _clip(4)
    y = x.clone()
    y[0, 0] = 255 - y[0, 0]
    with torch.no_grad():
        assert torch.allclose(m(x), m(y), atol=1e-6)
        z = x.clone()
        z[0, -1] = 255 - z[0, -1]
        assert not torch.allclose(m(x), m(z), atol=1e-6)


def _reference_state_dict(hidden=2048):
    """A state dict with the reference implementation's key layout, built without its code."""
    import torchvision

    trunk = torch.nn.Sequential(*list(torchvision.models.resnext50_32x4d(weights=None).children())[:-2])
    state = {f"model.{k}": v for k, v in trunk.state_dict().items()}
    lstm = torch.nn.LSTM(2048, hidden, 1, False)  # bias=False, as the reference's positional arg does
    state.update({f"lstm.{k}": v for k, v in lstm.state_dict().items()})
    lin = torch.nn.Linear(hidden, 2)
    state.update({f"linear1.{k}": v for k, v in lin.state_dict().items()})
    return state


def test_legacy_checkpoint_loads_unchanged(tmp_path):
    from detector.weights import import_reference_checkpoint

    state = _reference_state_dict()
    assert "lstm.weight_ih_l0" in state and "lstm.bias_ih_l0" not in state
    ckpt = tmp_path / "model_90_acc_20_frames.pt"
    torch.save(state, ckpt)
    spec = import_reference_checkpoint(ckpt, tmp_path / "legacy.safetensors")
    assert "LAST frame" in spec.limits[0]
    model, spec2 = load_weights(tmp_path / "legacy.safetensors")
    assert isinstance(model, LegacyReferenceModel) and spec2.architecture == "legacy_reference"
    # Same numbers as the reference computation: BGR input, last frame, index 1 = REAL flipped to ours.
    x = _clip(3, size=112)
    with torch.no_grad():
        ours = model(x)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        bgr = (x[0].float().flip(1) / 255 - mean) / std
        trunk = model.model
        f = torch.nn.functional.adaptive_avg_pool2d(trunk(bgr), 1).flatten(1)  # (T, 2048)
        # One step from a zero state (so weight_hh_l0 multiplies zeros), last frame only.
        gates = f[-1:] @ state["lstm.weight_ih_l0"].T
        i, fg, g, o = gates.chunk(4, 1)
        h = torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))
        ref = h @ state["linear1.weight"].T + state["linear1.bias"]
    assert torch.allclose(ours, ref.flip(-1), atol=1e-4)
    assert FAKE == 1


def test_weights_roundtrip_and_mismatch(tmp_path, tiny_spec):
    m = build_model(tiny_spec)
    spec = save_weights(m, tiny_spec, tmp_path / "w.safetensors")
    m2, spec2 = load_weights(tmp_path / "w.safetensors")
    assert spec2.weights_sha256 == spec.weights_sha256 and len(spec.weights_sha256) == 64
    # A sidecar that says another hidden size must be refused with a clear message.
    side = sidecar_path(tmp_path / "w.safetensors")
    bad = dataclasses.replace(spec2, lstm_hidden=64)
    side.write_text(bad.to_json())
    with pytest.raises(WeightsError, match="do not fit"):
        load_weights(tmp_path / "w.safetensors")
    # A tensor file that is not the one the sidecar hashed.
    side.write_text(dataclasses.replace(spec2, weights_sha256="0" * 64).to_json())
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(tmp_path / "w.safetensors")


def test_missing_sidecar(tmp_path, tiny_spec):
    save_weights(build_model(tiny_spec), tiny_spec, tmp_path / "w.safetensors")
    sidecar_path(tmp_path / "w.safetensors").unlink()
    with pytest.raises(WeightsError, match="sidecar missing"):
        load_weights(tmp_path / "w.safetensors")


def test_no_pickle_loading_in_package():
    import pathlib
    import re

    root = pathlib.Path(__file__).parent.parent
    for py in list((root / "detector").glob("*.py")) + list((root / "explain").glob("*.py")):
        for line in py.read_text().splitlines():
            if re.search(r"torch\.load\(", line):
                assert "weights_only=True" in line, f"{py.name}: {line.strip()}"


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_own_trunk_matches_torchvision(name):
    """detector/backbones.py keeps torchvision's keys, shapes and numbers, so weights load either way."""
    torchvision = pytest.importorskip("torchvision")
    from detector.backbones import Trunk

    ref = getattr(torchvision.models, name)(weights=None).eval()
    ref_state = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    ours = Trunk(name).eval()
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {k: tuple(v.shape) for k, v in
                                                                         ref_state.items()}
    ours.load_state_dict(ref_state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = torch.nn.Sequential(*list(ref.children())[:-2])(x)
        assert torch.allclose(ours(x), want, atol=1e-5)
    assert ours.num_features == ref.fc.in_features


def test_cli_model_path_does_not_import_torchvision():
    """torchvision pulls torch._dynamo (~1.4 s of a cold start): building a model must not import it."""
    import subprocess
    import sys

    code = ("import sys; from detector.weights import load_weights, DEFAULT_WEIGHTS; load_weights(DEFAULT_WEIGHTS); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
