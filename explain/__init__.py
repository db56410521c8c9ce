"""Explanations of a Report: where in each frame (Grad-CAM) and which frames (temporal attribution).

``explain_report(report, detector, feats, target="fake")`` fills ``face.explanation`` (numpy arrays)
for every face and ``report.explanations`` (JSON). Spatial: Grad-CAM (arXiv:1610.02391) on the last
ResNeXt block (see explain/gradcam.py; default is the fast hand-written path). Temporal: signed per-frame
attribution of the logit margin through the LSTM on cached features, Integrated Gradients by default,
with occlusion, gradient x input and RLNet's gradient norm beside it (explain/temporal.py,
explain/attribution.py). Rendering (PNG files, HTML, app views) lives in detector/render/; this package
only computes.

Every method is a class with a name, a description and ``__call__``, registered once in explain/methods.py.
Importing this package is cheap: torch, OpenCV and pytorch-grad-cam load only when a function runs.
"""

from __future__ import annotations

from typing import Any

from explain.methods import SPATIAL, TEMPORAL, GradCAM

__all__ = ["explain_report", "gradcam", "temporal_importance"]

DIGITS = 4


def _r(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


# Report keys of the temporal methods and what each one measures: from the one registry (explain/methods.py).
TEMPORAL_KEYS = tuple(TEMPORAL)
TEMPORAL_DESCRIPTIONS = {name: m.description for name, m in TEMPORAL.items()}


def _streams(tem) -> dict[str, Any]:
    """A two-stream model's IG split: per frame and in total, per stream (positive = towards FAKE)."""
    total = {k: round(float(v.sum()), DIGITS) for k, v in tem.streams.items()}
    return {"description": STREAMS_DESCRIPTION, "total": total,
            "per_frame": {k: _r(v) for k, v in tem.streams.items()}}


STREAMS_DESCRIPTION = ("Integrated Gradients split by feature stream: 'appearance' = the ResNeXt50 features of each "
                       "frame (what Grad-CAM maps), 'texture_renewal' = the residual-pair stream's features of frame "
                       "t-1 and t (whether the finest grain renews itself as a camera's does, or is carried or "
                       "regenerated); the two sum to the frame's IG value exactly")


TEXTURE_LAYER = GradCAM.texture_layer
TEXTURE_DESCRIPTION = GradCAM.texture_description


def method_description(method: str, layer: str, temporal_method: str = "integrated_gradients",
                       texture: bool = False) -> dict[str, Any]:
    return {
        GradCAM.name: {"layer": layer, "implementation": method, "description": GradCAM.description},
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


def explain_report(report, detector, feats, target: str = "fake", method: str | None = None,
                   maps: list | None = None) -> None:
    """Explain every face of `report` in place.

    detector: a ``detector.pipeline.Detector`` (or a bare model). feats: one (1, T, C) feature tensor per
    ``report.faces`` entry (the pipeline's cached ``forward_features`` output). target: "fake" or "real".
    maps: per face, the activations its model pass kept (``Detector.features_and_maps``); with them Grad-CAM
    is method "cached" (no second pass through the trunk), without them explain/gradcam.py's default.
    Sets ``face.explanation`` = {cam, cam_raw (T, 112, 112) float32 (appearance Grad-CAM); for a model with a
    residual stream also cam_texture, cam_texture_raw (T, 112, 112) float32 and texture_overlays uint8
    (T, 112, 112, 3) RGB (Grad-CAM on the stream, computed in the same pass); temporal_importance (T,) (the default
    method's signed values, positive = towards FAKE), temporal_method (its name), top_frames (positions in
    the track, largest positive first), integrated_gradients, occlusion, grad_x_input, grad_norm,
    frame_p_fake (T,) float32; crop_overlays uint8 (T, 112, 112, 3) RGB, frame_overlays uint8 (T, H, W, 3)
    RGB or None when the report has no frames} and ``report.explanations`` (JSON-ready).
    """
    from explain.gradcam import DEFAULT_METHOD
    from explain.temporal import DEFAULT_METHOD as TEMPORAL_DEFAULT

    if len(feats) != len(report.faces):
        raise ValueError(f"{len(feats)} feature tensors for {len(report.faces)} faces")
    model = getattr(detector, "model", detector)
    maps = maps if maps is not None and len(maps) == len(feats) and all(maps) else None
    method = method or ("cached" if maps is not None else DEFAULT_METHOD)
    texture = getattr(model, "residual", None) is not None
    per_face = [_explain_face(report, face, f, model, target, method, maps[k] if maps else None)
                for k, (face, f) in enumerate(zip(report.faces, feats))]
    report.explanations = {"method": method_description(method, GradCAM.layer_name(model), TEMPORAL_DEFAULT,
                                                        texture),
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
    sx, sy = report.frame_scale()  # boxes are in the video's pixels, the frames display copies
    for k, (i, m, b) in enumerate(zip(face.frame_indices, maps, face.boxes)):
        box = [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
        overlay_frame(report.frames[position[i]], m, box, margin, out=out[k])
    return out


def _explain_face(report, face, feats, model, target: str, method: str, maps: dict | None) -> dict[str, Any]:
    """One face: its maps, attributions and overlays into ``face.explanation``; returns its JSON entry."""
    from explain.temporal import temporal_importance

    cams = SPATIAL[GradCAM.name](model, face.crops, target, implementation=method,
                                 partners=getattr(face, "partners", None), features=feats, maps=maps)
    cam, tex = cams["appearance"], cams.get("texture")
    tem = temporal_importance(model, feats, target)
    face.explanation = _arrays(report, face, cam, tex, tem)
    if not cam.peaks.any():
        other = "real" if target == "fake" else "fake"
        report.warnings.append(f"face {face.track_id}: Grad-CAM for {target!r} is zero in every frame "
                               "(no region raises that logit; common when the model leans the other "
                               f"way); try target {other!r}")
    return _face_json(face, cam, tex, tem, framed=face.explanation["frame_overlays"] is not None)


def _arrays(report, face, cam, tex, tem) -> dict[str, Any]:
    """``face.explanation``: the maps, every temporal method's values and the overlays (see explain_report)."""
    from explain.overlay import overlay_crops

    position = {int(v): p for p, v in enumerate(report.sampling.get("indices", []))}
    arrays = {
        "cam": cam.maps, "cam_raw": cam.raw,
        "temporal_importance": tem.importance, "temporal_method": tem.method, "top_frames": tem.top,
        **tem.methods, "frame_p_fake": tem.frame_p_fake, "streams": tem.streams,
        "crop_overlays": overlay_crops(face.crops, cam.maps),
        "frame_overlays": _frame_overlays(report, face, cam.maps, position, _margin(report)),
    }
    if tex is not None:
        arrays.update(cam_texture=tex.maps, cam_texture_raw=tex.raw,
                      texture_overlays=overlay_crops(face.crops, tex.maps))
    return arrays


def _face_json(face, cam, tex, tem, framed: bool) -> dict[str, Any]:
    """The face's entry in ``report.explanations["per_face"]`` (rounded, JSON-ready)."""
    from detector.render.files import overlay_names

    names = []
    for i in face.frame_indices:
        crop_name, frame_name = overlay_names(face.track_id, i)
        names += [crop_name] + ([frame_name] if framed else [])
    return {"track_id": face.track_id, "frame_indices": list(face.frame_indices),
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
            "overlays": names}


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
