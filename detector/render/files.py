"""A Report's files in a folder: report.json, face crops and Grad-CAM overlays as PNG, report.html."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detector.report import Report


def overlay_names(track_id: int, frame_index: int) -> tuple[str, str]:
    """Relative names (crop, frame) of a face's overlay PNGs, as write_explanations writes them."""
    stem = f"explain/face{track_id}_f{frame_index:05d}"
    return f"{stem}_crop.png", f"{stem}_frame.png"


def write_outputs(report: Report, out: str | Path) -> list[Path]:
    """Write report.json and crops/face<id>_f<frame>.png (RGB in, PNG out). Returns the paths written."""
    out = Path(out)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    written = []
    for face in report.faces:
        if face.crops is None:
            continue
        for idx, crop in zip(face.frame_indices, face.crops):
            p = out / "crops" / f"face{face.track_id}_f{idx:05d}.png"
            cv2.imwrite(str(p), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            written.append(p)
    if report.explanations is not None:
        written += write_explanations(report, out)
    p = out / "report.json"
    p.write_text(report.to_json() + "\n")
    written.append(p)
    return written


def write_explanations(report: Report, out: str | Path) -> list[Path]:
    """Write out/explain/face<id>_f<frame>_{crop,frame}.png (names as in report.explanations) and
    out/report.html. Images are RGB in memory, converted to BGR for cv2.imwrite. Returns paths written."""
    out = Path(out)
    (out / "explain").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for face in report.faces:
        ex = face.explanation
        if not ex:
            continue
        for t, idx in enumerate(face.frame_indices):
            crop_name, frame_name = overlay_names(face.track_id, idx)
            _imwrite(out / crop_name, ex["crop_overlays"][t])
            written.append(out / crop_name)
            if ex.get("frame_overlays") is not None:
                _imwrite(out / frame_name, ex["frame_overlays"][t])
                written.append(out / frame_name)
    from detector.render.page import render_html

    p = out / "report.html"
    p.write_text(render_html(report), encoding="utf-8")
    written.append(p)
    return written


def _imwrite(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _imwrite(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
