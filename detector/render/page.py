"""A Report as one self-contained HTML page: ``render_html(report) -> str``.

Images are embedded as base64 JPEG thumbnails, curves as inline SVG; no scripts, no network. The CLI's report.html,
the app's HTML download and the scan index all come from here. All text is escaped with html.escape.
"""

from __future__ import annotations

import base64
import html

import cv2
import numpy as np

from detector.calibration import logit, sigmoid
from detector.cues import Regions, cue_sentence, detail_map, median_frame
from detector.plain import evidence_lines

THUMB = 96  # px, crop thumbnails in the page
FRAME_THUMB = 320  # px wide, full-frame overlays in the page
JPEG_QUALITY = 85  # embedded thumbnails: ~4 kB a 112-px crop, artefacts below what the overlays' colours show
TOP_FRAMES = 3  # frames shown first per face: those that pushed the verdict towards FAKE most
TOWARDS_FAKE, TOWARDS_REAL = "#d62728", "#1f77b4"  # red, blue


def _img(rgb: np.ndarray, width: int | None = None, title: str = "") -> str:
    """An <img> with the RGB image embedded as a base64 JPEG (quality JPEG_QUALITY), optionally downscaled to
    `width` px. JPEG, not PNG: a report with every frame's crop and maps was 5.7 MB as PNG."""
    if width is not None and rgb.shape[1] > width:
        h = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return ""
    b64 = base64.b64encode(buf.tobytes()).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{b64}" title="{html.escape(title)}" alt="{html.escape(title)}">'


_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")


def raw_threshold(report, face=None) -> float:
    """The threshold on the scale of the per-frame curves, which are the network's raw probabilities
    (uncalibrated). For a face whose verdict adds measured cues (detector/cues.py), the network's p at which
    that face's verdict reaches the threshold: the cues' contribution is taken off the threshold's margin."""
    raw = float((report.calibration or {}).get("threshold_raw", report.threshold))
    shift = sum(c["contribution"] for c in (getattr(face, "cues", None) or {}).values())
    return sigmoid(logit(raw) - shift) if shift else raw


def svg_curves(series: dict[str, list[float]], x_labels: list[int], threshold: float | None = None,
               width: int = 640, height: int = 180) -> str:
    """Inline SVG line chart of curves in [0, 1] over frames (x_labels: video frame indices)."""
    pad_l, pad_r, pad_t, pad_b = 34, 10, 10, 34
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return pad_l + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return pad_t + h * (1 - min(max(float(v), 0.0), 1.0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>']
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{pad_l - 4}" y="{y(v) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{v:g}</text>')
    step = max(1, n // 10)
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{pad_t + h + 12}" font-size="10" text-anchor="middle">'
                     f'{int(x_labels[i])}</text>')
    parts.append(f'<text x="{pad_l + w / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">'
                 'video frame</text>')
    if threshold is not None:
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
                     'stroke="#999" stroke-dasharray="4 3"/>')
    for k, (name, vals) in enumerate(series.items()):
        c = _COLOURS[k % len(_COLOURS)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        if len(vals) == 1:
            parts.append(f'<circle cx="{x(0):.1f}" cy="{y(vals[0]):.1f}" r="3" fill="{c}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{pad_l + 6 + 150 * k}" y="{pad_t + 12}" font-size="11" fill="{c}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def top_positions(explanation: dict, k: int = TOP_FRAMES) -> list[int]:
    """Positions in the track of the frames that pushed towards FAKE most, largest first: the explanation's
    ``top_frames`` when it has them, else the k largest positive ``temporal_importance`` values."""
    if explanation.get("top_frames") is not None:
        return [int(t) for t in explanation["top_frames"]][:k]
    v = explanation.get("temporal_importance")
    if v is None:
        return []
    v = np.asarray(v, dtype=np.float64)
    return [int(t) for t in np.argsort(-v, kind="stable")[:k] if v[t] > 0]


def faithfulness_sentence(explanations: dict, spatial: bool = True) -> str:
    """One sentence: how well the shown attribution was measured to find what the model uses (deletion
    test of detector/training/faithfulness.py, as stored in the weights' sidecar), or that it was not.

    spatial=False leaves out the Grad-CAM maps' figures, for a page that states them under each map
    (`map_check`): the HTML report and the app's chart note."""
    method = explanations.get("method", {}).get("temporal", {}).get("method", "the attribution")
    f = explanations.get("faithfulness")
    if not f:
        return (f"Faithfulness not measured: no deletion test of {method} is recorded for this model "
                "(detector/training/faithfulness.py), so read the bars as the model's view, unverified.")
    k = int(f.get("headline_k", 3))  # 15 % of the measured frames (3 of 20, 9 of 60); older entries: 3
    top = f.get("temporal", {}).get(method, {}).get(f"k{k}")
    if not top:
        return (f"Faithfulness: a deletion test is recorded for this model, but not for {method} "
                "(see explanations.faithfulness in the JSON report).")
    frames = f.get("method", {}).get("frames")
    text = (f"Faithfulness, measured on {f.get('measured_on', 'a benchmark')}: overwriting the {k} frames "
            f"{'of ' + str(frames) + ' ' if frames else ''}{method} ranks highest with their neighbours moved the "
            f"fake logit margin by {-top['top_drop']:+.2f} on average, vs {-top['random_drop']:+.2f} for {k} random "
            "frames")
    if not spatial:
        return text + "."
    sp = f.get("spatial", {})
    if "top_drop" in sp and "random_blobs_drop" in sp:
        text += (f"; filling the top 20% {'appearance ' if 'spatial_texture' in f else ''}Grad-CAM pixels with "
                 f"the crop's mean colour moved it by "
                 f"{-sp['top_drop']:+.2f}, vs {-sp['random_blobs_drop']:+.2f} for random patches")
    tx = f.get("spatial_texture", {})
    if "top_drop" in tx and "random_blobs_drop" in tx:
        text += (f"; the same for the top 20% texture Grad-CAM pixels (in the frame and its successor): "
                 f"{-tx['top_drop']:+.2f}, vs {-tx['random_blobs_drop']:+.2f}")
    return text + "."


MAP_KEYS = {"appearance": "spatial", "texture": "spatial_texture"}


def map_check(faithfulness: dict | None, layer: str = "appearance") -> str:
    """One sentence: what the deletion test stored in the weights' sidecar (metrics.faithfulness, from
    detector/training/faithfulness.py) found for the Grad-CAM map of `layer` ("appearance" or "texture").

    A test passes when filling the map's top pixels lowers the fake margin more than random patches of the
    same shape do, on average and on most clips. The map "points at what the model uses" when the test
    passes with the fill seen by the whole model and, where recorded, by the map's own stream alone
    ("isolated"); otherwise the sentence says it does not, so that nobody reads it as the verdict's reason."""
    sp = (faithfulness or {}).get(MAP_KEYS[layer], {})
    if "top_drop" not in sp or "random_blobs_drop" not in sp:
        return "Not checked: no deletion test of this map is recorded for this model."

    def moved(drop: float) -> str:
        return f"{'lowered' if drop >= 0 else 'raised'} it by {abs(drop):.2f}"

    def passes(t: dict) -> bool:
        share = t.get("clips_top_beats_blobs")
        return t["top_drop"] > t["random_blobs_drop"] and (share is None or share > 0.5)

    share = sp.get("clips_top_beats_blobs")
    text = (f"Checked on {faithfulness.get('measured_on', 'a benchmark')}: filling the top 20% of this map's "
            f"pixels with the crop's mean colour moved the fake margin: {moved(sp['top_drop'])}, against "
            f"{moved(sp['random_blobs_drop'])} for random patches of the same shape"
            + (f" (the map's pixels mattered more on {share:.0%} of clips)" if share is not None else ""))
    ok = passes(sp)
    iso = sp.get("isolated")
    if iso and "top_drop" in iso and "random_blobs_drop" in iso:
        text += (f"; with the fill seen only by the stream this map explains: {moved(iso['top_drop'])} against "
                 f"{moved(iso['random_blobs_drop'])}")
        ok = ok and passes(iso)
    return text + (": it points at what the model uses." if ok else
                   ": it does NOT point at what decided the verdict (read it as where these features look).")


def streams_sentence(per_face: dict) -> str:
    """One sentence for a two-stream model (per_face["streams"], explain._streams): how much of the face's
    Integrated Gradients came from its appearance and how much from texture renewal between frames; ""
    for a model without the residual-pair stream."""
    st = per_face.get("streams")
    if not st:
        return ""
    a, r = st["total"]["appearance"], st["total"]["texture_renewal"]
    lead = "texture renewal between frames" if abs(r) > abs(a) else "the appearance of single frames"
    return (f"Which stream carried it (Integrated Gradients, logit-margin units, + = towards FAKE): appearance of "
            f"single frames {a:+.2f}, texture renewal between frames {r:+.2f}; the larger share came from {lead}.")


def svg_bars(values: list[float], x_labels: list[int], top: list[int] = (), width: int = 640,
             height: int = 200) -> str:
    """Inline SVG of signed per-frame values as bars around a zero line: red above (towards FAKE), blue
    below (towards REAL); the `top` positions are labelled #1, #2, ... (x_labels: video frame indices)."""
    pad_l, pad_r, pad_t, pad_b = 44, 10, 16, 34
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(values), 1)
    span = max((abs(float(v)) for v in values), default=0.0) or 1.0
    slot = w / n
    mid = pad_t + h / 2

    def y(v: float) -> float:
        return mid - (h / 2) * float(v) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>',
             f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="#666"/>']
    for v in (span, 0.0, -span):
        parts.append(f'<text x="{pad_l - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:+.2g}</text>')
    for i, v in enumerate(values):
        top_y, bottom_y = sorted((y(v), mid))
        c = TOWARDS_FAKE if v > 0 else TOWARDS_REAL
        parts.append(f'<rect x="{pad_l + slot * i + slot * 0.15:.1f}" y="{top_y:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{max(bottom_y - top_y, 0.5):.1f}" fill="{c}"><title>frame {int(x_labels[i])}: '
                     f'{float(v):+.4f}</title></rect>')
    for rank, i in enumerate(top, 1):
        parts.append(f'<text x="{pad_l + slot * (i + 0.5):.1f}" y="{max(y(values[i]) - 3, pad_t + 9):.1f}" '
                     f'font-size="10" font-weight="bold" text-anchor="middle">#{rank}</text>')
    step = max(1, n // 10)
    for i in range(0, len(x_labels), step):
        parts.append(f'<text x="{pad_l + slot * (i + 0.5):.1f}" y="{pad_t + h + 12}" font-size="10" '
                     f'text-anchor="middle">{int(x_labels[i])}</text>')
    parts.append(f'<text x="{pad_l + w / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">'
                 'video frame (red: towards FAKE, blue: towards REAL)</text></svg>')
    return "".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}.FAKE{color:#b00}.REAL{color:#070}.NO_FACE{color:#666}.INCONCLUSIVE{color:#a60}
.meaning{background:#eef4ff;border-left:4px solid #47c;padding:.4em .8em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
font-size:.9em;vertical-align:top}.strip{display:flex;flex-wrap:wrap;gap:3px}.strip figure{margin:0;
text-align:center;font-size:.7em}.strip img{width:96px;height:96px;display:block}
.warn{background:#fff4e0;border-left:4px solid #f90;padding:.4em .8em;margin:.3em 0}
.frames img{margin:2px}.frames figure{display:inline-block;margin:2px;text-align:center;font-size:.8em}
code{font-size:.85em;word-break:break-all}.plain{font-size:1.15em}.evidence th{white-space:nowrap}
details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}"""


def _row(k: str, v) -> str:
    return f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"


def cue_lines(report) -> list[str]:
    """Per face with sidecar cues: the model's own margin, then each cue's reading and what it added."""
    out = []
    for f in report.faces:
        if f.cues:
            out.append(f"face {f.track_id}: the network's fake margin {f.model_margin:+.2f}; "
                       + "; ".join(cue_sentence(k, c) for k, c in f.cues.items())
                       + f"; together {f.margin:+.2f}")
    return out


def cue_panel(crops: np.ndarray, regions: Regions = Regions(), scale: int = 2, frame: int | None = None) -> np.ndarray:
    """What the mouth-detail cue compares, for people: uint8 (scale S, 2 scale S, 3) RGB. Left: the track's
    median-reading crop; right: its fine detail (|Laplacian|, brighter = more), both with the upper-face region
    outlined in cyan and the lower-face region in orange. crops: uint8 (T, S, S, 3) RGB. frame: that crop's
    position when the cue's reading already gave it (FaceResult.cues[...]["frame"]); None: found here."""
    crop = crops[median_frame(crops, regions) if frame is None else frame]
    side = crop.shape[0]
    d = detail_map(crop)
    d = np.sqrt(d / (np.percentile(d, 99) + 1e-6)).clip(0, 1)  # sqrt: faint texture stays visible beside edges
    detail = cv2.cvtColor(cv2.applyColorMap((d * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    up, low = regions.masks(side)
    panels = []
    for img in (crop, detail):
        img = cv2.resize(img, (side * scale, side * scale), interpolation=cv2.INTER_NEAREST)
        for mask, colour in ((up, (0, 220, 255)), (low, (255, 150, 0))):
            m = cv2.resize(mask.astype(np.uint8), (side * scale, side * scale), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, contours, -1, colour, 1)
        panels.append(img)
    return np.concatenate(panels, 1)


def evidence_html(d: dict) -> list[str]:
    """The three evidence lines (detector/plain.py) of a report dict as a table; the Detector row is the verdict
    in plain words."""
    e = html.escape
    rows = "".join(f"<tr><th>{e(t)}</th><td" + (" class='plain' id='verdict-sentence'" if i == 0 else "")
                   + f">{e(x)}</td></tr>" for i, (t, x) in enumerate(evidence_lines(d)))
    return [f"<table class='evidence' id='evidence'>{rows}</table>"]


def provenance_details_html(prov: dict | None) -> list[str]:
    """The Content Credentials fields and the container tags as read, for the details section."""
    if not prov:
        return []
    c, m = prov.get("c2pa") or {}, prov.get("container") or {}
    keep = ("state", "valid", "trusted", "trust_list", "signer", "issuer", "signed_at", "claim_generator", "title",
            "actions", "source_types", "validation_errors", "manifests", "error")
    rows = [_row(f"C2PA {k}", v if not isinstance(v, list) else ", ".join(map(str, v)) or "none")
            for k, v in c.items() if k in keep and v not in (None, [], "")]
    rows += [_row(f"tag {k}", v) for k, v in (m.get("tags") or {}).items()]
    rows += [_row(f"stream {i}", f"{s.get('kind')} {s.get('codec')}, {s.get('duration_s')} s, handler "
                                 f"{s.get('handler') or 'none'}") for i, s in enumerate(m.get("streams") or [])]
    if m.get("frame_intervals_ms"):
        fi = m["frame_intervals_ms"]
        rows.append(_row("frame spacing (ms)", f"{fi['min']}-{fi['max']}, mean {fi['mean']}, cv {fi['cv']} over "
                                               f"{fi['n']} gaps"))
    rows += [_row(f"XMP {k}", v) for k, v in (m.get("xmp") or {}).items()]
    rows.append(_row("provenance read in", f"{prov.get('read_ms', 0):.0f} ms"))
    return ["<table class='provenance'>", *rows, "</table>"]


def decided_line(report) -> str:
    """How many frames decided the verdict (detector/adaptive.py), "" when the rule did not run."""
    ad = report.sampling.get("adaptive")
    if not ad:
        return ""
    if ad.get("stopped_early"):
        return (f"Decided on the first {report.sampling.get('decided_at')} of {ad['total']} frames: their score was "
                "far from the threshold and band (the rest were not read).")
    return (f"Decided on all {report.sampling.get('decided_at')} frames: the first {ad['first']} "
            f"(p(fake) {ad['p_fake_first']}) were too close to the threshold or band to stop.")


def _frames_sampled(report, sampling: dict) -> str:
    return "; ".join(filter(None, [f"{sampling.get('used')} of {sampling.get('requested')}", decided_line(report)]))


def render_html(report) -> str:
    """The report as one self-contained HTML page (str). Works with or without explanations."""
    d = report.to_dict()
    out = _verdict_lines(report, d) + _details_table(report, d)
    ex = report.explanations or {}
    per_face = {pf["track_id"]: pf for pf in ex.get("per_face", [])}
    if ex:
        out.append(_explanations_intro(ex))
    for face in report.faces:
        out += _face_section(report, face, ex, per_face.get(face.track_id))
    out.append("</body></html>")
    return "\n".join(out)


def _verdict_lines(report, d: dict) -> list[str]:
    """The page's head: title, verdict, p_fake, what it means, the cue lines and panels, warnings."""
    e = html.escape
    f = d.get("file", {})
    verdict = str(report.verdict)
    p = "n/a" if report.p_fake is None else f"{report.p_fake:.3f}"
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(str(f.get('name', 'report')))}: {e(verdict)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>Deepfake forensics report: <span class='{e(verdict)}'>{e(verdict)}</span></h1>",
           *evidence_html(d),
           "<details open><summary>Details: the numbers, where they come from, per-face margins</summary>",
           f"<p>p_fake = <b>{e(p)}</b> (threshold {e(f'{report.threshold:.2f}')})</p>"]
    cal = getattr(report, "calibration", None) or {}
    if cal.get("meaning"):
        says = cal["meaning"]
        out.append(f"<p class='meaning'>What this means: {e(says[:1].upper() + says[1:])}.</p>")
    if getattr(report, "p_fake_raw", None) is not None and cal.get("calibrated"):
        out.append(f"<p>calibrated p_fake; the model's raw p_fake was {report.p_fake_raw:.3f}</p>")
    for line in cue_lines(report):
        out.append(f"<p class='cue'>{e(line[:1].upper() + line[1:])}</p>")
    for face in report.faces:
        if face.cues and face.crops is not None:
            frame = face.cues.get("mouth_detail_deficit", {}).get("frame")
            out.append(f"<figure>{_img(cue_panel(face.crops, frame=frame), title='mouth detail')}<figcaption>face "
                       f"{face.track_id}: what the mouth-detail cue compares, on the frame with the median reading: "
                       "upper face (cyan) against lower face (orange); right, the fine detail it measures "
                       "(brighter = more)</figcaption></figure>")
    out += provenance_details_html(d.get("provenance"))
    out.append("</details>")
    for w in report.warnings:
        out.append(f"<div class='warn'>{e(str(w))}</div>")
    return out


def _details_table(report, d: dict) -> list[str]:
    """File, video, model, sampling, timings and software as one table."""
    f, m, sw, s = d.get("file", {}), d.get("model", {}), d.get("software", {}), d.get("sampling", {})
    out = ["<table>"]
    out += [_row("file", f.get("name", "")), _row("sha256", f.get("sha256", "")),
            _row("bytes", f.get("bytes", ""))]
    v = d.get("video", {})
    out.append(_row("video", f"{v.get('width')}x{v.get('height')}, {v.get('fps')} fps, "
                             f"{v.get('frame_count')} frames, {v.get('duration_s')} s, "
                             f"codec {v.get('codec')}"))
    out += [_row("model", f"{m.get('display_name', m.get('name', ''))} ({m.get('name', '')})"),
            _row("weights sha256", m.get("weights_sha256", "")), _row("trained on", m.get("trained_on", "")),
            _row("precision", m.get("precision", "") + (f", trunk on {m['engine']}" if m.get("engine") else "")),
            _row("frames sampled", _frames_sampled(report, s)),
            _row("timings (s)", ", ".join(f"{k} {val:.2f}" for k, val in d.get("timings_s", {}).items())),
            _row("software", ", ".join(f"{k} {val}" for k, val in sw.items())),
            _row("date", d.get("created", ""))]
    out.append("</table>")
    return out


def _explanations_intro(ex: dict) -> str:
    """One paragraph: the class explained and what each map and the temporal method measure."""
    e = html.escape
    return (f"<p>Explanations for the <b>{e(str(ex.get('target')))}</b> class. "
            f"Spatial: {e(str(ex['method']['gradcam']['description']))}; layer "
            f"<code>{e(str(ex['method']['gradcam']['layer']))}</code>. "
            + (f"Grain between frames: {e(str(ex['method']['gradcam_texture']['description']))}; layer "
               f"<code>{e(str(ex['method']['gradcam_texture']['layer']))}</code>. "
               if "gradcam_texture" in ex["method"] else "")
            + f"Temporal ({e(str(ex['method']['temporal'].get('method', '')))}): "
            f"{e(str(ex['method']['temporal']['description']))}; "
            f"{e(str(ex['method']['temporal'].get('sign', '')))}. "
            "Heatmap colours: red = high, blue = low.</p>")


def _face_section(report, face, ex: dict, pf: dict | None) -> list[str]:
    """One face: its crops, then (with explanations) the maps, the temporal bars, the p(fake) curve and the
    frames that moved the verdict most."""
    e = html.escape
    out = [f"<h2>Face {e(str(face.track_id))}: p_fake {face.p_fake:.3f}, {len(face.frame_indices)} frames</h2>",
           _strip("crops", face.crops, face.frame_indices)]
    fx = face.explanation
    if not fx or not pf:
        return out
    # The texture map first when there is one: on the default weights it is the one the deletion test
    # found pointing at what the model uses (map_check says so, or not, under each strip).
    faith = ex.get("faithfulness")
    if fx.get("texture_overlays") is not None:
        out.append(_strip("Grad-CAM on the grain between each frame and the next (residual-pair stream)",
                          fx["texture_overlays"], face.frame_indices)
                   + f"<p>{e(map_check(faith, 'texture'))}</p>")
    out.append(_strip("Grad-CAM overlays (appearance: the ResNeXt50's last block)", fx["crop_overlays"],
                      face.frame_indices) + f"<p>{e(map_check(faith, 'appearance'))}</p>")
    top = top_positions(fx)  # positions in the track (the JSON's top_frames are video frame indices)
    method = pf.get("temporal_method", "attribution")
    out.append(f"<h3>Which frames moved the verdict ({e(str(method))}, signed)</h3>"
               + svg_bars(pf["temporal_importance"], face.frame_indices, top)
               + f"<p>{e(faithfulness_sentence(ex, spatial=False))}</p>"
               + (f"<p>{e(streams_sentence(pf))}</p>" if pf.get("streams") else ""))
    out.append("<h3>p(fake) per frame</h3>"
               + svg_curves({"p_fake up to frame": pf["frame_p_fake"]}, face.frame_indices,
                            raw_threshold(report, face)))
    if top:
        images = fx["frame_overlays"] if fx.get("frame_overlays") is not None else fx["crop_overlays"]
        width = FRAME_THUMB if fx.get("frame_overlays") is not None else None
        # Beside each frame (appearance map) its crop's grain map, where there is one: on the default
        # weights the map that points at what the model uses (map_check).
        tex = fx.get("texture_overlays")
        imgs = "".join(f"<figure>{_img(images[t], width, f'frame {face.frame_indices[t]}')}"
                       + ("" if tex is None else _img(tex[t], None, f"grain map, frame {face.frame_indices[t]}"))
                       + f"<figcaption>#{r} frame {int(face.frame_indices[t])}"
                       + ("" if tex is None else " (appearance map; beside it the grain map)")
                       + "</figcaption></figure>"
                       for r, t in enumerate(top, 1))
        out.append(f"<h3>The frames that moved the verdict most (towards FAKE)</h3>"
                   f"<div class='frames'>{imgs}</div>")
    return out


def _strip(title: str, images: np.ndarray | None, indices: list[int]) -> str:
    if images is None:
        return ""
    figs = "".join(f"<figure>{_img(im, None, f'frame {i}')}<figcaption>{int(i)}</figcaption></figure>"
                   for im, i in zip(images, indices))
    return f"<h3>{html.escape(title)}</h3><div class='strip'>{figs}</div>"
