"""Every explanation method behind one small interface, registered in one place.

A method is a class with a ``name`` (its key in the report), a ``description`` (what the report and the
HTML page say it measures) and ``__call__`` (what it computes), as pytorch-grad-cam's ``BaseCAM`` lets a
method fill in one function. Two kinds:

- temporal (``TemporalMethod``): ``method(model, features, target, baseline) -> float32 (T,)`` on the cached
  per-frame features (1, T, C) of one face track: which frames moved the clip decision. Signed methods
  read positive = towards FAKE (margin logit_fake - logit_real).
- spatial (``SpatialMethod``): ``method(model, crops, target, ...) -> {layer: CamResult}`` on the crops
  uint8 (T, H, W, 3) RGB of one face track: where in each frame.

``TEMPORAL`` and ``SPATIAL`` (name -> method, in report order) are the registry; explain/temporal.py and
explain/__init__.py read names and descriptions from here. Adding a method = one class + ``@register``.

Importing this module is cheap: torch loads only when a method runs.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ExplanationMethod:
    """Base class: a name, a description, and ``__call__``."""

    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str]  # "temporal" or "spatial"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class TemporalMethod(ExplanationMethod):
    """``__call__(model, features (1, T, C), target index, baseline) -> float32 (T,)``."""

    kind = "temporal"
    signed: ClassVar[bool] = True


class SpatialMethod(ExplanationMethod):
    """``__call__(model, crops uint8 (T, H, W, 3) RGB, target, ...) -> {layer: CamResult}``."""

    kind = "spatial"


TEMPORAL: dict[str, TemporalMethod] = {}
SPATIAL: dict[str, SpatialMethod] = {}


def register(cls: type[ExplanationMethod]) -> type[ExplanationMethod]:
    """Class decorator: one instance of `cls` joins its kind's registry under `cls.name`."""
    registry: dict = TEMPORAL if cls.kind == "temporal" else SPATIAL
    if cls.name in registry:
        raise ValueError(f"explanation method {cls.name!r} is registered twice")
    registry[cls.name] = cls()
    return cls


# ---- temporal -------------------------------------------------------------------------------------------


@register
class IntegratedGradients(TemporalMethod):
    name = "integrated_gradients"
    description = ("Integrated Gradients (Sundararajan et al. 2017) of the logit margin per frame, through the LSTM "
                   "on the cached features; baseline = the clip's per-channel median feature at every frame (a "
                   "typical frame of this face: what is attributed is what is specific to frame t); signed; the "
                   "values sum to margin(clip) - margin(baseline) (completeness)")

    def explain(self, model, features, baseline: str, steps: int, split: int | None = None):
        """The full result (explain.attribution.IGResult): values, margins, completeness gap, stream split."""
        from explain.attribution import integrated_gradients

        return integrated_gradients(model, features, baseline, steps, split)

    def __call__(self, model, features, target: int, baseline: str, steps: int | None = None):
        from explain.attribution import DEFAULT_STEPS

        return self.explain(model, features, baseline, steps or DEFAULT_STEPS).attribution


@register
class Occlusion(TemporalMethod):
    name = "occlusion"
    description = ("leave-one-frame-out: margin(clip) - margin(clip with frame t replaced by the clip's median "
                   "feature); signed")

    def __call__(self, model, features, target: int, baseline: str, steps: int | None = None):
        from explain.attribution import occlusion

        return occlusion(model, features, baseline)


@register
class GradXInput(TemporalMethod):
    name = "grad_x_input"
    description = "gradient x input, sum_c f_t,c * d margin / d f_t,c (first order); signed"

    def __call__(self, model, features, target: int, baseline: str, steps: int | None = None):
        from explain.attribution import gradients

        return gradients(model, features, target)[1]


@register
class GradNorm(TemporalMethod):
    name = "grad_norm"
    signed = False
    description = ("RLNet Algorithm 1: ||d logit_target / d f_t||_2, unsigned SENSITIVITY (how fast the decision "
                   "could change with frame t, not which way frame t pushed it); biased towards early frames by "
                   "the LSTM + mean pooling")

    def __call__(self, model, features, target: int, baseline: str, steps: int | None = None):
        from explain.attribution import gradients

        return gradients(model, features, target)[0]


# ---- spatial --------------------------------------------------------------------------------------------


@register
class GradCAM(SpatialMethod):
    """Grad-CAM on the ResNeXt50 (appearance) and, for a two-stream model, on the residual stream (texture),
    both in one forward and backward pass (explain/gradcam.py)."""

    name = "gradcam"
    description = ("Grad-CAM (Selvaraju et al. 2017): relu(sum_c w_c A_c), w_c = spatial mean of d logit/d A_c, "
                   "of the clip logit for every frame; maps min-max normalised per frame; cam_peak = raw "
                   "per-frame maximum (comparable across frames)")
    texture_layer = "model.residual.body (last ReLU of the residual-pair stream)"
    texture_description = ("Grad-CAM of the same clip logit on the residual-pair stream: where the finest grain of "
                           "frame t and of the frame it is paired with (its successor in the video) pushed the "
                           "verdict. Red where the grain does not renew itself as a camera's does (carried along "
                           "by a warp, or regenerated); 0 for a pair the stream ignores (duplicate frames, a still "
                           "image). cam_texture_peak = raw per-frame maximum")

    def __call__(self, model, crops, target: str = "fake", implementation: str | None = None, partners=None,
                 features=None, maps=None):
        from explain.gradcam import DEFAULT_METHOD, gradcams

        texture = getattr(model, "residual", None) is not None
        return gradcams(model, crops, target, method=implementation or DEFAULT_METHOD, partners=partners,
                        layers=("appearance", "texture") if texture else ("appearance",), features=features,
                        maps=maps)

    @staticmethod
    def layer_name(model) -> str:
        """The appearance map's layer, as the report names it."""
        return "model.model[7] (layer4)" if not hasattr(model.backbone, "layer4") else "model.backbone.layer4"
