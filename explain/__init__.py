"""Explanations of a Report: where in each frame (Grad-CAM) and which frames (temporal attribution).

``explain_report(report, detector, feats, target="fake")`` fills ``face.explanation`` (numpy arrays)
for every face and ``report.explanations`` (JSON). Spatial: Grad-CAM (arXiv:1610.02391) on the last
ResNeXt block (see explain/gradcam.py; default is the fast hand-written path). Temporal: signed per-frame
attribution of the logit margin through the LSTM on cached features, Integrated Gradients by default,
with occlusion, gradient x input and RLNet's gradient norm beside it (explain/temporal.py,
explain/attribution.py). Rendering (PNG files, HTML, app views) lives in detector/render/; this package
only computes.

Importing this package is cheap: torch, OpenCV and pytorch-grad-cam load only when a function runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["explain_report", "gradcam", "temporal_importance"]

DIGITS = 4


def _r(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


# Report keys of the temporal methods (explain/temporal.py METHODS) and what each one measures.
TEMPORAL_KEYS = ("integrated_gradients", "occlusion", "grad_x_input", "grad_norm")
TEMPORAL_DESCRIPTIONS = {
    "integrated_gradients": "Integrated Gradients (Sundararajan et al. 2017) of the logit margin per frame, "
                            "through the LSTM on the cached features; baseline = the clip's per-channel median "
                            "feature at every frame (a typical frame of this face: what is attributed is what is "
                            "specific to frame t); signed; the values sum to margin(clip) "
                            "- margin(baseline) (completeness)",
    "occlusion": "leave-one-frame-out: margin(clip) - margin(clip with frame t replaced by the clip's median "
                 "feature); signed",
    "grad_x_input": "gradient x input, sum_c f_t,c * d margin / d f_t,c (first order); signed",
    "grad_norm": "RLNet Algorithm 1: ||d logit_target / d f_t||_2, unsigned SENSITIVITY (how fast the decision "
                 "could change with frame t, not which way frame t pushed it); biased towards early frames "
                 "by the LSTM + mean pooling",
}


def _streams(tem) -> dict[str, Any]:
    """A two-stream model's IG split: per frame and in total, per stream (positive = towards FAKE)."""
    total = {k: round(float(v.sum()), DIGITS) for k, v in tem.streams.items()}
    return {"description": STREAMS_DESCRIPTION, "total": total,
            "per_frame": {k: _r(v) for k, v in tem.streams.items()}}


STREAMS_DESCRIPTION = ("Integrated Gradients split by feature stream: 'appearance' = the ResNeXt50 features of each "
                       "frame (what Grad-CAM maps), 'texture_renewal' = the residual-pair stream's features of frame "
                       "t-1 and t (whether the finest grain renews itself as a camera's does, or is carried or "
                       "regenerated); the two sum to the frame's IG value exactly")


TEXTURE_LAYER = "model.residual.body (last ReLU of the residual-pair stream)"
TEXTURE_DESCRIPTION = ("Grad-CAM of the same clip logit on the residual-pair stream: where the finest grain of frame "
                       "t and of the frame it is paired with (its successor in the video) pushed the verdict. "
                       "Red where the grain does not renew itself as a camera's does (carried along by a warp, or "
                       "regenerated); 0 for a pair the stream ignores (duplicate frames, a still image). "
                       "cam_texture_peak = raw per-frame maximum")


def method_description(method: str, layer: str, temporal_method: str = "integrated_gradients",
                       texture: bool = False) -> dict[str, Any]:
    return {
        "gradcam": {"layer": layer, "implementation": method,
                    "description": "Grad-CAM (Selvaraju et al. 2017): relu(sum_c w_c A_c), w_c = spatial "
                                   "mean of d logit/d A_c, of the clip logit for every frame; maps min-max "
                                   "normalised per frame; cam_peak = raw per-frame maximum (comparable "
                                   "across frames)"},
        **({"gradcam_texture": {"layer": TEXTURE_LAYER, "implementation": method,
                                "description": TEXTURE_DESCRIPTION}} if texture else {}),
        "temporal": {
            "method": temporal_method,
            "description": TEMPORAL_DESCRIPTIONS[temporal_method],
            "sign": "positive = the frame pushes the verdict towards FAKE, negative = towards REAL "
                    "(margin = logit_fake - logit_real)",
            "methods": {name: TEMPORAL_DESCRIPTIONS[name] for name in TEMPORAL_KEYS},
            "frame_p_fake": "softmax of the head applied to the LSTM output at step t, which has seen frames "
                            "1..t only"},
        "overlays": "JET colour map, alpha 0.45, on the 112x112 crop and in the crop window of the full "
                    "frame",
    }


def explain_report(report, detector, feats, target: str = "fake", method: str | None = None) -> None:
    """Explain every face of `report` in place.

    detector: a ``detector.pipeline.Detector`` (or a bare model). feats: one (1, T, C) feature tensor per
    ``report.faces`` entry (the pipeline's cached ``forward_features`` output). target: "fake" or "real".
    Sets ``face.explanation`` = {cam, cam_raw (T, 112, 112) float32 (appearance Grad-CAM); for a model with a
    residual stream also cam_texture, cam_texture_raw (T, 112, 112) float32 and texture_overlays uint8
    (T, 112, 112, 3) RGB (Grad-CAM on the stream, computed in the same pass); temporal_importance (T,) (the default
    method's signed values, positive = towards FAKE), temporal_method (its name), top_frames (positions in
    the track, largest positive first), integrated_gradients, occlusion, grad_x_input, grad_norm,
    frame_p_fake (T,) float32; crop_overlays uint8 (T, 112, 112, 3) RGB, frame_overlays uint8 (T, H, W, 3)
    RGB or None when the report has no frames} and ``report.explanations`` (JSON-ready).
    """
    from detector.render.files import overlay_names
    from explain.gradcam import DEFAULT_METHOD, gradcams
    from explain.overlay import overlay_crops
    from explain.temporal import DEFAULT_METHOD as TEMPORAL_DEFAULT
    from explain.temporal import temporal_importance

    if len(feats) != len(report.faces):
        raise ValueError(f"{len(feats)} feature tensors for {len(report.faces)} faces")
    model = getattr(detector, "model", detector)
    method = method or DEFAULT_METHOD
    margin = _margin(report)
    position = {int(v): p for p, v in enumerate(report.sampling.get("indices", []))}
    layer = "model.model[7] (layer4)" if not hasattr(model.backbone, "layer4") else "model.backbone.layer4"
    texture = getattr(model, "residual", None) is not None
    per_face = []
    for face, f in zip(report.faces, feats):
        cams = gradcams(model, face.crops, target, method=method, partners=getattr(face, "partners", None),
                        layers=("appearance", "texture") if texture else ("appearance",))
        cam, tex = cams["appearance"], cams.get("texture")
        tem = temporal_importance(model, f, target)
        crop_ov = overlay_crops(face.crops, cam.maps)
        frame_ov = _frame_overlays(report, face, cam.maps, position, margin)
        face.explanation = {
            "cam": cam.maps, "cam_raw": cam.raw,
            "temporal_importance": tem.importance, "temporal_method": tem.method, "top_frames": tem.top,
            **tem.methods, "frame_p_fake": tem.frame_p_fake, "streams": tem.streams,
            "crop_overlays": crop_ov,
            "frame_overlays": frame_ov,
        }
        if tex is not None:
            face.explanation.update(cam_texture=tex.maps, cam_texture_raw=tex.raw,
                                    texture_overlays=overlay_crops(face.crops, tex.maps))
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
                         "temporal_importance": _r(tem.importance), "temporal_method": tem.method,
                         # video frame indices of the frames that pushed towards FAKE most, largest first
                         "top_frames": [face.frame_indices[t] for t in tem.top],
                         **{name: _r(tem.methods[name]) for name in TEMPORAL_KEYS},
                         "completeness": {"margin": round(tem.margin, DIGITS),
                                          "baseline_margin": round(tem.baseline_margin, DIGITS),
                                          "sum_minus_delta": float(f"{tem.completeness_error:.3g}"),
                                          "steps": tem.steps, "baseline": tem.baseline},
                         "frame_p_fake": _r(tem.frame_p_fake),
                         **({} if tem.streams is None else {"streams": _streams(tem)}),
                         "cam_peak": [float(f"{v:.4g}") for v in cam.peaks],
                         **({} if tex is None else {"cam_texture_peak": [float(f"{v:.4g}") for v in tex.peaks]}),
                         "overlays": names})
    report.explanations = {"method": method_description(method, layer, TEMPORAL_DEFAULT, texture),
                           "target": target,
                           "per_face": per_face}
    # How faithful these explanations were measured to be for this model (detector/training/
    # faithfulness.py, stored in the weights' sidecar), so a reader can weigh them.
    faithfulness = getattr(getattr(detector, "spec", None), "metrics", {}).get("faithfulness")
    if faithfulness is not None:
        report.explanations["faithfulness"] = faithfulness


def _frame_overlays(report, face, maps, position: dict[int, int], margin: float):
    """uint8 (T, H, W, 3) RGB: each frame of the track with its map blended into the crop window, written into
    one preallocated array (not T copies stacked); None when the report does not hold every frame."""
    import numpy as np

    from explain.overlay import overlay_frame

    if report.frames is None or not all(i in position for i in face.frame_indices):
        return None
    out = np.empty((len(face.frame_indices), *report.frames.shape[1:]), np.uint8)
    for k, (i, m, b) in enumerate(zip(face.frame_indices, maps, face.boxes)):
        overlay_frame(report.frames[position[i]], m, b, margin, out=out[k])
    return out


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
