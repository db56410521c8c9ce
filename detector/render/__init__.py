"""Rendering a Report for people, in one place: files, the HTML page, and the app's views.

- ``files``: ``write_outputs(report, out)`` writes report.json, face crops and Grad-CAM overlay PNGs and
  report.html (the CLI's ``--out``); ``overlay_names`` gives the PNG names the JSON refers to.
- ``page``: ``render_html(report)``, one self-contained page (CLI, app download, scan index).
- ``views``: what each Gradio component shows (``label_value``, ``timings_markdown``, galleries, the
  Plotly figure, the boxed H.264 clip, downloads, the model card). No gradio import here.

The computations (Grad-CAM, temporal attribution, overlays as arrays) stay in ``explain/``.
"""

from __future__ import annotations

from detector.render.files import overlay_names, write_explanations, write_outputs
from detector.render.page import render_html

__all__ = ["overlay_names", "render_html", "write_explanations", "write_outputs"]
