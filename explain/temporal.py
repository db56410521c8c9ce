"""Which frames moved the clip decision: per-frame attribution on cached per-frame features.

``temporal_importance(model, features)`` runs every method of explain/attribution.py on the output of
``model.forward_features`` (cached by the pipeline), so only ``forward_head`` (LSTM + head) runs here,
and picks the default one for ``importance``:

- ``integrated_gradients`` (default, see ``DEFAULT_METHOD``): signed, sums to m(clip) - m(baseline);
- ``occlusion``: signed, leave-one-frame-out Δmargin with the frame replaced by the clip's median feature;
- ``grad_x_input``: signed, first-order;
- ``grad_norm``: RLNet Algorithm 1, ||d logit_target / d f_t||_2, unsigned *sensitivity* (kept by name;
  it is biased towards early frames by the LSTM + mean pooling and does not say which way a frame pushed).

Signed values: positive = the frame pushes the verdict towards FAKE (margin logit_fake - logit_real).
Also computed: a per-frame p(fake) curve ``softmax(model.frame_logits(features))[..., 1]``: the head applied
to the LSTM output at step t, which has seen frames 1..t only (a running decision, not frame t alone).

Why IG is the default: on the dev set's public fakes, deleting its top-3 frames (overwriting them with a
neighbour, as an edit of the video would) lowers the fake margin more than deleting the top-3 of the
other methods, and it shows no position trend (detector/training/faithfulness.py; figures in the
weights' sidecar, metrics.faithfulness).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from explain.attribution import COMPLETENESS_TOL, DEFAULT_BASELINE, DEFAULT_STEPS, top_frames
from explain.gradcam import eval_mode, target_index
from explain.methods import TEMPORAL, IntegratedGradients

# Names from the one registry (explain/methods.py), in report order.
METHODS = tuple(TEMPORAL)
SIGNED = tuple(name for name, m in TEMPORAL.items() if m.signed)
DEFAULT_METHOD = IntegratedGradients.name
TOP_K = 3
STREAMS = ("appearance", "texture_renewal")  # ResNeXt50 features of each frame; residual pairs between frames


@dataclass
class TemporalResult:
    """Per-frame scores of one face track, all float32 (T,).

    importance: the ``method`` (default DEFAULT_METHOD) values, signed (positive = towards FAKE).
    methods: every method's values by name (METHODS). frame_p_fake: p(fake) of the LSTM output at step t
    (frames 1..t seen). p_fake: the clip's p(fake). margin / baseline_margin: m(f), m(baseline);
    completeness_error: sum(IG) - (margin - baseline_margin). top: positions of the TOP_K largest
    positive values of ``importance`` (the frames that moved the verdict towards FAKE most), largest first.
    """

    importance: np.ndarray
    method: str
    methods: dict[str, np.ndarray]
    frame_p_fake: np.ndarray
    p_fake: float
    margin: float
    baseline_margin: float
    completeness_error: float
    top: list[int]
    target: int
    baseline: str = DEFAULT_BASELINE
    steps: int = DEFAULT_STEPS
    tolerance: float = field(default=COMPLETENESS_TOL)
    # A model with the residual-pair stream (detector/residual.py): Integrated Gradients per frame split by
    # stream, {"appearance": (T,), "texture_renewal": (T,)}, each pair summing to the IG value; else None.
    streams: dict[str, np.ndarray] | None = None

    @property
    def grad_norm(self) -> np.ndarray:
        return self.methods["grad_norm"]


def minmax(v: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a single value or a constant vector maps to ones (every frame equally important)."""
    v = np.asarray(v, np.float32)
    span = float(v.max() - v.min()) if v.size else 0.0
    if v.size <= 1 or span <= 1e-12:
        return np.ones_like(v)
    return ((v - v.min()) / span).astype(np.float32)


def temporal_importance(model: nn.Module, features: torch.Tensor, target: str | int = "fake",
                        method: str = DEFAULT_METHOD, baseline: str = DEFAULT_BASELINE,
                        steps: int = DEFAULT_STEPS) -> TemporalResult:
    """features: (1, T, C) from ``model.forward_features`` (inference tensors are fine) -> TemporalResult.

    target ("fake"/"real") only changes ``grad_norm`` (whose logit's sensitivity); the signed methods
    always explain the margin fake - real. The model stays in eval mode (dropout off).
    """
    idx = target_index(target)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if features.dim() != 3 or features.shape[0] != 1:
        raise ValueError(f"features must be (1, T, C), not {tuple(features.shape)}")
    split = getattr(model, "rgb_features", None) if getattr(model, "residual", None) is not None else None
    # Integrated Gradients once in full (margins and completeness are reported); every other method by name.
    ig = TEMPORAL[IntegratedGradients.name].explain(model, features, baseline, steps, split)
    methods = {name: ig.attribution if name == IntegratedGradients.name else m(model, features, idx, baseline, steps)
               for name, m in TEMPORAL.items()}
    with eval_mode(model), torch.autocast("cpu", enabled=False), torch.no_grad():
        f = features.detach().float()
        frame_p = torch.softmax(model.frame_logits(f), -1)[0, :, 1].cpu().numpy().astype(np.float32)
        p = float(torch.softmax(model.forward_head(f), -1)[0, 1])
    imp = methods[method]
    streams = None if ig.streams is None else dict(zip(STREAMS, ig.streams))
    return TemporalResult(imp, method, methods, frame_p, p, ig.margin, ig.baseline_margin, ig.error,
                          top_frames(imp, TOP_K), idx, baseline, steps, streams=streams)
