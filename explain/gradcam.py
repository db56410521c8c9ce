"""Grad-CAM (Selvaraju et al., 2017, arXiv:1610.02391) for every frame of a clip, on two layers.

- ``"appearance"``: the last ResNeXt block (``backbone.layer4``), what one frame looks like.
- ``"texture"`` (models with a residual-pair stream, detector/residual.py): the stream's last ReLU, where
  the finest grain between frame t and the frame it is paired with (its successor, or the previous sampled
  frame) pushed the clip logit. When the stream carries the decision (issue 15), this is the map of the
  evidence the model used; the appearance map then shows a minor path.

The map of frame t is ``relu(sum_c w_c * A_c)`` where A = the target layer's output for frame t and
``w_c = mean_xy d s / d A_c``. s is the **clip** decision (LSTM over all T frames), so each frame's map says
where in that frame the clip decision looked. ``objective`` (OBJECTIVES) picks s: ``"margin"`` =
logit_target - logit_other, what the verdict is made from (calibration reads the margin, and the temporal
attributions explain it too), or ``"logit"`` = logit_target alone, Grad-CAM's textbook choice. With a
softmax over two classes only the margin moves the verdict: a feature that raises both logits equally
changes nothing, yet the logit's gradient counts it. On the default weights the two give the same maps
(38 dev fakes at 60 frames: median correlation 0.995 appearance, 0.9996 texture; detector/training/
faithfulness.py --cam-objective), so the default stays "logit", the maps its deletion test measured.

Three implementations, same maps (within ~0.003 after normalisation, measured on the project machine):

- ``method="cached"`` (what an analysis with explanations uses): the activations kept from the analysis's own
  model pass (runtime.Detector.features_and_maps) and the gradient of the clip score w.r.t. the pooled
  features, one backward pass through LSTM + head (milliseconds). Exact because each target layer is followed
  by a global average pool (see `_cached`). The trunk does not run again: at 60 frames this took Grad-CAM from
  ~2.3 s (a second forward pass of the trunk) to ~0.05 s on a 2-core Zen 3 (issue 41).

- ``method="fast"`` (default when no activations are at hand): the trunk runs without autograd; a forward hook
  on the target layer turns its output into a fresh leaf and switches autograd on, so only pool -> LSTM -> head are
  recorded and ``torch.autograd.grad`` stops at the layer's output; nothing flows into backbone
  weights. About 2x cheaper than the library (0.99 s vs 1.85 s at T=20 on the project machine; here
  2x-4x) and the only one that meets the "explanation <= 2.5x classification" budget
  (benchmarks/bench_explain.py), hence the default.
- ``method="library"``: jacobgil/pytorch-grad-cam's ``GradCAM``. It back-propagates into every backbone
  weight (slower) and treats a 5-D input as a 3-D volume, so the model is wrapped to take the T frames
  as a batch (T, 3, H, W) and return the clip's logits broadcast to (T, 2). Its import costs ~7 s, so
  it is imported lazily. Kept as the reference implementation.

Both run in fp32 (pytorch-grad-cam fails under bf16 autocast), with the model in eval mode (dropout
off; the previous mode is restored), under ``torch.enable_grad`` and with hooks removed afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

TARGETS = {"fake": 1, "real": 0}
LAYERS = ("appearance", "texture")
METHODS = ("cached", "fast", "library")
DEFAULT_METHOD = "fast"
OBJECTIVES = ("margin", "logit")
DEFAULT_OBJECTIVE = "logit"


@dataclass
class CamResult:
    """Grad-CAM maps of one face track.

    maps: float32 (T, H, W), each frame min-max normalised to [0, 1] (as pytorch-grad-cam does).
    raw: float32 (T, H, W), the same maps before normalisation (relu'd, upsampled): comparable across
        frames, so they show *which frames* matter, which per-frame normalisation hides.
    logits: float32 (2,), the clip logits [real, fake]. target: 0 (real) or 1 (fake).
    """

    maps: np.ndarray
    raw: np.ndarray
    logits: np.ndarray
    target: int
    method: str

    @property
    def peaks(self) -> np.ndarray:
        """Per-frame maximum of the raw map, float32 (T,)."""
        return self.raw.reshape(len(self.raw), -1).max(axis=1)


def target_layer(model: nn.Module, layer: str = "appearance") -> nn.Module:
    """"appearance": the last ResNeXt block, ``model.backbone.layer4`` (ResNeXtLSTM) or ``model.model[7]``
    (legacy); "texture": the residual-pair stream's last ReLU (its (pairs, 4 * width, H/16, W/16) output)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, not {layer!r}")
    if layer == "texture":
        if getattr(model, "residual", None) is None:
            raise ValueError("this model has no residual-pair stream: texture Grad-CAM needs one (use 'appearance')")
        return [m for m in model.residual.body if isinstance(m, nn.ReLU)][-1]
    backbone = model.backbone
    if hasattr(backbone, "layer4"):
        return backbone.layer4
    return backbone[7]  # LegacyReferenceModel: nn.Sequential(conv1, bn1, relu, maxpool, layer1..layer4)


def target_index(target: str | int) -> int:
    if isinstance(target, int) and target in (0, 1):
        return target
    if target not in TARGETS:
        raise ValueError(f"target must be 'fake' or 'real', not {target!r}")
    return TARGETS[target]


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Run with the model in eval mode (dropout off) and give it back in the mode it was in."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def _as_frames(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """crops: uint8 (T, H, W, 3) RGB numpy, or a tensor (T, 3, H, W) -> float32 (T, 3, H, W) in [0, 255]."""
    if isinstance(crops, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return crops.float()


def _normalise(cams: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cams: relu'd (T, h, w) at layer resolution -> (maps in [0, 1], raw), both (T, H, W) float32.

    Same order as pytorch-grad-cam's scale_cam_image: min-max per frame, then bilinear resize.
    """
    h, w = size
    maps, raw = [], []
    for c in cams.astype(np.float32):
        n = c - c.min()
        n = n / (1e-7 + n.max())
        maps.append(cv2.resize(n, (w, h)))
        raw.append(cv2.resize(c, (w, h)))
    return np.clip(np.stack(maps), 0, 1).astype(np.float32), np.maximum(np.stack(raw), 0).astype(np.float32)


def _cam_from(acts: torch.Tensor, grads: torch.Tensor) -> np.ndarray:
    """acts, grads: (T, C, h, w) -> relu(sum_c mean_xy(grad_c) * A_c), float32 (T, h, w)."""
    w = grads.float().mean(dim=(2, 3), keepdim=True)
    return torch.relu((w * acts.float()).sum(dim=1)).detach().cpu().numpy()


def _run(model: nn.Module, x: torch.Tensor, partners: torch.Tensor | None) -> torch.Tensor:
    """Clip logits (1, 2) of frames x (T, 3, H, W), with their successors for a "next"-pairing model."""
    return model(x.unsqueeze(0)) if partners is None else model(x.unsqueeze(0), partners.unsqueeze(0))


def score(logits: torch.Tensor, idx: int, objective: str = DEFAULT_OBJECTIVE) -> torch.Tensor:
    """The explained scalar of clip logits (2,) [real, fake]: logit idx, or logit idx - the other one."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    return logits[idx] - logits[1 - idx] if objective == "margin" else logits[idx]


def _fast(model: nn.Module, x: torch.Tensor, idx: int, partners: torch.Tensor | None = None,
          layers: tuple[str, ...] = ("appearance",),
          objective: str = DEFAULT_OBJECTIVE) -> tuple[list[np.ndarray], np.ndarray]:
    """One forward and one backward pass for every layer: (cams per layer, (T|P, h, w) each; logits (2,))."""
    store: dict[str, torch.Tensor] = {}

    def cut(name):
        def hook(_module, _inp, out):
            # What ran up to here ran without autograd; from here on (pool -> LSTM -> head) record a graph
            # that starts at this layer's output, a fresh leaf: the backward pass stops here.
            # torch.no_grad() below restores the caller's grad mode on exit.
            torch.set_grad_enabled(True)
            a = out.detach().requires_grad_(True)
            store[name] = a
            return a
        return hook

    handles = [target_layer(model, name).register_forward_hook(cut(name)) for name in layers]
    try:
        with torch.no_grad():
            logits = _run(model, x, partners)  # (1, 2)
        with torch.enable_grad():
            grads = torch.autograd.grad(score(logits[0], idx, objective), [store[name] for name in layers],
                                        allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    cams = [_cam_from(store[name], torch.zeros_like(store[name]) if g is None else g)
            for name, g in zip(layers, grads)]
    return cams, logits.detach()[0].cpu().numpy()


def _cached(model: nn.Module, features: torch.Tensor, maps: dict[str, torch.Tensor], idx: int,
            layers: tuple[str, ...] = ("appearance",),
            objective: str = DEFAULT_OBJECTIVE) -> tuple[list[np.ndarray], np.ndarray]:
    """Grad-CAM from the analysis pass's own activations: one backward pass through the LSTM and head only.

    Every target layer is followed by a global average pool into the features the LSTM reads, so
    d s / d A_c(x, y) = (d s / d f_c) / (h * w) at every position and Grad-CAM's weight w_c = mean_xy of it is
    (d s / d f_c) / (h * w): the feature gradient alone, no pass through any convolution. features: (1, T, C) as
    the analysis computed them; maps: {"appearance": (T, 2048, h, w), "texture": (P, 4 * width, h', w')}
    (runtime.Detector.features_and_maps). Same maps as "fast" up to float rounding (tests/test_explain.py).
    """
    split = getattr(model, "rgb_features", None) if getattr(model, "residual", None) is not None else None
    f = features.detach().clone().float().requires_grad_(True)
    with torch.enable_grad():
        logits = model.forward_head(f)
        (g,) = torch.autograd.grad(score(logits[0], idx, objective), [f])
    g, feats = g[0], features[0].float()  # (T, C)
    cams = []
    for name in layers:
        acts = maps[name].float()
        if name == "appearance":
            weights = g[:, :split] if split else g
        else:
            weights, fx = g[:, split:], feats[:, split:]
            if len(acts) == len(weights) - 1:  # "sampled" pairs: step 0 repeats pair 0, step t is pair t-1
                weights, fx = torch.cat([weights[:1] + weights[1:2], weights[2:]]), fx[1:]
            # A pair the stream set to "no evidence" (duplicate crops) fed the LSTM zeros, not its activations.
            weights = weights.masked_fill((fx == 0).all(dim=1, keepdim=True), 0.0)
        # The pool's backward spreads d s / d f_c evenly over the h * w positions: that is d s / d A.
        grads = (weights / (acts.shape[-2] * acts.shape[-1]))[:, :, None, None].expand_as(acts)
        cams.append(_cam_from(acts, grads))
    return cams, logits.detach()[0].cpu().numpy()


class ClipAsBatch(nn.Module):
    """Adapter for pytorch-grad-cam: input the T frames as a batch (T, 3, H, W), output the *clip's*
    logits (1, 2) expanded to (T, 2), so every frame's map is for the clip decision.

    The library treats a 5-D (N, T, 3, H, W) input as a 3-D volume and fails; this keeps it 2-D.
    """

    def __init__(self, model: nn.Module, partners: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.partners = partners

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        logits = _run(self.model, frames, self.partners)  # (1, 2)
        return logits.expand(frames.shape[0], -1)  # (T, 2)


def _library(model: nn.Module, x: torch.Tensor, idx: int, partners: torch.Tensor | None = None,
             layers: tuple[str, ...] = ("appearance",),
             objective: str = DEFAULT_OBJECTIVE) -> tuple[list[np.ndarray], np.ndarray]:
    """pytorch-grad-cam, one run per layer (the reference, not the fast path)."""
    from pytorch_grad_cam import GradCAM  # ~7 s import: only when asked for

    t = x.shape[0]

    def target(row: torch.Tensor) -> torch.Tensor:  # the library calls it on each output row (2,)
        return score(row, idx, objective)

    wrapper = ClipAsBatch(model, partners)
    out, logits = [], None
    for name in layers:
        cams = None
        try:
            with torch.enable_grad(), GradCAM(model=wrapper, target_layers=[target_layer(model, name)]) as cam:
                cam(input_tensor=x, targets=[target] * t)
                # The loss summed the clip score T times (once per row): divide to get d score / d A.
                acts = cam.activations_and_grads.activations[0]
                grads = cam.activations_and_grads.gradients[0] / t
                cams = _cam_from(acts, grads)
                logits = cam.outputs.detach()[0].cpu().numpy()
        finally:
            # The library accumulates .grad into every weight of the shared model; drop them.
            model.zero_grad(set_to_none=True)
        if cams is None:  # GradCAM.__exit__ swallows IndexError (it only prints it)
            raise RuntimeError("pytorch-grad-cam failed (IndexError swallowed by its context manager)")
        out.append(cams)
    return out, logits


def _per_frame(cams: np.ndarray, t: int) -> np.ndarray:
    """A texture map per pair -> one per frame (T, h, w). "next" pairs: pair t is frame t's. Sampled pairs
    (t-1, t) (P = T-1): frame t gets pair t-1's map, frame 0 pair 0's (the model repeats step 1 at step 0)."""
    if len(cams) == t:
        return cams
    if len(cams) != t - 1:
        raise RuntimeError(f"{len(cams)} texture maps for {t} frames: expected {t} or {t - 1} pairs")
    return np.concatenate([cams[:1], cams])


def gradcams(model: nn.Module, crops: np.ndarray | torch.Tensor, target: str | int = "fake",
             method: str = DEFAULT_METHOD, partners: np.ndarray | torch.Tensor | None = None,
             layers: tuple[str, ...] = ("appearance",), objective: str = DEFAULT_OBJECTIVE,
             features: torch.Tensor | None = None,
             maps: dict[str, torch.Tensor] | None = None) -> dict[str, CamResult]:
    """Grad-CAM of the clip decision for every frame of one face track, on each of `layers` (LAYERS).

    model: ResNeXtLSTM or LegacyReferenceModel (anything with ``backbone`` and ``forward``; "texture" needs
    a residual stream). crops: uint8 (T, H, W, 3) RGB (or a tensor (T, 3, H, W) in [0, 255]); T = 1 for an
    image. target: "fake" (logit index 1) or "real" (index 0). method: "fast" (default: every layer in one
    forward and backward pass) or "library". objective: "margin" or "logit" (OBJECTIVES, module docstring).
    features, maps: for method "cached", the analysis pass's features (1, T, C) and activations (see `_cached`).
    partners: the crops of each frame's successor (as crops), for a model that pairs "next" frames, so the
    explained logit is the one the analysis reported; the maps are of `crops` (the texture map of frame t
    covers the pair frame t belongs to). A pair the stream ignores (duplicate crops, no partner) gets 0.
    Returns {layer: CamResult} with maps and raw maps of shape (T, H, W).
    """
    idx = target_index(target)
    score(torch.zeros(2), idx, objective)  # a clear error before any work
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "cached" and (features is None or maps is None):
        raise ValueError("method 'cached' needs the analysis pass's features and maps "
                         "(runtime.Detector.features_and_maps); use method 'fast' without them")
    for name in layers:
        target_layer(model, name)  # a clear error before any work
    dev = next(model.parameters()).device
    x = _as_frames(crops).to(dev)
    nx = None if partners is None else _as_frames(partners).to(dev)
    t = x.shape[0]
    # No pair to compare (one frame, or a "next" model without successors): the stream does not run, and
    # its map is 0 everywhere, the "no evidence" it feeds the LSTM.
    no_pair = "texture" in layers and not model.has_pairs(t, nx is not None)
    run = tuple(n for n in layers if not (n == "texture" and no_pair))
    with eval_mode(model), torch.autocast("cpu", enabled=False):
        if run and method == "cached":
            cams, logits = _cached(model, features, maps, idx, run, objective)
        elif run:
            cams, logits = (_fast if method == "fast" else _library)(model, x, idx, nx, run, objective)
        else:
            with torch.no_grad():
                cams, logits = [], _run(model, x, nx)[0].cpu().numpy()
    logits = np.asarray(logits, np.float32)
    size = tuple(x.shape[-2:])
    out = {}
    for name in layers:
        if name in run:
            c = cams[run.index(name)]
            maps, raw = _normalise(_per_frame(c, t) if name == "texture" else c, size)
        else:
            maps = raw = np.zeros((t, *size), np.float32)
        out[name] = CamResult(maps, raw, logits, idx, method)
    return out


def gradcam(model: nn.Module, crops: np.ndarray | torch.Tensor, target: str | int = "fake",
            method: str = DEFAULT_METHOD, partners: np.ndarray | torch.Tensor | None = None,
            layer: str = "appearance", objective: str = DEFAULT_OBJECTIVE) -> CamResult:
    """Grad-CAM of the clip decision on one layer ("appearance" or "texture"); see `gradcams`.
    Returns CamResult with maps and raw maps of shape (T, H, W)."""
    return gradcams(model, crops, target, method, partners, (layer,), objective)[layer]
