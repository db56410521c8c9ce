"""The residual-pair stream: what happens to the finest texture *between* consecutive sampled frames.

Why a second stream: a ResNeXt50 pools every frame to 2,048 features before the LSTM sees it, so it
cannot compare the pixels of two frames. The trace that transferred to public clips in issue 15's probes
(benchmarks/probe_residual.py, probe_consistency.py) lives exactly there: a camera renews its sensor
noise every frame, a warping animator (first-order motion, LivePortrait, ...) carries one frame's grain
along with the warp, and a face swapper regenerates the face every frame with a texture that flickers
differently from the camera's. This stream looks at pairs of high-pass residuals at full resolution.

Input of `ResidualPairStream`: uint8 / float (N, T, 3, H, W) RGB in [0, 255] (the model's own input).
Per frame: grey = mean of R, G, B; residual = grey - GaussianBlur(grey, sigma 1) (OpenCV's 9-tap kernel,
reflect-101 borders, in fp32 whatever the autocast: a bf16 difference of values near 255 would be all
rounding), divided by 8. Step t >= 1 sees the pair (residual t-1, residual t); step 0 repeats step 1.
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


def residual_pairs(clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """clip: (N, T, 3, H, W) RGB in [0, 255], T >= 2 -> (pairs float32 (N, T-1, 2, H, W), same (N, T-1) bool).

    pairs[:, t] = (residual of frame t, residual of frame t+1) / SCALE; same[:, t]: the two crops are
    (nearly) identical (mean |grey difference| < DUPLICATE_MAD), so the pair carries no evidence.
    """
    n, t = clip.shape[:2]
    grey = clip.float().mean(2, keepdim=True)  # (N, T, 1, H, W)
    res = highpass(grey.flatten(0, 1)).view(n, t, *grey.shape[-2:]) / SCALE
    same = (grey[:, 1:] - grey[:, :-1]).abs().mean(dim=(2, 3, 4)) < DUPLICATE_MAD
    return torch.stack([res[:, :-1], res[:, 1:]], 2), same


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

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        n, t = clip.shape[:2]
        dev = clip.device
        if t < 2:  # a still image: no pair, no evidence
            return torch.zeros(n, t, self.num_features, device=dev)
        # fp32 throughout: the stream costs ~1 % of the backbone, and bf16 residuals would be rounding noise.
        with torch.autocast(dev.type, enabled=False):
            pairs, same = residual_pairs(clip)
            f = self.pair_features(pairs.flatten(0, 1).contiguous()).view(n, t - 1, -1)
            f = f.masked_fill(same.unsqueeze(-1), 0.0)
        return torch.cat([f[:, :1], f], 1)  # step 0 repeats step 1: (N, T, C)

