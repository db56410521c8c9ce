"""Write a report's files to a folder: report.json, face crops as PNG, and explanations when present."""

from __future__ import annotations

from pathlib import Path

import cv2

from detector.report import Report


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
        from explain.export import write_explanations

        written += write_explanations(report, out)
    p = out / "report.json"
    p.write_text(report.to_json() + "\n")
    written.append(p)
    return written
