"""The analysis result: plain dataclasses, `to_dict()` for JSON (schema_version 1).

Arrays (crops, frames) stay on the objects for the app and the CLI; JSON carries only numbers and
strings, so a report is small and stable.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from detector.cues import cue_sentence

SCHEMA_VERSION = 1
REAL, FAKE, NO_FACE, INCONCLUSIVE = "REAL", "FAKE", "NO_FACE", "INCONCLUSIVE"


@dataclass
class FaceResult:
    """One face track.

    frame_indices: indices in the video (0-based) of the frames the model saw, length T_track.
    boxes: [x0, y0, x1, y1] in full-frame pixels per frame. crops: uint8 (T_track, 112, 112, 3) RGB.
    partners: the crops of each frame's successor in the video, same shape, for a model that pairs "next"
    frames (None otherwise); the explanations rerun the model on them.
    interpolated: True where the box was interpolated between detections.

    p_fake: calibrated when the weights carry a calibration, else the raw softmax probability;
    margin: the fake-minus-real logit the verdict rests on, p_fake_raw = sigmoid(margin). With sidecar cues
    (detector/cues.py) margin = model_margin + the cues' contributions, and `cues` holds each cue's value
    and contribution; without them margin is the model's own and model_margin, cues are None.
    """

    track_id: int
    p_fake: float
    frame_indices: list[int]
    boxes: list[list[int]]
    interpolated: list[bool]
    crops: np.ndarray | None = field(default=None, repr=False)
    explanation: dict | None = field(default=None, repr=False)
    p_fake_raw: float | None = None
    margin: float | None = None
    partners: np.ndarray | None = field(default=None, repr=False)
    model_margin: float | None = None
    cues: dict | None = None

    def to_dict(self) -> dict:
        d = {"track_id": self.track_id, "p_fake": round(self.p_fake, 6),
             "frame_indices": self.frame_indices, "boxes": self.boxes,
             "interpolated": self.interpolated, "n_frames": len(self.frame_indices)}
        if self.p_fake_raw is not None:
            d["p_fake_raw"] = round(self.p_fake_raw, 6)
        if self.margin is not None:
            d["logit_margin"] = round(self.margin, 6)
        if self.cues:
            d["model_logit_margin"] = round(self.model_margin, 6)
            d["cues"] = self.cues
        return d


@dataclass
class Report:
    file: dict
    video: dict
    model: dict
    verdict: str
    p_fake: float | None
    threshold: float
    faces: list[FaceResult]
    timings_s: dict[str, float]
    sampling: dict
    warnings: list[str] = field(default_factory=list)
    explanations: dict | None = None
    software: dict = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    # The sampled frames as display copies (uint8 (T, h, w, 3) RGB, the longer side at most 720 px,
    # detector/streamed.py), for boxes and overlays (`frame_scale`); not in JSON. Boxes are in the video's pixels.
    frames: np.ndarray | None = field(default=None, repr=False)
    # The model's uncalibrated max p_fake, and what the threshold means (detector.calibration.report_block).
    p_fake_raw: float | None = None
    calibration: dict = field(default_factory=dict)
    # The file's Content Credentials and container tags (detector.provenance.Provenance.to_dict()): evidence
    # beside the verdict, never an input to it.
    provenance: dict | None = None
    # Set by `classify(..., explain_later=True)`: calling it computes the explanations from the analysis pass's
    # kept features (then it is None again), so a caller can show the verdict first. Not in JSON.
    pending_explanations: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        d = {
            "schema_version": SCHEMA_VERSION,
            "file": self.file,
            "video": self.video,
            "model": self.model,
            "verdict": self.verdict,
            "p_fake": None if self.p_fake is None else round(self.p_fake, 6),
            "p_fake_raw": None if self.p_fake_raw is None else round(self.p_fake_raw, 6),
            "threshold": self.threshold,
            "calibration": self.calibration,
            "faces": [f.to_dict() for f in self.faces],
            "sampling": self.sampling,
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "warnings": self.warnings,
            "software": self.software,
            "created": self.created,
        }
        if self.explanations is not None:
            d["explanations"] = self.explanations
        if self.provenance is not None:
            d["provenance"] = self.provenance
        return d

    def frame_scale(self, size: tuple[int, int] | None = None) -> tuple[float, float]:
        """(sx, sy) that map a box in the video's pixels onto frames of `size` (h, w); default: `frames`' own."""
        h, w = size if size is not None else self.frames.shape[1:3]
        return w / (self.video.get("width") or w), h / (self.video.get("height") or h)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def summary(self) -> str:
        """A few readable lines for a terminal: the verdict and the three evidence lines in plain words
        (detector/plain.py), then the details (numbers, their sources, per-face margins)."""
        from detector.plain import evidence_lines

        name = self.file.get("name", "?")
        lines = [f"{name}: {self.verdict}"]
        lines += [f"  {title}: {text}" for title, text in evidence_lines(self.to_dict())]
        lines.append("  details:")
        if self.p_fake is not None:
            lines.append(f"    p_fake={self.p_fake:.3f} (threshold {self.threshold:.2f})")
        if self.calibration.get("meaning"):
            lines.append(f"    meaning: {self.calibration['meaning']}")
        for f in self.faces:
            lines.append(f"    face {f.track_id}: p_fake={f.p_fake:.3f} over {len(f.frame_indices)} frames "
                         f"[{f.frame_indices[0]}..{f.frame_indices[-1]}]")
            lines += [f"      {cue_sentence(name, c)}" for name, c in (f.cues or {}).items()]
        m = self.model
        lines.append(f"    model: {m['name']} sha256 {m['weights_sha256'][:12]}… trained on: {m['trained_on']}")
        lines.append("    time: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings_s.items()))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

