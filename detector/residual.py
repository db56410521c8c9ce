"""The residual-pair stream: what happens to the finest texture *between* consecutive sampled frames.

Why a second stream: a ResNeXt50 pools every frame to 2,048 features before the LSTM sees it, so it
cannot compare the pixels of two frames. The trace that transferred to public clips in issue 15's probes
(research/probe_residual.py, probe_consistency.py) lives exactly there: a camera renews its sensor
noise every frame, a warping animator (first-order motion, LivePortrait, ...) carries one frame's grain
along with the warp, and a face swapper regenerates the face every frame with a texture that flickers
differently from the camera's. This stream looks at pairs of high-pass residuals at full resolution.

Input of `ResidualPairStream`: uint8 / float (N, T, 3, H, W) RGB in [0, 255] (the model's own input).
Per frame: grey = mean of R, G, B; residual = grey - GaussianBlur(grey, sigma 1) (OpenCV's 9-tap kernel,
reflect-101 borders, in fp32 whatever the autocast: a bf16 difference of values near 255 would be all
rounding), divided by 8. Two ways to pair (`ModelSpec.residual_pairs`):
- "sampled": step t >= 1 sees (residual t-1, residual t) of two *sampled* frames; step 0 repeats step 1.
  Their gap in time is the clip's length / T (0.15 s in a 3-s clip, 1.5 s in a 30-s one).
- "next": step t sees (residual of frame t, residual of the video frame right after it, cropped with the
  same box), given as `partners` (N, T, 3, H, W). One frame apart whatever the clip's length, where a
  camera has renewed its noise and a warping animator has carried it 1-2 px: the trace at its cleanest,
  and at one scale for every clip (issue 15: adjacent frames rank the dev set higher than spread ones).
Output: (N, T, C) features, C = `num_features` = 4 * width.

A pair whose crops are (nearly) identical carries no evidence of either kind: a duplicated source frame
(frame-rate conversion, a stalled stream) or a still image repeated. Its features are set to 0, and so
is every step of a track with one frame: 0 is the "no evidence" input the model is trained with (stream
dropout in detector/training/train_residual.py).
"""

from __future__ import annotations

import torch
from torch import nn

SIGMA = 1.0
TAPS = 9  # cv2.GaussianBlur(float32, (0, 0), 1.0) uses round(sigma * 4 * 2 + 1) | 1 taps
SCALE = 8.0  # residuals of real crops have std ~2-8 grey levels: /8 keeps the first conv's input ~unit
DUPLICATE_MAD = 0.5  # mean |difference| in grey levels below which two crops count as the same frame


def gaussian_taps(sigma: float = SIGMA, taps: int = TAPS) -> torch.Tensor:
    """(taps,) float32 Gaussian kernel summing to 1 (cv2.getGaussianKernel's formula for sigma > 0)."""
    r = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    k = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).float()


def highpass(grey: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """grey: float (B, 1, H, W) -> grey - Gaussian blur (separable, reflect-101 borders), same shape, fp32."""
    k = gaussian_taps(sigma).to(grey.device)
    pad = (len(k) - 1) // 2
    x = grey.float()
    blur = nn.functional.pad(x, (pad, pad, 0, 0), mode="reflect")
    blur = nn.functional.conv2d(blur, k.view(1, 1, 1, -1))
    blur = nn.functional.pad(blur, (0, 0, pad, pad), mode="reflect")
    blur = nn.functional.conv2d(blur, k.view(1, 1, -1, 1))
    return x - blur


def _residuals(clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, 3, H, W) RGB -> (grey (N, T, 1, H, W), residual / SCALE (N, T, H, W)), fp32."""
    n, t = clip.shape[:2]
    grey = clip.float().mean(2, keepdim=True)
    return grey, highpass(grey.flatten(0, 1)).view(n, t, *grey.shape[-2:]) / SCALE


def residual_pairs(clip: torch.Tensor, partners: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """clip: (N, T, 3, H, W) RGB in [0, 255] -> (pairs float32 (N, P, 2, H, W), same (N, P) bool).

    Without partners (T >= 2, P = T-1): pairs[:, t] = (residual of frame t, residual of frame t+1) / SCALE.
    With partners (N, T, 3, H, W), each frame's successor in the video (P = T): pairs[:, t] = (residual of
    frame t, residual of partner t) / SCALE. same[:, t]: the two crops are (nearly) identical (mean |grey
    difference| < DUPLICATE_MAD), so the pair carries no evidence.
    """
    grey, res = _residuals(clip)
    if partners is None:
        a, b, ga, gb = res[:, :-1], res[:, 1:], grey[:, :-1], grey[:, 1:]
    else:
        if partners.shape != clip.shape:
            raise ValueError(f"partners {tuple(partners.shape)} must have the clip's shape {tuple(clip.shape)}")
        gb, b = _residuals(partners)
        a, ga = res, grey
    same = (gb - ga).abs().mean(dim=(2, 3, 4)) < DUPLICATE_MAD
    return torch.stack([a, b], 2), same


class ResidualPairStream(nn.Module):
    """(N, T, 3, H, W) RGB [0, 255] -> (N, T, 4 * width) features of consecutive frames' residual pairs.

    Five 3x3 convolutions (stride 1, then 2, 2, 2, 2) with batch norm, no pooling before the first three
    have seen both frames together (a pooled frame has lost its grain), then a global average pool.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers, c = [], 2
        for i, w in enumerate((width, width, 2 * width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(c, w, 3, 2 if i else 1, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = c

    def pair_features(self, pairs: torch.Tensor) -> torch.Tensor:
        """pairs: float (B, 2, H, W) residuals -> (B, C)."""
        return self.body(pairs)

    def forward(self, clip: torch.Tensor, partners: torch.Tensor | None = None) -> torch.Tensor:
        """clip (N, T, 3, H, W), partners None or (N, T, 3, H, W) (see `residual_pairs`) -> (N, T, C)."""
        n, t = clip.shape[:2]
        dev = clip.device
        if partners is None and t < 2:  # a still image: no pair, no evidence
            return torch.zeros(n, t, self.num_features, device=dev)
        # fp32 throughout: the stream costs ~1 % of the backbone, and bf16 residuals would be rounding noise.
        with torch.autocast(dev.type, enabled=False):
            pairs, same = residual_pairs(clip, partners)
            f = self.pair_features(pairs.flatten(0, 1).contiguous()).view(n, pairs.shape[1], -1)
            f = f.masked_fill(same.unsqueeze(-1), 0.0)
        if partners is not None:
            return f
        return torch.cat([f[:, :1], f], 1)  # step 0 repeats step 1: (N, T, C)

