"""The app's views of a Report: what each Gradio component shows (label, timings, galleries, chart, clip).

Nothing here imports gradio or loads a model; every function takes plain data (a Report, a ModelSpec)
and returns plain data (dicts, lists of (image, caption), a Plotly figure, file paths), so each one can
be tested on its own and reused by another front end.

Boxed video: we draw on the *sampled* frames only (the ones the model saw) and write them as a short
clip at `BOXED_FPS` frames per second. The frames are already in memory, so this costs milliseconds
whatever the length of the upload, and every frame shown is one the verdict is about; a full-rate copy
of the upload would need a second decode of the whole file and boxes that are guesses between samples.
OpenCV's wheel cannot write H.264, so the clip is encoded with imageio-ffmpeg's bundled ffmpeg
(libx264, yuv420p: the combination every browser plays).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import cv2
import numpy as np

from detector.cues import cue_sentence
from detector.plain import evidence_lines
from detector.render.page import (
    cue_lines,
    cue_panel,
    decided_line,
    faithfulness_sentence,
    raw_threshold,
    render_html,
    streams_sentence,
    top_positions,
)
from detector.report import FAKE, INCONCLUSIVE, NO_FACE, REAL, Report
from detector.spec import ModelSpec
from detector.streamed import display_copies

BOXED_FPS = 4.0
BOXED_MAX_SIDE = 720  # longer side of the boxed clip, px; keeps encoding cheap for 4K uploads


# ---------------------------------------------------------------- verdict, timings, notes
def label_value(report: Report) -> dict[str, float] | str:
    """gr.Label value: {"FAKE": p, "REAL": 1 - p}, or a one-line NO_FACE message."""
    if report.verdict == NO_FACE or report.p_fake is None:
        return f"{NO_FACE}: no face found in {len(report.sampling.get('indices', []))} sampled frames"
    p = float(report.p_fake)
    if report.verdict == INCONCLUSIVE:  # a FAKE/REAL bar chart would read as a verdict; say it in words
        return f"{INCONCLUSIVE}: the detector cannot tell"
    return {FAKE: round(p, 4), REAL: round(1.0 - p, 4)}


def evidence_markdown(report: Report) -> list[str]:
    """The plain verdict sentence and the three evidence lines (detector/plain.py) as Markdown lines."""
    return [*[f"- **{t}** — {x}" for t, x in evidence_lines(report.to_dict())], "",
            "#### Details: the numbers, where they come from, per-face margins", ""]


def timings_markdown(report: Report) -> str:
    """The verdict in plain words and the three evidence lines, then the details: p(fake), what the
    threshold means, per-face cue lines, processing time by stage, the report's warnings."""
    t = report.timings_s
    rows = [f"| {k} | {v:.2f} s |" for k, v in t.items() if k != "total"]
    if "total" in t:
        rows.append(f"| **total** | **{t['total']:.2f} s** |")
    head = f"**{report.verdict}**"
    if report.p_fake is not None:
        head += f" — p(fake) = {report.p_fake:.3f} (threshold {report.threshold:.2f})"
    lines = [*evidence_markdown(report), head, ""]
    if verdict_meaning(report):
        lines += [f"_What this means: {verdict_meaning(report)}._", ""]
    why = cue_lines(report)
    if why:
        lines += [*[f"- {x}" for x in why], ""]
    if decided_line(report):
        lines += [decided_line(report), ""]
    lines += ["| stage | time |", "|---|---|", *rows]
    if report.warnings:
        lines += ["", *[f"- ⚠️ {w}" for w in report.warnings]]
    return "\n".join(lines)


def verdict_meaning(report: Report) -> str:
    """The plain sentence saying how often this threshold flags real clips, and on which data ("" if none)."""
    m = (report.calibration or {}).get("meaning", "")
    return m[:1].upper() + m[1:]


# ---------------------------------------------------------------- galleries
def seconds(frame_index: int, fps: float) -> float:
    """Time of a frame in seconds; 0 for still images (fps 0)."""
    return frame_index / fps if fps and fps > 0 else 0.0


def face_gallery(report: Report, per_face: int | None = None) -> list[tuple[np.ndarray, str]]:
    """(crop uint8 (112, 112, 3) RGB, caption) for every face and sampled frame, or with `per_face` a strip of
    that many frames spread evenly over each track (what the app shows; every crop is in the HTML report)."""
    fps = float(report.video.get("fps") or 0.0)
    items = []
    for face in report.faces:
        if face.crops is None:
            continue
        keep = strip_positions(len(face.frame_indices), per_face)
        for t in keep:
            idx = face.frame_indices[t]
            items.append((face.crops[t], f"face {face.track_id} · frame {idx} · {seconds(idx, fps):.2f} s · "
                                         f"p_fake {face.p_fake:.3f}"))
    return items


def strip_positions(n: int, k: int | None) -> list[int]:
    """k positions spread evenly over 0..n-1 (segment centres, as frames are sampled), or all n when k is None
    or >= n."""
    if k is None or k >= n:
        return list(range(n))
    return sorted({int(n / k * (i + 0.5)) for i in range(k)})


def cue_gallery(report: Report) -> list[tuple[np.ndarray, str]]:
    """(panel uint8 (224, 448, 3) RGB, caption) per face and measured cue the verdict weighs (`page.cue_panel`:
    the track's median-reading crop and its fine-detail map, the two regions outlined); [] without cues."""
    return [(cue_panel(face.crops, frame=c.get("frame")), f"face {face.track_id} · {cue_sentence(name, c)} · "
             "cyan: upper face, orange: lower face; right: the fine detail measured")
            for face in report.faces if face.crops is not None for name, c in (face.cues or {}).items()]


MOVED_MOST = "moved the verdict most"


def gradcam_gallery(report: Report, layer: str = "appearance", top_only: bool = False) -> list[tuple[np.ndarray, str]]:
    """(Grad-CAM overlay uint8 (112, 112, 3) RGB, caption) per face and frame; [] without explanations.

    layer: "appearance" (the ResNeXt50's last block) or "texture" (the residual-pair stream: where the grain
    between a frame and the next one pushed the verdict; [] for a model without the stream).
    Per face, the frames whose attribution pushed the verdict towards FAKE most come first (largest
    first, captioned "moved the verdict most"), then, unless `top_only` (the app: what an analyst looks at
    first; every frame's map is in the HTML report), the others in time order.
    """
    fps = float(report.video.get("fps") or 0.0)
    key = {"appearance": "crop_overlays", "texture": "texture_overlays"}[layer]
    items = []
    for face in report.faces:
        exp = face.explanation or {}
        overlays = exp.get(key)
        if overlays is None:
            continue
        overlays = np.asarray(overlays)
        top = top_positions(exp)
        for rank, t in enumerate(top, 1):
            idx = face.frame_indices[t]
            items.append((np.ascontiguousarray(overlays[t], dtype=np.uint8),
                          f"face {face.track_id} · frame {idx} · {seconds(idx, fps):.2f} s · "
                          f"#{rank} {MOVED_MOST}"))
        for t, idx in enumerate(face.frame_indices):
            if t not in top and not top_only:
                items.append((np.ascontiguousarray(overlays[t], dtype=np.uint8),
                              f"face {face.track_id} · frame {idx} · {seconds(idx, fps):.2f} s"))
    return items


# ---------------------------------------------------------------- temporal chart
TOWARDS_FAKE, TOWARDS_REAL = "#d62728", "#1f77b4"  # red, blue


def temporal_figure(report: Report):
    """Plotly figure: per face, signed per-frame attribution as bars (red = pushed towards FAKE, blue =
    towards REAL; the default method of the report, in logit-margin units) against seconds, the frames
    that moved the verdict most marked, and the per-frame p(fake) on a right-hand 0-1 axis. Under the
    chart, one sentence says how faithful the attribution was measured to be.

    Without explanations each face gets one flat line at its track p_fake, so the chart still shows
    which frames each track covers.
    """
    import plotly.graph_objects as go

    fps = float(report.video.get("fps") or 0.0)
    fig = go.Figure()
    explained = any((f.explanation or {}).get("temporal_importance") is not None for f in report.faces)
    p_axis = "y2" if explained else "y"
    method = "attribution"
    for face in report.faces:
        x = [seconds(i, fps) for i in face.frame_indices]
        hover = [f"face {face.track_id} · frame {i}" for i in face.frame_indices]
        exp = face.explanation or {}
        imp, pf = exp.get("temporal_importance"), exp.get("frame_p_fake")
        if imp is not None:
            v = np.asarray(imp, dtype=float)
            method = str(exp.get("temporal_method") or method)
            fig.add_trace(go.Bar(x=x, y=v.tolist(), name=f"face {face.track_id}: {method} (+ towards FAKE)",
                                 marker={"color": [TOWARDS_FAKE if a > 0 else TOWARDS_REAL for a in v]},
                                 text=hover, offsetgroup=str(face.track_id),
                                 hovertemplate="%{text}<br>%{y:+.3f}<extra></extra>"))
            top = top_positions(exp)
            if top:
                fig.add_trace(go.Scatter(
                    x=[x[t] for t in top], y=[float(v[t]) for t in top], mode="markers+text",
                    name=f"face {face.track_id}: {MOVED_MOST}", marker={"symbol": "star", "size": 14,
                                                                       "color": "black"},
                    text=[f"#{r}" for r in range(1, len(top) + 1)], textposition="top center"))
        if pf is not None:
            fig.add_trace(go.Scatter(x=x, y=np.asarray(pf, dtype=float).tolist(), mode="lines+markers",
                                     name=f"face {face.track_id}: p(fake) per frame", text=hover,
                                     line={"dash": "dot", "color": "grey"}, yaxis=p_axis))
        if imp is None and pf is None:
            fig.add_trace(go.Scatter(x=x, y=[face.p_fake] * len(x), mode="lines+markers",
                                     name=f"face {face.track_id}: track p(fake)", text=hover))
    layout = {"xaxis_title": "time (s)", "height": 420, "barmode": "group",
              "margin": {"l": 60, "r": 60, "t": 50, "b": 130}, "legend": {"orientation": "h", "y": -0.2}}
    if explained:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker={"color": TOWARDS_REAL},
                                 name="towards REAL", showlegend=True, hoverinfo="skip"))
        # The curves are the network's own p; a face whose verdict adds a cue reaches the threshold at another
        # network p (page.raw_threshold), so each distinct threshold gets its line.
        lines = sorted({round(raw_threshold(report, f), 4) for f in report.faces})  # explained: faces exist
        for th in lines:
            fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=th, y1=th,
                          line={"dash": "dash", "color": "grey"})
        th_text = f"threshold {lines[0]:.2f}" if len(lines) == 1 else "threshold per face"
        if any(f.cues for f in report.faces):
            th_text += " after the measured cue"
        layout.update(title="Which frames moved the verdict (signed) and per-frame p(fake)",
                      yaxis={"title": f"{method} (logit margin; + = towards FAKE)", "zeroline": True},
                      yaxis2={"title": f"network's raw p(fake) · {th_text}", "overlaying": "y",
                              "side": "right", "range": [0, 1.05], "showgrid": False})
        sentence = faithfulness_sentence(report.explanations or {}, spatial=False)  # each map's tab states its own
        for pf in (report.explanations or {}).get("per_face", []):
            if pf.get("streams"):
                sentence += f" Face {pf['track_id']}: {streams_sentence(pf)}"
        fig.add_annotation(text="<br>".join(textwrap.wrap(sentence, 120)), xref="paper", yref="paper", x=0,
                           y=-0.42, showarrow=False, align="left", xanchor="left", yanchor="top",
                           font={"size": 11})
    else:
        # the flat lines are each track's verdict p (calibrated where the weights are): the same scale as the
        # report's threshold (the raw threshold belongs to the network's per-frame curves above)
        fig.add_hline(y=report.threshold, line={"dash": "dash", "color": "grey"},
                      annotation_text=f"threshold {report.threshold:.2f}")
        title = ("Track p(fake) over the sampled frames (explanations off)" if report.faces
                 else "No face found")
        layout.update(title=title, yaxis_title="p(fake)", yaxis={"range": [0, 1.05]})
    fig.update_layout(**layout)
    return fig


# ---------------------------------------------------------------- boxed video
def p_fake_colour(p: float) -> tuple[int, int, int]:
    """RGB from green (p = 0) through yellow to red (p = 1)."""
    p = min(max(float(p), 0.0), 1.0)
    return (int(round(255 * min(1.0, 2 * p))), int(round(255 * min(1.0, 2 * (1 - p)))), 0)


def draw_boxes(report: Report, max_side: int | None = None) -> np.ndarray:
    """Sampled frames (uint8 (T, H', W', 3) RGB) with each tracked face boxed and coloured by p_fake.

    max_side: scale the frames down first so the longer side is at most this (even sides, for yuv420p), and
    draw on the small frames (report.frames are display copies already, at most 720 px: detector/streamed.py).
    Uses the per-frame p(fake) of the explanation when present, else the track's p_fake.
    """
    frames = display_copies(report.frames, max_side) if max_side else report.frames
    if frames is report.frames:  # it fits: drawn on a copy
        frames = np.array(frames, dtype=np.uint8, copy=True)  # (T, H, W, 3)
    nh, nw = frames.shape[1:3]
    sx, sy = report.frame_scale((nh, nw))  # boxes are in the video's pixels, the frames display copies
    pos = {idx: i for i, idx in enumerate(report.sampling.get("indices", []))}
    thick = max(2, round(max(nw, nh) / 240))
    scale = max(0.4, max(nw, nh) / 900)
    for face in report.faces:
        per_frame = (face.explanation or {}).get("frame_p_fake")
        for k, (idx, box) in enumerate(zip(face.frame_indices, face.boxes)):
            i = pos.get(idx)
            if i is None:
                continue
            p = float(per_frame[k]) if per_frame is not None and k < len(per_frame) else face.p_fake
            colour = p_fake_colour(p)
            x0, y0, x1, y1 = (int(round(v * f)) for v, f in zip(box, (sx, sy, sx, sy)))
            cv2.rectangle(frames[i], (x0, y0), (x1, y1), colour, thick)
            cv2.putText(frames[i], f"face {face.track_id} {p:.2f}", (x0, max(12, y0 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, thick - 1), cv2.LINE_AA)
    return frames


def write_h264(frames: np.ndarray, path: str | os.PathLike, fps: float = BOXED_FPS) -> str:
    """Encode uint8 (T, H, W, 3) RGB as browser-playable H.264 mp4 (libx264, yuv420p); frames larger than
    BOXED_MAX_SIDE are scaled down (draw_boxes(..., max_side) hands them over small already)."""
    import imageio_ffmpeg

    t, h, w = frames.shape[:3]
    s = min(1.0, BOXED_MAX_SIDE / max(h, w))
    # yuv420p needs even sides.
    nw, nh = int(w * s) // 2 * 2, int(h * s) // 2 * 2
    writer = imageio_ffmpeg.write_frames(str(path), (nw, nh), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
                                         # veryfast: a preview, encoded in ~0.4 s instead of ~0.8 s (60 frames)
                                         output_params=["-crf", "23", "-preset", "veryfast", "-movflags",
                                                        "+faststart"],
                                         ffmpeg_log_level="error")
    writer.send(None)  # start the generator
    for f in frames:
        if (f.shape[1], f.shape[0]) != (nw, nh):
            f = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA)
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return str(path)


def boxed_video(report: Report, out_dir: str | os.PathLike) -> str | None:
    """Write `boxed.mp4` (sampled frames, boxes drawn, BOXED_FPS) into out_dir; None without frames."""
    if report.frames is None or len(report.frames) == 0:
        return None
    return write_h264(draw_boxes(report, BOXED_MAX_SIDE), Path(out_dir) / "boxed.mp4")


# ---------------------------------------------------------------- downloads
def write_downloads(report: Report, out_dir: str | os.PathLike) -> tuple[str, str]:
    """Write report.json and report.html into out_dir; returns their paths."""
    out = Path(out_dir)
    stem = Path(report.file.get("name", "report")).stem or "report"
    j, h = out / f"{stem}.report.json", out / f"{stem}.report.html"
    j.write_text(report.to_json() + "\n", encoding="utf-8")
    h.write_text(render_html(report), encoding="utf-8")
    return str(j), str(h)


# ---------------------------------------------------------------- model card
def model_card_markdown(spec: ModelSpec) -> str:
    """What the model is, its weights' sha256, training data, metrics, limits, licence/attribution."""
    lines = []
    if not spec.trained:
        lines += ["> ## ⚠️ UNTRAINED MODEL",
                  "> These weights are **randomly initialised**. Every verdict and probability this app "
                  "shows is **meaningless** until trained weights replace them.", ""]
    lines += [f"### {spec.display_name}",
              f"- **Architecture:** {spec.architecture} — {spec.backbone} per frame + LSTM "
              f"({spec.lstm_hidden} hidden{', bidirectional' if spec.bidirectional else ''}), "
              f"{spec.sequence_length} frames of {spec.input_size}×{spec.input_size} face crops, "
              f"labels {' / '.join(spec.labels)}, threshold {spec.threshold:.2f}",
              *([f"- **Residual-pair stream:** {4 * spec.residual_width} features per frame of high-pass "
                 "residual pairs, " + ("each sampled frame with the video frame right after it"
                                       if spec.residual_pairs == "next" else "consecutive sampled frames")]
                if spec.residual_width else []),
              *cues_markdown(spec.cues),
              f"- **Weights sha256:** `{spec.weights_sha256 or 'not recorded'}`",
              f"- **Trained on:** {spec.trained_on}"]
    if spec.training:
        lines += training_markdown(spec.training)
    lines += calibration_markdown(spec)
    lines += devset_markdown(spec.metrics.get("devset"))
    # Clip evaluations (evaluate --clips --sidecar-key K) as tables like the dev set's; the deletion test as
    # the sentence every report carries; anything else as a value. Never a raw nested dict: the card is read.
    other = {}
    for k, v in spec.metrics.items():
        if k == "devset":
            continue
        if isinstance(v, dict) and "roc_auc" in v and "per_family" in v:
            lines += devset_markdown(v, title=METRIC_TITLES.get(k, k), note="")
        elif k == "unseen_generators" and isinstance(v, dict):
            lines += unseen_generators_markdown(v)
        elif k == "faithfulness" and isinstance(v, dict):
            from detector.render.page import faithfulness_sentence

            ex = {"method": {"temporal": {"method": v.get("default_temporal_method", "integrated_gradients")}},
                  "faithfulness": v}
            lines += ["", f"**Explanations** — {faithfulness_sentence(ex)}"]
        else:
            other[k] = v
    if other:
        lines += ["", "**Measured metrics**", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {_brief(v)} |"
                  for k, v in other.items()]
    elif not spec.metrics:
        lines.append("- **Measured metrics:** none recorded")
    if spec.limits:
        lines += ["", "**Limits**", *[f"- {x}" for x in spec.limits]]
    lines += ["", f"- **Licence:** {spec.licence}"]
    if spec.attribution:
        lines.append(f"- **Attribution:** {spec.attribution}")
    lines += ["", "_A detector's score is evidence, not proof: check the Grad-CAM overlays and the "
                  "temporal chart before trusting a verdict._"]
    return "\n".join(lines)


def cues_markdown(cues: dict) -> list[str]:
    """Model-card lines for the sidecar's measured cues (detector/cues.py): what is added to the margin."""
    out = []
    for name, c in (cues or {}).items():
        out.append(f"- **Measured cue added to the verdict:** `{name}` × {c['weight']:g} (centred on {c['centre']:g}, "
                   f"the median of {c.get('reference', 'real clips')}; 90 % of them lie below {c.get('real_p90', '?')})"
                   + (f". {c['why']}" if c.get("why") else ""))
    return out


METRIC_TITLES = {"test_clips": "Identity-held-out test (synthetic fakes of held-out people, measured once)",
                 "val_clips": "Validation clips"}


def _brief(v, limit: int = 300) -> str:
    """A metric value for one table cell: scalars as they are, containers shortened to `limit` characters."""
    text = str(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def training_markdown(training: dict) -> list[str]:
    """Model-card lines on how the weights were made: the recipe, its size and machine, and the chain of
    weights it started from (name and sha256 of each `init`), not the whole nested record (in the sidecar)."""
    t = training
    bits = [str(t["recipe"])] if t.get("recipe") else []
    bits += [f"{k.replace('_', ' ')}: {t[k]}" for k in ("steps", "wall_time_s", "device", "hardware") if k in t]
    lines = ["- **Training:** " + ("; ".join(bits) if bits else _brief(t))]
    chain, init = [], t.get("init")
    while isinstance(init, dict) and init.get("name"):
        chain.append(f"{init['name']} (sha256 {str(init.get('weights_sha256', ''))[:12]}…)")
        init = (init.get("training") or {}).get("init")
    if chain:
        lines.append("- **Started from:** " + " ← ".join(chain) + " (full records in the sidecar's `training`)")
    if t.get("members"):  # merge-heads: an ensemble of seeds' heads
        lines.append("- **Merged heads:** " + "; ".join(
            f"{m.get('name')} (seed {m.get('head_seed')}, validation AUC {m.get('val_auc')})" for m in t["members"]))
    return lines


def calibration_markdown(spec: ModelSpec) -> list[str]:
    """Model-card lines on the calibration: threshold, band and the rates measured on validation clips."""
    c = spec.calibration
    if not c or "threshold" not in c:
        return ["- **Calibration:** none: p(fake) is the raw model probability and the threshold "
                f"{spec.threshold:.2f} was not chosen on measured false-alarm rates"]
    v = c.get("validation", {})
    return [f"- **Calibration:** {c.get('method')} (a = {c['a']:.3f}, b = {c['b']:.3f}) fitted on "
            f"{v.get('data', 'validation clips')}: threshold **{c['threshold']:.3f}**, INCONCLUSIVE below it down "
            f"to {c.get('band_low', c['threshold']):.3f}; on those clips {v.get('false_alarms')} of "
            f"{v.get('n_real')} real are flagged FAKE and {v.get('detected')} of {v.get('n_fake')} fakes caught "
            f"({c.get('date', '')})"] + _real_world_markdown(c.get("real_world"))


def _real_world_markdown(rw: dict | None) -> list[str]:
    """The calibration's real-world line: how the threshold was raised and its held-out-source rate."""
    if not rw or "false_alarms_leave_one_source_out" not in rw:
        return []
    return [f"- **Threshold on real footage:** {'raised' if rw.get('raised') else 'checked'} on {rw['n_real']} "
            f"real-world real clips of {rw['sources']} sources (the dev set's reals; its fakes unused) so that at "
            f"most {rw['target_fpr']:.0%} reach it ({rw['false_alarms_in_sample']} do); with each source left out "
            f"of the fit, **{rw['false_alarms_leave_one_source_out']} of {rw['n_real']}** were flagged: the rate "
            "to expect on footage from a source it has not seen"]


def _auc_text(a: float | None, ci: list | None) -> str:
    """A ROC-AUC with its 95 % interval (which says how little a few dozen clips can tell apart); no interval
    where none was measured (too few clips: None, or NaN bounds)."""
    if a is None:
        return "n/a"
    measured = ci and len(ci) == 2 and all(isinstance(c, (int, float)) and c == c for c in ci)
    return f"{a:.3f}" + (" (95% CI {:.2f}-{:.2f})".format(*ci) if measured else "")


def unseen_generators_markdown(u: dict) -> list[str]:
    """Model-card table of `metrics.unseen_generators`: each generator method held out, its fakes' ROC-AUC
    against the real clips, and the share of real clips the shipped threshold calls FAKE."""
    lines = ["", f"**Generators it never saw** (leave one method out; mean over methods "
                 f"{u.get('mean_roc_auc', float('nan')):.3f}; real clips called FAKE at the threshold "
                 f"{u.get('fpr', float('nan')):.0%} of {u.get('n_real', '?')})", "",
             "| held-out method or family | fakes | ROC-AUC vs real |", "|---|---|---|"]
    for group in ("per_method", "per_family"):
        lines += [f"| {name}{' (family)' if group == 'per_family' else ''} | {d.get('n')} | "
                  f"{_auc_text(d.get('roc_auc'), d.get('ci95'))} |"
                  for name, d in u.get(group, {}).items()]
    return lines


def devset_markdown(dev: dict | None, title: str = "Dev set", note: str = "never trained on; ") -> list[str]:
    """Model-card table: figures of a clip evaluation overall and per family (by default the dev set: public
    clips, never trained on)."""
    if not dev:
        return []

    def pct(x) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    fam = dev.get("per_family", {})
    auc = dev.get("roc_auc")
    lines = ["", f"**{title}** ({dev.get('data', 'public clips')}; {note}threshold "
                 f"{dev.get('threshold', 0):.3f}{', calibrated' if dev.get('calibrated') else ', raw'}; "
                 f"T = {dev.get('frames')}; {dev.get('date', '')})", "",
             "| clips | n | NO_FACE | called FAKE | INCONCLUSIVE | ROC-AUC vs real |", "|---|---|---|---|---|---|",
             f"| all real | {dev.get('n_real')} | {dev.get('no_face', {}).get('n_real', '')} | "
             f"{dev.get('flagged_real')} ({pct(dev.get('fpr'))}) | {dev.get('inconclusive_real')} | |",
             f"| all fake | {dev.get('n_fake')} | {dev.get('no_face', {}).get('n_fake', '')} | "
             f"{dev.get('detected_fake')} ({pct(dev.get('tpr'))}) | {dev.get('inconclusive_fake')} | "
             f"{_auc_text(auc, dev.get('roc_auc_ci95'))} |"]
    if "reads" in dev:
        lines[1] += f" — read {dev['reads']} time(s) for these weights: {dev.get('reads_note', '')}"
    for g, d in fam.items():
        if g == "real":
            continue
        a = _auc_text(d.get("roc_auc_vs_all_real"), d.get("roc_auc_vs_all_real_ci95"))
        lines.append(f"| {g} | {d.get('n_scored')} | {d.get('n_no_face')} | {d.get('called_fake')} "
                     f"({pct(d.get('fake_rate'))}) | {d.get('inconclusive')} | {a} |")
    return lines
