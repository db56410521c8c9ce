"""explain/attribution.py: completeness, the evidence frame found at every position, no position bias.

All on features (no backbone): small LSTM heads, some built by hand so the right answer is known.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explain.attribution import (
    COMPLETENESS_TOL,
    DEFAULT_STEPS,
    baseline_features,
    gradients,
    integrated_gradients,
    margins,
    occlusion,
    top_frames,
)
from explain.temporal import temporal_importance

T = 12


class LSTMHead(nn.Module):
    """The product's head (LSTM over frames, mean of its outputs, Linear -> 2 logits, index 1 = FAKE)."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(c, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward_head(self, f):
        out, _ = self.lstm(f.float())
        return self.head(out.mean(dim=1))

    def frame_logits(self, f):
        out, _ = self.lstm(f.float())
        return self.head(out)


def memory_and_evidence_head() -> LSTMHead:
    """A hand-set LSTM whose decision is position-invariant but whose gradient norm is not.

    Input channels: 0 = "u", a property every frame shares (think: identity, light); 1 = "w", the fake
    evidence; 2, 3 unused. Cell 0 integrates u over time (forget gate ~1), like the LSTM memory that makes
    RLNet's gradient norm decrease with position: early frames feed every later output. Cell 1 reads w
    of the current frame only (forget gate ~0), so a frame's evidence moves the (mean-pooled) decision
    by the same amount wherever it sits. Gate order in PyTorch: input, forget, cell, output.
    """
    m = LSTMHead(4, 2)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        big = 10.0
        b = m.lstm.bias_ih_l0
        b[0:2] = big          # input gates open
        b[2], b[3] = big, -big  # cell 0 remembers, cell 1 forgets
        b[6:8] = big          # output gates open
        w = m.lstm.weight_ih_l0
        w[4, 0] = 0.5         # cell 0 candidate <- u
        w[5, 1] = 1.0         # cell 1 candidate <- w (evidence)
        m.head.weight[1] = torch.tensor([0.5, 2.0])  # fake logit reads both cells; real logit = 0
    return m.eval()


def clip_with_evidence(k: int, t: int = T, strength: float = 1.5) -> torch.Tensor:
    f = torch.zeros(1, t, 4)
    f[0, :, 0] = 1.0  # shared property
    f[0, k, 1] = strength  # the evidence, in frame k only
    return f


@pytest.fixture(scope="module")
def random_head():
    torch.manual_seed(0)
    return LSTMHead(64, 32).eval()


def _features(seed: int = 0, t: int = T, c: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(1, t, c, generator=g))  # non-negative, like pooled ReLU features


@pytest.mark.parametrize("baseline, steps", [("median", DEFAULT_STEPS), ("mean", DEFAULT_STEPS), ("zeros", 64)])
def test_completeness(random_head, baseline, steps):
    for seed in range(3):
        f = _features(seed)
        r = integrated_gradients(random_head, f, baseline, steps)
        with torch.no_grad():
            delta = float(margins(random_head, f) - margins(random_head, baseline_features(f, baseline)))
        assert abs(r.margin - r.baseline_margin - delta) < 1e-5
        assert abs(float(r.attribution.sum()) - delta) <= COMPLETENESS_TOL * max(1.0, abs(delta))
        assert abs(r.error) <= COMPLETENESS_TOL * max(1.0, abs(delta))


def test_completeness_can_fail_with_too_few_steps(random_head):
    """The tolerance is tight enough to notice a coarse integral (the test above can fail)."""
    f = _features(1) * 4  # far from the zero baseline: a curved path
    errs = [abs(integrated_gradients(random_head, f, "zeros", s).error) for s in (1, 64)]
    assert errs[0] > COMPLETENESS_TOL and errs[1] < errs[0] / 10


def test_occlusion_is_leave_one_out(random_head):
    f = _features(2)
    occ = occlusion(random_head, f)
    b = baseline_features(f)
    with torch.no_grad():
        m0 = float(margins(random_head, f))
        for t in (0, 5, T - 1):
            g = f.clone()
            g[0, t] = b[0, t]
            assert abs(occ[t] - (m0 - float(margins(random_head, g)))) < 1e-5


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_evidence_frame_found_at_every_position(method):
    """Only frame k carries evidence: it gets the largest attribution, for every k in the clip."""
    model = memory_and_evidence_head()
    for k in range(T):
        tem = temporal_importance(model, clip_with_evidence(k), method=method)
        assert int(np.argmax(tem.importance)) == k, (k, tem.importance)
        assert tem.top[0] == k and tem.importance[k] > 0


def test_evidence_frame_found_by_a_random_lstm(random_head):
    """A random LSTM head (no hand-set gates): a strong evidence frame in a clip of identical frames."""
    g = torch.Generator().manual_seed(5)
    base, evidence = torch.relu(torch.randn(64, generator=g)), 3 * torch.randn(64, generator=g)
    for k in range(T):
        f = base.repeat(1, T, 1)
        f[0, k] += evidence
        ig = integrated_gradients(random_head, f).attribution
        assert int(np.argmax(np.abs(ig))) == k, (k, ig)
        assert np.allclose(np.delete(ig, k), 0)  # frames equal to the median baseline get nothing


def test_no_position_bias():
    """The same evidence frame placed anywhere gets the same attribution (the model treats it the same),
    while RLNet's gradient norm, on the same clips, decreases with position."""
    model = memory_and_evidence_head()
    ig = np.array([integrated_gradients(model, clip_with_evidence(k)).attribution[k] for k in range(T)])
    occ = np.array([occlusion(model, clip_with_evidence(k))[k] for k in range(T)])
    for v in (ig, occ):
        assert v.min() > 0 and (v.max() - v.min()) <= 0.02 * v.max(), v
    # On a clip with no evidence at all, IG and occlusion are zero everywhere (nothing frame-specific) ...
    flat = clip_with_evidence(0, strength=0.0)
    assert np.allclose(integrated_gradients(model, flat).attribution, 0, atol=1e-6)
    assert np.allclose(occlusion(model, flat), 0, atol=1e-6)
    # ... while the gradient norm is largest on the first frame and falls with position: what the old
    # temporal importance showed, and why it is now labelled as sensitivity.
    norm, _ = gradients(model, flat, target=1)
    assert int(np.argmax(norm)) == 0 and np.corrcoef(np.arange(T), norm)[0, 1] < -0.5
    # With evidence in the last frame, the gradient norm points at frame 0, IG at the evidence.
    norm, _ = gradients(model, clip_with_evidence(T - 1), target=1)
    assert int(np.argmax(norm)) != T - 1


def test_top_frames_only_positive():
    assert top_frames(np.array([0.1, -2.0, 0.5, 0.0, 0.3]), 3) == [2, 4, 0]
    assert top_frames(np.array([-0.1, -0.2]), 3) == []


def test_bad_input():
    model = memory_and_evidence_head()
    with pytest.raises(ValueError, match="features must be"):
        integrated_gradients(model, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(model, torch.zeros(1, 3, 4), baseline="blur")
    with pytest.raises(ValueError, match="method"):
        temporal_importance(model, torch.zeros(1, 3, 4), method="saliency")
