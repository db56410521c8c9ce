"""Heatmaps over face crops and over the full frame.

Colour order: every image in and out is uint8 **RGB**. ``cv2.applyColorMap(..., COLORMAP_JET)`` returns
BGR; it is converted to RGB here (red = high, blue = low). Convert to BGR only when writing with cv2.
"""

from __future__ import annotations

import cv2
import numpy as np

ALPHA = 0.45  # heatmap weight in the blend


def colorize(m: np.ndarray) -> np.ndarray:
    """m: float (H, W) in [0, 1] -> uint8 (H, W, 3) RGB, JET colour map."""
    u8 = np.uint8(np.clip(m, 0, 1) * 255 + 0.5)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def blend(img: np.ndarray, m: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """img: uint8 (H, W, 3) RGB, m: float (H, W) in [0, 1] (resized to img if needed) -> uint8 RGB."""
    if m.shape != img.shape[:2]:
        m = cv2.resize(m.astype(np.float32), (img.shape[1], img.shape[0]))
    return cv2.addWeighted(img, 1 - alpha, colorize(m), alpha, 0)


def overlay_crops(crops: np.ndarray, maps: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """crops: uint8 (T, h, w, 3) RGB, maps: (T, h, w) in [0, 1] -> uint8 (T, h, w, 3) RGB."""
    return np.stack([blend(c, m, alpha) for c, m in zip(crops, maps)])


def overlay_frame(frame: np.ndarray, m: np.ndarray, box: list[float], margin: float = 0.3,
                  alpha: float = ALPHA, out: np.ndarray | None = None) -> np.ndarray:
    """Map a crop's heatmap back into the full frame.

    frame: uint8 (H, W, 3) RGB; m: (h, w) in [0, 1] over the 112x112 crop; box: [x0, y0, x1, y1] face box
    in frame pixels; margin: the FaceConfig margin the crop was cut with. The map is resized to the
    square crop window (``detector.faces.crop_box``), clipped to the frame, and blended only there.
    Returns a new uint8 (H, W, 3) RGB frame, or writes it into `out` (same shape; e.g. a slot of a
    preallocated (T, H, W, 3) array, which saves stacking T full frames afterwards) and returns that.
    """
    from detector.faces import Box, crop_box

    x0, y0, x1, y1 = crop_box(Box(*map(float, box)), frame.shape, margin)
    heat = colorize(cv2.resize(m.astype(np.float32), (x1 - x0, y1 - y0)))
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if out is None:
        out = frame.copy()
    else:
        out[...] = frame
    if fx1 <= fx0 or fy1 <= fy0:
        return out
    region = out[fy0:fy1, fx0:fx1]
    hp = heat[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    out[fy0:fy1, fx0:fx1] = cv2.addWeighted(region, 1 - alpha, hp, alpha, 0)
    cv2.rectangle(out, (fx0, fy0), (fx1 - 1, fy1 - 1), (255, 255, 255), 1)
    return out
