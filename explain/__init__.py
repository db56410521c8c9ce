"""Explanations of a Report: where in each frame (Grad-CAM) and which frames (temporal importance).

``explain_report(report, detector, feats, target="fake")`` fills ``face.explanation`` (numpy arrays)
for every face and ``report.explanations`` (JSON). Spatial: Grad-CAM (arXiv:1610.02391) on the last
ResNeXt block (see explain/gradcam.py; default is the fast hand-written path). Temporal: RLNet
Algorithm 1, ||d logit / d f_t||_2 through the LSTM (explain/temporal.py). Rendering (PNG
files, HTML, app views) lives in detector/render/; this package only computes.

Importing this package is cheap: torch, OpenCV and pytorch-grad-cam load only when a function runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["explain_report", "gradcam", "temporal_importance"]

DIGITS = 4


def _r(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def method_description(method: str, layer: str) -> dict[str, Any]:
    return {
        "gradcam": {"layer": layer, "implementation": method,
                    "description": "Grad-CAM (Selvaraju et al. 2017): relu(sum_c w_c A_c), w_c = spatial "
                                   "mean of d logit/d A_c, of the clip logit for every frame; maps min-max "
                                   "normalised per frame; cam_peak = raw per-frame maximum (comparable "
                                   "across frames)"},
        "temporal": {"description": "RLNet Algorithm 1: H_t = ||d logit / d f_t||_2, f_t = LSTM input "
                                    "(ResNeXt features of frame t), min-max normalised to [0, 1]",
                     "grad_x_input": "|sum_c g_t,c f_t,c|, min-max normalised",
                     "frame_p_fake": "softmax of the head applied to the LSTM output at step t, which has "
                                     "seen frames 1..t only"},
        "overlays": "JET colour map, alpha 0.45, on the 112x112 crop and in the crop window of the full "
                    "frame",
    }


def explain_report(report, detector, feats, target: str = "fake", method: str | None = None) -> None:
    """Explain every face of `report` in place.

    detector: a ``detector.pipeline.Detector`` (or a bare model). feats: one (1, T, C) feature tensor per
    ``report.faces`` entry (the pipeline's cached ``forward_features`` output). target: "fake" or "real".
    Sets ``face.explanation`` = {cam, cam_raw (T, 112, 112) float32, temporal_importance, temporal_raw,
    grad_x_input, frame_p_fake (T,), crop_overlays uint8 (T, 112, 112, 3) RGB, frame_overlays uint8
    (T, H, W, 3) RGB or None when the report has no frames} and ``report.explanations`` (JSON-ready).
    """
    import numpy as np

    from detector.render.files import overlay_names
    from explain.gradcam import DEFAULT_METHOD, gradcam
    from explain.overlay import overlay_crops, overlay_frame
    from explain.temporal import temporal_importance

    if len(feats) != len(report.faces):
        raise ValueError(f"{len(feats)} feature tensors for {len(report.faces)} faces")
    model = getattr(detector, "model", detector)
    method = method or DEFAULT_METHOD
    margin = _margin(report)
    position = {int(v): p for p, v in enumerate(report.sampling.get("indices", []))}
    layer = "model.model[7] (layer4)" if not hasattr(model.backbone, "layer4") else "model.backbone.layer4"
    per_face = []
    for face, f in zip(report.faces, feats):
        cam = gradcam(model, face.crops, target, method=method)
        tem = temporal_importance(model, f, target)
        crop_ov = overlay_crops(face.crops, cam.maps)
        frame_ov = None
        if report.frames is not None and all(i in position for i in face.frame_indices):
            frame_ov = [overlay_frame(report.frames[position[i]], m, b, margin)
                        for i, m, b in zip(face.frame_indices, cam.maps, face.boxes)]
        face.explanation = {
            "cam": cam.maps, "cam_raw": cam.raw,
            "temporal_importance": tem.importance, "temporal_raw": tem.raw,
            "grad_x_input": tem.grad_x_input, "frame_p_fake": tem.frame_p_fake,
            "crop_overlays": crop_ov,
            "frame_overlays": None if frame_ov is None else np.stack(frame_ov),
        }
        if not cam.peaks.any():
            other = "real" if target == "fake" else "fake"
            report.warnings.append(f"face {face.track_id}: Grad-CAM for {target!r} is zero in every frame "
                                   "(no region raises that logit; common when the model leans the other "
                                   f"way); try target {other!r}")
        names = []
        for i in face.frame_indices:
            crop_name, frame_name = overlay_names(face.track_id, i)
            names += [crop_name] + ([frame_name] if frame_ov is not None else [])
        per_face.append({"track_id": face.track_id, "frame_indices": list(face.frame_indices),
                         "temporal_importance": _r(tem.importance), "temporal_raw": _r(tem.raw),
                         "frame_p_fake": _r(tem.frame_p_fake), "grad_x_input": _r(tem.grad_x_input),
                         "cam_peak": [float(f"{v:.4g}") for v in cam.peaks], "overlays": names})
    report.explanations = {"method": method_description(method, layer), "target": target,
                           "per_face": per_face}
    # How faithful these explanations were measured to be for this model (benchmarks/
    # bench_faithfulness.py, stored in the weights' sidecar), so a reader can weigh them.
    faithfulness = getattr(getattr(detector, "spec", None), "metrics", {}).get("faithfulness")
    if faithfulness is not None:
        report.explanations["faithfulness"] = faithfulness


def _margin(report) -> float:
    from detector.faces import FaceConfig

    return float(report.sampling.get("margin", FaceConfig().margin))


def __getattr__(name: str):
    # Re-export the verbs lazily so `import explain` stays cheap.
    if name == "gradcam":
        from explain.gradcam import gradcam
        return gradcam
    if name == "temporal_importance":
        from explain.temporal import temporal_importance
        return temporal_importance
    raise AttributeError(f"module 'explain' has no attribute {name!r}")
