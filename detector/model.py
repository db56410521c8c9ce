"""ResNeXt50 + LSTM video classifier, and the legacy reference layout.

Architecture (ReLSTM and RLNet papers): per-frame ResNeXt50_32x4d trunk (torchvision's
architecture and key names, built in detector/backbones.py without importing torchvision; no ImageNet
weights here), global average pool -> 2048 features, an LSTM **with
batch_first=True** so it runs across the T frames, the mean of its outputs over time, dropout, and a
Linear head with 2 logits, index 1 = FAKE.

Split as timm does: `forward_features(clip) -> (N, T, 2048)` and `forward_head(features) -> (N, 2)`, so
the Grad-CAM target layer is `model.backbone.layer4` and the temporal-gradient input is the output of
`forward_features`, by name. ImageNet normalisation lives inside the model (detectron2's pixel_mean
buffer): callers pass uint8 RGB crops.

`LegacyReferenceModel` reproduces the widely copied reference ResNeXt-LSTM so its checkpoints load
unchanged: keys `model.N.*`, `lstm.weight_ih_l0`, `lstm.weight_hh_l0` (the 4th positional argument of
`nn.LSTM(2048, 2048, 1, bidirectional)` is `bias`, so there are no biases), `linear1.*`; BGR input;
no `batch_first`, so the LSTM treats the frames as a batch of one-step sequences and the last one is
taken: **only the last frame decides**. Its output is re-ordered to our convention (index 1 = FAKE).
"""

from __future__ import annotations

import torch
from torch import nn

from detector.backbones import Trunk as Backbone
from detector.residual import ResidualPairStream
from detector.spec import ModelSpec

FAKE = 1


def pixel_stat(values: tuple[float, ...]) -> torch.Tensor:
    """A per-channel mean or std on the 0-1 scale as a (1, 3, 1, 1) buffer on the 0-255 scale.

    Scaled in Python, not by a tensor op: under load_weights' meta-device context an op goes through
    torch's function mode, whose first use imports torch._dynamo (~2 s of a cold start).
    """
    return torch.tensor([v * 255.0 for v in values]).view(1, 3, 1, 1)


class _Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], bgr: bool = False) -> None:
        super().__init__()
        # Non-persistent: the sidecar holds mean/std, the safetensors file only learned weights.
        self.register_buffer("mean", pixel_stat(mean), persistent=False)
        self.register_buffer("std", pixel_stat(std), persistent=False)
        self.bgr = bgr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W), RGB, uint8 or float in [0, 255]."""
        x = x.float()
        if self.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std


class ResNeXtLSTM(nn.Module):
    """Clip classifier. Input uint8 (N, T, 3, H, W) RGB; output logits (N, 2), index 1 = FAKE.

    With `spec.residual_width` > 0 a second stream (detector/residual.py) turns each pair of consecutive
    frames' high-pass residuals into 4 * width features; they are concatenated after the 2,048 ResNeXt50
    features of the same step, so `forward_features` gives (N, T, 2048 + 4 * width) and the LSTM, the
    explanations on features and Grad-CAM on `backbone.layer4` work unchanged. `rgb_features` = 2048
    tells the two apart.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.normalize = _Normalize(spec.mean, spec.std)
        self.backbone = Backbone(spec.backbone)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.residual = ResidualPairStream(spec.residual_width) if spec.residual_width else None
        self.rgb_features = self.backbone.num_features
        width = self.rgb_features + (self.residual.num_features if self.residual is not None else 0)
        self.lstm = nn.LSTM(width, spec.lstm_hidden, spec.lstm_layers,
                            batch_first=True, bidirectional=spec.bidirectional,
                            dropout=spec.dropout if spec.lstm_layers > 1 else 0.0)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.lstm_hidden * (2 if spec.bidirectional else 1), 2)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, 3, H, W) RGB uint8/float -> (B, C) pooled features."""
        return self.pool(self.backbone(self.normalize(frames))).flatten(1)

    def forward_features(self, clip: torch.Tensor, partners: torch.Tensor | None = None,
                         rgb: torch.Tensor | None = None) -> torch.Tensor:
        """clip: (N, T, 3, H, W) RGB uint8/float [0, 255] -> per-frame features (N, T, C).

        partners: for a model whose spec pairs each frame with the next one (`residual_pairs` "next"), the
        video frame right after each of clip's frames, cropped with the same box, (N, T, 3, H, W); only the
        residual stream reads them. None there (a still image, a clip of one frame): the stream gives 0.
        rgb: the trunk's pooled features (N, T, 2048) when another engine computed them (detector/runtime.py);
        None runs the trunk here.
        """
        n, t = clip.shape[:2]
        rgb = self.frame_features(clip.flatten(0, 1)).view(n, t, -1) if rgb is None else rgb
        if self.residual is None:
            return rgb
        if not self.has_pairs(t, partners is not None):
            res = torch.zeros(n, t, self.residual.num_features, device=clip.device)
        else:
            res = self.residual(clip, partners if self.spec.residual_pairs == "next" else None)
        return torch.cat([rgb.float(), res], -1)

    def has_pairs(self, t: int, partners: bool) -> bool:
        """Whether the residual stream has a frame pair to read for a clip of t frames, given successors or
        not: a "next" model needs them, a "sampled" one two frames. Without a pair it gives 0 ("no evidence")
        and never runs its layers (explain/gradcam.py asks this for the texture map)."""
        return partners if self.spec.residual_pairs == "next" else t >= 2

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """features: (N, T, C) -> logits (N, 2). The mean over time makes every frame count."""
        out, _ = self.lstm(features.float())
        return self.head(self.dropout(out.mean(dim=1)))

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame logits (N, T, 2): the head applied to the LSTM output at every step.

        Used for the per-frame p(fake) curve; the clip logit is the mean of these before the Linear
        (the Linear is affine, so the clip logit equals the mean of these logits).
        """
        out, _ = self.lstm(features.float())
        return self.head(out)

    def forward(self, clip: torch.Tensor, partners: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(clip, partners))


class LegacyReferenceModel(nn.Module):
    """Checkpoints of the widely copied reference ResNeXt-LSTM, loaded unchanged (see module docstring).

    Input uint8 (N, T, 3, H, W) RGB (flipped to BGR inside, as the reference was fed); output logits
    (N, 2) re-ordered so index 1 = FAKE.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.normalize = _Normalize(spec.mean, spec.std, bgr=True)
        trunk = Backbone(spec.backbone)
        # Same children order as torchvision's resnet minus avgpool and fc -> keys model.0 .. model.7.
        self.model = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool,
                                   trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.lstm = nn.LSTM(2048, spec.lstm_hidden, 1, False)  # bias=False, no batch_first: the bug
        self.dropout = nn.Dropout(0.4)
        self.linear1 = nn.Linear(spec.lstm_hidden, 2)

    @property
    def backbone(self) -> nn.Module:
        return self.model

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        n, t = clip.shape[:2]
        x = self.normalize(clip.flatten(0, 1))
        return self.pool(self.model(x)).flatten(1).view(n, t, -1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(features.float())  # read as (time=N, batch=T): each frame alone
        logits = self.linear1(self.dropout(out[:, -1, :]))  # the last frame only
        return logits.flip(-1)  # reference index 1 = REAL -> ours index 1 = FAKE

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(features.float())
        return self.linear1(out).flip(-1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(clip))


# name -> (architecture defaults). Weight files say recipe and data: resnext50_lstm.<data>_<frames>.
REGISTRY: dict[str, dict] = {
    "resnext50_lstm": dict(architecture="resnext50_lstm", backbone="resnext50_32x4d", lstm_hidden=256,
                           lstm_layers=1, bidirectional=False, dropout=0.4),
    "resnext50_bilstm": dict(architecture="resnext50_lstm", backbone="resnext50_32x4d", lstm_hidden=256,
                             lstm_layers=1, bidirectional=True, dropout=0.4),
    "resnet50_lstm2x256": dict(architecture="resnext50_lstm", backbone="resnet50", lstm_hidden=256,
                               lstm_layers=2, bidirectional=False, dropout=0.3),
    "legacy_reference": dict(architecture="legacy_reference", backbone="resnext50_32x4d", lstm_hidden=2048,
                             lstm_layers=1, bidirectional=False, dropout=0.4, channel_order="BGR"),
}


def spec_for(name: str, **overrides) -> ModelSpec:
    """A ModelSpec for a registry entry, with any field overridden."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}")
    return ModelSpec(name=name, **{**REGISTRY[name], **overrides})


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the (randomly initialised) network a spec describes. No I/O: load weights separately."""
    if spec.architecture == "legacy_reference":
        return LegacyReferenceModel(spec)
    if spec.architecture == "resnext50_lstm":
        return ResNeXtLSTM(spec)
    raise ValueError(f"unknown architecture {spec.architecture!r}")
