"""`ModelSpec`: what a weights file declares about itself (timm's PretrainedCfg idea).

A frozen dataclass saved as the JSON sidecar beside every `.safetensors` file: architecture, input size,
sequence length, mean/std, label names, threshold, calibration, training data, metrics, limits, licence
and the tensor file's sha256. `detector.model` builds a network from it; `detector.weights` reads and
writes it. It lives in its own module so that neither of those two imports the other.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from detector.errors import WeightsError


@dataclass(frozen=True)
class TrunkSpec:
    """A ResNet-family trunk's layout (detector/backbones.py builds it in PyTorch, detector/onnx_trunk.py as an
    ONNX graph straight from the weights)."""

    block: str  # "basic" (two 3x3 convolutions) or "bottleneck" (1x1, grouped 3x3, 1x1)
    depths: tuple[int, int, int, int]  # blocks per stage
    groups: int = 1
    width_per_group: int = 64


TRUNKS = {
    "resnet18": TrunkSpec("basic", (2, 2, 2, 2)),
    "resnet50": TrunkSpec("bottleneck", (3, 4, 6, 3)),
    "resnext50_32x4d": TrunkSpec("bottleneck", (3, 4, 6, 3), groups=32, width_per_group=4),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model and to say honestly what it is."""

    name: str
    architecture: str = "resnext50_lstm"  # or "legacy_reference"
    backbone: str = "resnext50_32x4d"
    lstm_hidden: int = 256
    lstm_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.4
    # Width of the residual-pair stream (detector/residual.py) whose 4 * width features per frame join the
    # ResNeXt50's at the LSTM input; 0: no such stream (every sidecar written before it existed).
    residual_width: int = 0
    # What the residual stream pairs (detector/residual.py): "sampled" = consecutive sampled frames (t-1, t);
    # "next" = each sampled frame and the video frame right after it (read by the pipeline as partners).
    residual_pairs: str = "sampled"
    sequence_length: int = 20
    input_size: int = 112
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    labels: tuple[str, str] = ("REAL", "FAKE")
    threshold: float = 0.5
    # Platt/temperature parameters, threshold and INCONCLUSIVE band fitted on validation clips (see
    # detector/calibration.py); {} = not calibrated, `threshold` above applies to the raw probability.
    calibration: dict = field(default_factory=dict)
    # Measured cues added to the model's logit margin before calibration (detector/cues.py), e.g.
    # {"mouth_detail_deficit": {"weight": 1.0, "centre": 0.09, ...}}; {} = the verdict is the model's alone.
    cues: dict = field(default_factory=dict)
    trained: bool = False
    trained_on: str = "nothing: randomly initialised, UNTRAINED; its outputs mean nothing"
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    limits: tuple[str, ...] = ()
    licence: str = "Apache-2.0"
    attribution: str = ""
    weights_sha256: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise WeightsError(f"sidecar has unknown fields {sorted(unknown)}; is it from a newer version?")
        d = dict(d)
        for key in ("mean", "std", "labels", "limits"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    @property
    def display_name(self) -> str:
        return self.name if self.trained else f"{self.name} (UNTRAINED)"


def model_info(spec: ModelSpec, precision: str, engine: str) -> dict:
    """The model-card fields a report carries: which weights, how they ran (`precision`, `engine`)."""
    s = spec
    return {"name": s.name, "display_name": s.display_name, "architecture": s.architecture,
            "backbone": s.backbone, "residual_width": s.residual_width,
            "residual_pairs": s.residual_pairs if s.residual_width else None, "lstm_hidden": s.lstm_hidden,
            "bidirectional": s.bidirectional,
            "sequence_length": s.sequence_length, "input_size": s.input_size,
            "weights_sha256": s.weights_sha256, "trained": s.trained, "trained_on": s.trained_on,
            "metrics": s.metrics, "limits": list(s.limits),
            # what the verdict adds to the network's margin (detector/cues.py): the same tensors with another
            # cue block are another verdict, so a report names it beside the weights' hash
            "cues": {k: {"weight": c["weight"], "centre": c["centre"]} for k, c in s.cues.items()},
            "precision": precision, "engine": engine}
