"""The residual-pair stream (detector/residual.py) and the model that carries it."""

import cv2
import numpy as np
import pytest
import torch

from detector.residual import DUPLICATE_MAD, ResidualPairStream, highpass, residual_pairs


def test_highpass_equals_opencv():
    """The stream's high-pass is the probes' (grey - cv2.GaussianBlur(sigma 1)), borders included."""
    g = np.random.default_rng(0).uniform(0, 255, (40, 52)).astype(np.float32)
    ref = g - cv2.GaussianBlur(g, (0, 0), 1.0)
    out = highpass(torch.from_numpy(g)[None, None])[0, 0].numpy()
    assert np.abs(out - ref).max() < 1e-3


def test_pairs_line_up_and_duplicates_are_flagged():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (1, 4, 3, 24, 24)).astype(np.float32)
    frames[0, 2] = frames[0, 1] + rng.uniform(-0.4, 0.4, (3, 24, 24))  # a duplicated frame, re-encoded
    pairs, same = residual_pairs(torch.from_numpy(frames))
    assert pairs.shape == (1, 3, 2, 24, 24)
    assert torch.equal(pairs[0, 0, 1], pairs[0, 1, 0])  # pair t ends where pair t+1 starts
    assert same.tolist() == [[False, True, False]]
    assert DUPLICATE_MAD > 0.4


def test_stream_shapes_stills_and_duplicates_give_no_evidence():
    torch.manual_seed(0)
    s = ResidualPairStream(width=4).eval()
    x = torch.randint(0, 255, (2, 5, 3, 32, 32), dtype=torch.uint8)
    f = s(x)
    assert f.shape == (2, 5, 16) and f.dtype == torch.float32
    assert torch.equal(f[:, 0], f[:, 1])  # step 0 repeats step 1
    assert f[:, 1:].abs().sum() > 0
    still = s(x[:, :1])
    assert still.shape == (2, 1, 16) and not still.any()
    frozen = x[:, :1].expand(-1, 5, -1, -1, -1)  # one frame repeated: duplicates, not a frozen-grain fake
    assert not s(frozen).any()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the stream runs in fp32 whatever the caller asks
        assert torch.allclose(s(x), f)


def _grain_pairs(n: int, frozen: bool, rng: np.random.Generator) -> torch.Tensor:
    """(n, 2, 3, 32, 32) pairs of a smooth face-like image + sensor grain, the grain renewed or carried."""
    yy, xx = np.mgrid[:32, :32]
    out = []
    for _ in range(n):
        base = 128 + 40 * np.sin(xx / rng.uniform(4, 9) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(4, 9))
        g0 = rng.normal(0, 4, (32, 32))
        g1 = g0 if frozen else rng.normal(0, 4, (32, 32))
        shift = rng.integers(-1, 2)  # the face moves a little; a carried grain moves with it
        f0 = base + g0
        f1 = np.roll(base + g1, shift, axis=1)
        out.append(np.stack([f0, f1])[:, None].repeat(3, 1))
    return torch.from_numpy(np.clip(np.stack(out), 0, 255).astype(np.float32))


def test_stream_learns_frozen_from_renewed_grain():
    """What the stream is for: two frames whose grain is carried along (an animator) vs renewed (a camera).
    Per frame the two classes are the same distribution, so anything that pools a frame first is at chance."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    s = ResidualPairStream(width=4)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*s.parameters(), *head.parameters()], 3e-3)
    for _ in range(150):
        x = torch.cat([_grain_pairs(8, False, rng), _grain_pairs(8, True, rng)])
        y = torch.cat([torch.zeros(8), torch.ones(8)])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(s(x)[:, 1]).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    s.eval()
    with torch.no_grad():
        renewed = head(s(_grain_pairs(32, False, rng))[:, 1]).squeeze(1)
        frozen = head(s(_grain_pairs(32, True, rng))[:, 1]).squeeze(1)
    auc = (frozen[:, None] > renewed[None, :]).float().mean().item()
    assert auc > 0.9


def test_model_with_stream_saves_loads_and_explains(tmp_path, tiny_spec):
    """residual_width > 0: features (N, T, 512 + 4w) through save/load; old sidecars mean width 0."""
    import dataclasses

    from detector.model import build_model
    from detector.spec import ModelSpec
    from detector.weights import load_weights, save_weights
    from explain.gradcam import gradcam
    from explain.temporal import temporal_importance

    assert ModelSpec.from_dict({"name": "old"}).residual_width == 0
    spec = dataclasses.replace(tiny_spec, residual_width=4)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x = torch.randint(0, 255, (1, 6, 3, 64, 64), dtype=torch.uint8)
    f = model.forward_features(x)
    assert f.shape == (1, 6, model.rgb_features + 16) and model.rgb_features == 512
    out = tmp_path / "tiny_res.safetensors"
    save_weights(model, spec, out)
    loaded, spec2 = load_weights(out)
    assert spec2.residual_width == 4 and loaded.residual is not None
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=2e-2)  # fp16 file
    tr = temporal_importance(loaded, loaded.forward_features(x).detach())
    assert len(tr.importance) == 6
    # IG split by stream: exact (a sum over channels), and each stream's share is its own channels' IG
    ig = tr.methods["integrated_gradients"]
    assert set(tr.streams) == {"appearance", "texture_renewal"}
    np.testing.assert_allclose(tr.streams["appearance"] + tr.streams["texture_renewal"], ig, atol=1e-5)
    assert temporal_importance(build_model(tiny_spec).eval(), torch.zeros(1, 6, 512)).streams is None
    cam = gradcam(loaded, x[0].permute(0, 2, 3, 1).numpy())
    assert cam.maps.shape == (6, 64, 64)


@pytest.mark.parametrize("t", [1, 2])
def test_model_with_stream_on_short_tracks(tiny_spec, t):
    import dataclasses

    from detector.model import build_model

    model = build_model(dataclasses.replace(tiny_spec, residual_width=2)).eval()
    with torch.no_grad():
        f = model.forward_features(torch.randint(0, 255, (1, t, 3, 64, 64), dtype=torch.uint8))
    assert f.shape == (1, t, 512 + 8)
    assert (t == 1) == (not f[..., 512:].any())


def test_streams_sentence_names_the_larger_stream():
    from detector.render.page import streams_sentence

    assert streams_sentence({}) == ""
    s = streams_sentence({"streams": {"total": {"appearance": 0.5, "texture_renewal": -2.0}}})
    assert "appearance of single frames +0.50" in s and "texture renewal between frames -2.00" in s
    assert s.endswith("came from texture renewal between frames.")
    assert streams_sentence({"streams": {"total": {"appearance": 3.0, "texture_renewal": 1.0}}}).endswith(
        "came from the appearance of single frames.")


def test_next_pairs_line_up_with_partners():
    """With partners, step t pairs frame t with its own successor: T pairs, no step repeated."""
    rng = np.random.default_rng(2)
    frames = torch.from_numpy(rng.integers(0, 255, (1, 3, 3, 24, 24)).astype(np.float32))
    partners = torch.from_numpy(rng.integers(0, 255, (1, 3, 3, 24, 24)).astype(np.float32))
    partners[0, 1] = frames[0, 1]  # frame 1 has no successor: its own partner
    pairs, same = residual_pairs(frames, partners)
    own, _ = residual_pairs(torch.stack([frames[0, 2], partners[0, 2]])[None])
    assert pairs.shape == (1, 3, 2, 24, 24)
    assert torch.equal(pairs[0, 2], own[0, 0])
    assert same.tolist() == [[False, True, False]]
    with pytest.raises(ValueError, match="shape"):
        residual_pairs(frames, partners[:, :2])
    s = ResidualPairStream(width=4).eval()
    f = s(frames, partners)
    assert f.shape == (1, 3, 16) and not f[0, 1].any() and f[0, 0].any() and f[0, 2].any()
    assert not torch.equal(f[0, 0], f[0, 2])  # not a repeated step


def test_next_pairing_model_reads_partners_and_nothing_else(tiny_spec):
    """A "next" model's stream sees (frame, successor) pairs; without successors it gets no evidence (0),
    and a "sampled" model ignores them."""
    import dataclasses

    from detector.model import build_model

    torch.manual_seed(0)
    spec = dataclasses.replace(tiny_spec, residual_width=2, residual_pairs="next")
    model = build_model(spec).eval()
    x = torch.randint(0, 255, (1, 4, 3, 64, 64), dtype=torch.uint8)
    nx = torch.randint(0, 255, (1, 4, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        f = model.forward_features(x, nx)
        none = model.forward_features(x)
        assert torch.equal(f[..., 512:], model.residual(x, nx))
        assert not none[..., 512:].any() and torch.equal(f[..., :512], none[..., :512])
        sampled = build_model(dataclasses.replace(spec, residual_pairs="sampled")).eval()
        sampled.load_state_dict(model.state_dict())
        assert torch.equal(sampled.forward_features(x, nx), sampled.forward_features(x))
        assert not torch.equal(sampled.forward_features(x), f)
