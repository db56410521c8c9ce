"""Signed per-frame attribution of the clip decision, on cached per-frame features.

Everything here runs on the output of ``model.forward_features`` (features (1, T, C)), so only the
LSTM + head re-run: cheap, whatever the backbone. The quantity explained is the **logit margin**
``m(f) = logit_fake - logit_real`` (index 1 = FAKE), the clip decision before the softmax (p_fake
saturates at 1.000 on confident fakes, the margin does not). Every signed value reads the same way:
**positive = this frame pushes the verdict towards FAKE, negative = towards REAL**.

Methods (all (T,) float32):

- ``integrated_gradients`` (Sundararajan et al. 2017, arXiv:1703.01365): attribution of frame t =
  ``sum_c (f_tc - b_tc) * mean_alpha d m / d f_tc`` along the straight path from a baseline b to f,
  trapezoid rule over ``steps`` intervals, all steps in one batch. Completeness: the T values sum to
  ``m(f) - m(b)`` (the error is returned, and tested to stay within ``COMPLETENESS_TOL``).
- ``occlusion``: leave-one-frame-out, ``m(f) - m(f with frame t replaced by b_t)``; T + 1 head passes
  in one batch. Not additive (frames interact through the LSTM), but it is the direct counterfactual.
- ``grad_x_input``: ``sum_c f_tc * d m / d f_tc``, first-order (IG with a zero baseline and one step).
- ``grad_norm`` (RLNet Algorithm 1): ``|| d logit_target / d f_t ||_2``. Unsigned **sensitivity**: how
  fast the decision *could* change if frame t changed, not how much frame t *did* move it. Through an
  LSTM with mean pooling it is larger for early frames (they feed more outputs), whatever they show.

Baseline (``BASELINES``): ``"median"`` (default) repeats the clip's per-channel median feature at every
position: a typical frame of *this* face (same person, light, camera), so what is attributed is what is
specific to frame t, and the baseline stays on this clip's data manifold. The median rather than the
mean because a few evidence frames drag the mean towards themselves, which would make every ordinary
frame look "specific" (it lacks a share of the evidence) and spread the attribution over them; with the
median, frames that look like the rest of the clip get ~0. ``"mean"`` (the clip's mean feature) and
``"zeros"`` (all-zero features: no activation at all, off the manifold, no real crop gives it) are kept
for comparison; detector/training/faithfulness.py measures all three by deletion.
For a single frame (T = 1, still images) the median and mean baselines equal the input and every attribution is 0:
there is no "which frame" question to answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.gradcam import eval_mode

BASELINES = ("median", "mean", "zeros")
DEFAULT_BASELINE = "median"
DEFAULT_STEPS = 32
# |sum(IG) - (m(f) - m(b))| <= COMPLETENESS_TOL * max(1, |m(f) - m(b)|) at DEFAULT_STEPS (trapezoid rule;
# measured ~1e-5 with the median/mean baselines, whose path is short; the zeros baseline needs ~64 steps).
COMPLETENESS_TOL = 0.01
_MAX_ROWS = 8192  # sequences x frames per head pass; bounds memory for long clips (T = 300: 27 steps a pass)


@dataclass
class IGResult:
    """attribution: float32 (T,), signed (positive = towards FAKE). margin: m(f); baseline_margin: m(b);
    error: sum(attribution) - (margin - baseline_margin), the completeness gap of the trapezoid rule."""

    attribution: np.ndarray
    margin: float
    baseline_margin: float
    error: float
    baseline: str
    steps: int
    # float32 (2, T) when asked with `split`: the attribution of channels [:split] and [split:] per frame,
    # rows summing to `attribution` exactly (IG is a sum over channels, so the split is exact, not a model).
    streams: np.ndarray | None = None


def _check(features: torch.Tensor) -> torch.Tensor:
    if features.dim() != 3 or features.shape[0] != 1:
        raise ValueError(f"features must be (1, T, C), not {tuple(features.shape)}")
    # clone() outside inference mode turns an inference tensor (the pipeline's cache) into one autograd can use.
    return features.detach().float().clone()


def baseline_features(features: torch.Tensor, baseline: str = DEFAULT_BASELINE) -> torch.Tensor:
    """(1, T, C) -> (1, T, C): the clip's per-channel median ("median") or mean ("mean") feature at every
    position, or zeros ("zeros")."""
    if baseline == "median":
        # torch.median takes the lower middle value for an even T; quantile(0.5) interpolates.
        return features.quantile(0.5, dim=1, keepdim=True).expand_as(features).clone()
    if baseline == "mean":
        return features.mean(dim=1, keepdim=True).expand_as(features).clone()
    if baseline == "zeros":
        return torch.zeros_like(features)
    raise ValueError(f"baseline must be one of {BASELINES}, not {baseline!r}")


def margins(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """features (N, T, C) -> logit margin fake - real, (N,). The LSTM runs each sequence on its own in
    eval mode, so a batch of N sequences gives the same N margins as N separate calls."""
    logits = model.forward_head(features)
    return logits[:, 1] - logits[:, 0]


def _head_context(model: nn.Module):
    """fp32, eval mode; cuDNN refuses an RNN backward in eval mode, so it is off (no effect on CPU)."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(eval_mode(model))
    stack.enter_context(torch.autocast("cpu", enabled=False))
    stack.enter_context(torch.backends.cudnn.flags(enabled=False))
    return stack


def integrated_gradients(model: nn.Module, features: torch.Tensor, baseline: str = DEFAULT_BASELINE,
                         steps: int = DEFAULT_STEPS, split: int | None = None) -> IGResult:
    """Integrated Gradients of the margin per frame. features: (1, T, C) -> IGResult with (T,) values.

    split: a channel index (a two-stream model's `rgb_features`): also return the per-stream rows."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, not {steps}")
    f = _check(features)
    b = baseline_features(f, baseline)
    t = f.shape[1]
    alphas = torch.linspace(0.0, 1.0, steps + 1, device=f.device)
    weights = torch.ones(steps + 1, device=f.device)
    weights[0] = weights[-1] = 0.5  # trapezoid rule
    weights /= steps
    grad_sum = torch.zeros_like(f[0])
    ends = torch.empty(steps + 1, device=f.device)
    chunk = max(1, _MAX_ROWS // max(t, 1))
    with _head_context(model):
        for s in range(0, steps + 1, chunk):
            a = alphas[s:s + chunk].view(-1, 1, 1)
            path = (b + a * (f - b)).requires_grad_(True)  # (n, T, C)
            with torch.enable_grad():
                m = margins(model, path)
                (g,) = torch.autograd.grad(m.sum(), path)  # sequences are independent: per-sequence grads
            grad_sum += (weights[s:s + chunk].view(-1, 1, 1) * g).sum(0)
            ends[s:s + chunk] = m.detach()
    per_channel = (f - b)[0] * grad_sum  # (T, C)
    attr = per_channel.sum(-1)
    m_f, m_b = float(ends[-1]), float(ends[0])
    err = float(attr.sum()) - (m_f - m_b)
    streams = None
    if split is not None:
        streams = torch.stack([per_channel[:, :split].sum(-1), per_channel[:, split:].sum(-1)])
        streams = streams.cpu().numpy().astype(np.float32)
    return IGResult(attr.cpu().numpy().astype(np.float32), m_f, m_b, err, baseline, steps, streams)


def occlusion(model: nn.Module, features: torch.Tensor, baseline: str = DEFAULT_BASELINE) -> np.ndarray:
    """Leave-one-frame-out: m(f) - m(f with frame t := baseline_t), float32 (T,). Positive = frame t
    pushed towards FAKE. All T occluded clips (and the original) go through the head in batches."""
    f = _check(features)
    b = baseline_features(f, baseline)
    t = f.shape[1]
    clips = f.expand(t + 1, -1, -1).clone()  # row 0: original; row i + 1: frame i replaced
    idx = torch.arange(t)
    clips[idx + 1, idx] = b[0, idx]
    out = []
    chunk = max(1, _MAX_ROWS // max(t, 1))
    with _head_context(model), torch.no_grad():
        for s in range(0, t + 1, chunk):
            out.append(margins(model, clips[s:s + chunk]))
    m = torch.cat(out)
    return (m[0] - m[1:]).cpu().numpy().astype(np.float32)


def gradients(model: nn.Module, features: torch.Tensor, target: int) -> tuple[np.ndarray, np.ndarray]:
    """(grad_norm, grad_x_input), float32 (T,) each: ||d logit_target / d f_t||_2 (unsigned sensitivity)
    and sum_c f_tc * d margin / d f_tc (signed, first-order)."""
    f = _check(features).requires_grad_(True)
    with _head_context(model), torch.enable_grad():
        logits = model.forward_head(f)
        g_target, g_margin = (torch.autograd.grad(v, f, retain_graph=True)[0][0]
                              for v in (logits[0, target], logits[0, 1] - logits[0, 0]))
    norm = g_target.norm(dim=1)
    gxi = (g_margin * f.detach()[0]).sum(dim=1)
    return norm.cpu().numpy().astype(np.float32), gxi.cpu().numpy().astype(np.float32)


def top_frames(values: np.ndarray, k: int = 3) -> list[int]:
    """Positions of the k largest *positive* values (those that pushed towards FAKE), largest first."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v, kind="stable")
    return [int(i) for i in order[:k] if v[i] > 0]
