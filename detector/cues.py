"""Measured forensic cues: fixed, hand-written statistics of a face track's crops that an analyst can read.

The learned model reads grain between frames and face appearance. One trace it misses is what most lip-sync
generators leave: they re-draw the mouth at a low resolution (Wav2Lip at 96 px, others at 128-256 px) and paste
it back, so the lower face carries less fine detail than the eyes of the same face. `mouth_detail_deficit`
measures that. It is not learned; the weight it gets in the verdict lives in the weights' sidecar
(`cues`), chosen on validation and the dev set and calibrated with the network's margin like every other
number there (detector/training/cue_weight.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detector.errors import WeightsError

# 4-neighbour Laplacian: fine detail (edges, pores, lashes, teeth) without the face's slow shading.
_LAPLACE = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)


@dataclass(frozen=True)
class Regions:
    """Upper-face (eyes, brows) and lower-face (mouth, chin) masks of a square crop with the face centred.

    Fractions of the crop side; r is the distance from the centre in half-sides. Fixed for the product's
    crops (face box plus a 0.3 margin each side, detector.faces); that the eyes fall in the upper region and
    the mouth in the lower one was checked by eye on the panels (render.page.cue_panel) of a GRID clip and a
    dev-set lip-sync clip, not measured over many faces."""

    upper_below: float = 0.45  # upper: rows above this, inside r < upper_r
    upper_r: float = 0.6
    lower_above: float = 0.6  # lower: rows below this, inside r < lower_r
    lower_r: float = 0.7

    def masks(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        yy = np.mgrid[:side, :side][0]
        r = radial_distance(side)
        return (yy < side * self.upper_below) & (r < self.upper_r), (yy > side * self.lower_above) & (r < self.lower_r)


def radial_distance(side: int) -> np.ndarray:
    """float (side, side): each pixel's distance from the centre of a square crop, in half-sides (1 = the
    middle of an edge), the unit every crop region here is drawn in."""
    yy, xx = np.mgrid[:side, :side]
    return np.hypot(yy - side / 2, xx - side / 2) / (side / 2)


def detail_energy(crops: np.ndarray, regions: Regions = Regions()) -> tuple[np.ndarray, np.ndarray]:
    """crops: uint8 (T, S, S, 3) RGB -> RMS Laplacian of the grey image in the upper and lower masks, (T,) each."""
    if crops.ndim != 4 or crops.shape[1] != crops.shape[2] or crops.shape[3] != 3:
        raise ValueError(f"crops must be (T, S, S, 3) RGB, not {crops.shape}")
    up, low = regions.masks(crops.shape[1])
    e_up, e_low = [], []
    for c in crops:
        h = detail_map(c)
        e_up.append(np.sqrt((h[up] ** 2).mean()))
        e_low.append(np.sqrt((h[low] ** 2).mean()))
    return np.array(e_up), np.array(e_low)


def detail_map(crop: np.ndarray) -> np.ndarray:
    """crop: uint8 (S, S, 3) RGB -> float32 (S, S) |Laplacian| of the grey image: the fine detail the cue sums."""
    return np.abs(cv2.filter2D(crop.astype(np.float32).mean(-1), -1, _LAPLACE))


def detail_ratios(crops: np.ndarray, regions: Regions = Regions()) -> np.ndarray:
    """(T,) lower-face RMS Laplacian / upper-face RMS Laplacian per frame of crops uint8 (T, S, S, 3) RGB."""
    up, low = detail_energy(crops, regions)
    return low / (up + 1e-3)


def median_frame(crops: np.ndarray, regions: Regions = Regions()) -> int:
    """Position of the frame whose lower/upper ratio is the track's median: the frame that shows the reading."""
    return _median_position(detail_ratios(crops, regions))


def _median_position(ratios: np.ndarray) -> int:
    return int(np.argsort(ratios)[len(ratios) // 2])


def mouth_detail_deficit(crops: np.ndarray, regions: Regions = Regions()) -> float:
    """How much less fine detail the lower face has than the upper face, over a track: -log of the median over
    frames of (lower RMS Laplacian / upper RMS Laplacian). 0: equal detail; +0.69: the mouth has half the
    eyes' detail. crops: uint8 (T, S, S, 3) RGB, the model's face crops.

    Larger on lip-sync fakes (a mouth re-drawn at low resolution). A real face can score high too: a blurred
    moving mouth, a clean-shaven chin under busy brows, make-up; hence it is only weighed with the model."""
    return _mouth_detail_reading(crops, regions)[0]


def _mouth_detail_reading(crops: np.ndarray, regions: Regions = Regions()) -> tuple[float, int]:
    """(mouth_detail_deficit, median_frame) from one pass over the crops (the report's panel shows that frame)."""
    r = detail_ratios(crops, regions)
    return float(-np.log(np.median(r) + 1e-6)), _median_position(r)


# The cues a sidecar may name, each uint8 (T, S, S, 3) RGB crops -> (value, frame): value larger = more like a
# fake; frame: the position of the crop that shows the reading (what the report draws), or None.
CUES = {"mouth_detail_deficit": _mouth_detail_reading}


def apply_cues(margin: float, crops: np.ndarray, block: dict | None) -> tuple[float, dict]:
    """The verdict's margin: the model's logit margin plus each sidecar cue's weight * (value - centre).

    block: the sidecar's `cues` ({name: {"weight", "centre", ...reference figures}}); empty or None leaves the
    margin as it is. Returns (margin, {name: {"value", "contribution", "weight", "centre", ...}}): the
    contribution is what the cue added to the margin (+ = towards FAKE), so that a report can show it beside
    the model's own margin. The centre (a typical real clip's value) makes a typical real face add ~0."""
    details = {}
    for name, spec in (block or {}).items():
        if name not in CUES:
            raise WeightsError(f"the sidecar names an unknown cue {name!r}; known: {sorted(CUES)} "
                               "(is the sidecar from a newer version?)")
        if not isinstance(spec, dict) or not {"weight", "centre"} <= set(spec):
            raise WeightsError(f"the sidecar's cue {name!r} needs a number 'weight' and a number 'centre', "
                               f"not {spec!r}; fix or remove it in the weights' .json")
        value, frame = CUES[name](crops)
        contribution = float(spec["weight"]) * (value - float(spec["centre"]))
        details[name] = {"value": round(value, 4), "contribution": round(contribution, 4),
                         **({"frame": frame} if frame is not None else {}),
                         **{k: v for k, v in spec.items() if k in ("weight", "centre", "real_p90", "real_p95",
                                                                  "reference")}}
        margin += contribution
    return margin, details


def cue_sentence(name: str, c: dict) -> str:
    """One readable line for a cue's entry in a FaceResult (`apply_cues` details)."""
    if name == "mouth_detail_deficit":
        share = float(np.exp(-c["value"]))
        ref = (f"; 90 % of {c['reference']} lie below {c['real_p90']:.2f}" if "real_p90" in c and "reference" in c
               else "")
        return (f"mouth detail: the lower face carries {share:.0%} of the upper face's fine detail (deficit "
                f"{c['value']:.2f}{ref}; lip-sync generators that re-draw the mouth at low resolution raise it), "
                f"{c['contribution']:+.2f} to the fake margin")
    return f"{name}: {c['value']:.3f}, {c['contribution']:+.2f} to the fake margin"
