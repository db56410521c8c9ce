"""Which frames drive the clip decision: temporal importance on cached per-frame features.

RLNet (Algorithm 1): the importance of frame t is the L2 norm of the gradient of the target logit
with respect to the LSTM input at step t, ``H_t = || d logit_target / d f_t ||_2``, back-propagated
through the LSTM and aggregated per frame, then min-max normalised to [0, 1]. ``f_t`` is the output of
``model.forward_features`` (cached by the pipeline), so only ``forward_head`` (LSTM + head) runs here.

Also computed: gradient x input ``|sum_c g_{t,c} f_{t,c}|`` (signed contribution, first-order) and a
per-frame p(fake) curve ``softmax(model.frame_logits(features))[..., 1]``: the head applied to the LSTM
output at step t, which has seen frames 1..t only (a running decision, not frame t alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.gradcam import eval_mode, target_index


@dataclass
class TemporalResult:
    """Per-frame scores of one face track, all float32 (T,).

    importance: ||d logit / d f_t||_2 min-max normalised to [0, 1] (T = 1: [1.0]). raw: before that.
    grad_x_input: |sum_c g_t,c f_t,c| normalised to [0, 1]; grad_x_input_raw: before that.
    frame_p_fake: p(fake) of the LSTM output at step t (frames 1..t seen). p_fake: the clip's p(fake).
    """

    importance: np.ndarray
    raw: np.ndarray
    grad_x_input: np.ndarray
    grad_x_input_raw: np.ndarray
    frame_p_fake: np.ndarray
    p_fake: float
    target: int


def minmax(v: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a single value or a constant vector maps to ones (every frame equally important)."""
    v = np.asarray(v, np.float32)
    span = float(v.max() - v.min()) if v.size else 0.0
    if v.size <= 1 or span <= 1e-12:
        return np.ones_like(v)
    return ((v - v.min()) / span).astype(np.float32)


def temporal_importance(model: nn.Module, features: torch.Tensor,
                        target: str | int = "fake") -> TemporalResult:
    """features: (1, T, C) from ``model.forward_features`` (inference tensors are fine) -> TemporalResult.

    The model stays in eval mode (dropout off). cuDNN refuses an RNN backward in eval mode, so it is
    disabled around the backward (no effect on CPU).
    """
    idx = target_index(target)
    if features.dim() != 3 or features.shape[0] != 1:
        raise ValueError(f"features must be (1, T, C), not {tuple(features.shape)}")
    with eval_mode(model), torch.autocast("cpu", enabled=False), torch.backends.cudnn.flags(enabled=False):
        # clone() outside inference mode turns an inference tensor into one autograd can use.
        f = features.detach().float().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model.forward_head(f)  # (1, 2)
            (g,) = torch.autograd.grad(logits[0, idx], f)
        with torch.no_grad():
            frame_p = torch.softmax(model.frame_logits(f), -1)[0, :, 1]  # (T,)
    g, fv = g[0].float(), f.detach()[0]
    raw = g.norm(dim=1).cpu().numpy().astype(np.float32)
    gxi = (g * fv).sum(dim=1).abs().cpu().numpy().astype(np.float32)
    p = float(torch.softmax(logits.detach(), -1)[0, 1])
    frame_p_fake = frame_p.cpu().numpy().astype(np.float32)
    return TemporalResult(minmax(raw), raw, minmax(gxi), gxi, frame_p_fake, p, idx)
