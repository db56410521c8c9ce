"""A scan's HTML index: one row per scanned file, highest p_fake first, thumbnails linking to per-file pages.

``thumbnail_jpeg(report)`` makes the small picture a worker sends back with each result;
``render_index(rows, pages)`` builds the page from the scan's JSONL rows (parsed dicts: reports as
``analyze --json`` writes them, or error rows ``{"file": {...}, "error": ...}``), so an index rebuilt
after a resumed scan covers every run. No scripts, no network; text escaped with html.escape.
"""

from __future__ import annotations

import html

import cv2
import numpy as np

from detector.report import Report

THUMB = 96  # px, side of a thumbnail in the index

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:.9em;
vertical-align:middle}td img{width:96px;height:auto;display:block}.FAKE{color:#b00;font-weight:bold}
.REAL{color:#070}.NO_FACE{color:#666}.error{color:#a60}code{font-size:.85em;word-break:break-all}"""


def thumbnail(report: Report) -> np.ndarray | None:
    """uint8 (h, w, 3) RGB: the middle crop of the face with the highest p_fake, else the middle sampled
    frame scaled to THUMB px wide; None when the report carries no pixels."""
    faces = [f for f in report.faces if f.crops is not None and len(f.crops)]
    if faces:
        face = max(faces, key=lambda f: f.p_fake)
        img = face.crops[len(face.crops) // 2]
    elif report.frames is not None and len(report.frames):
        img = report.frames[len(report.frames) // 2]
    else:
        return None
    h = max(1, round(img.shape[0] * THUMB / img.shape[1]))
    return cv2.resize(np.ascontiguousarray(img), (THUMB, h), interpolation=cv2.INTER_AREA)


def thumbnail_jpeg(report: Report, quality: int = 85) -> bytes | None:
    """The thumbnail as JPEG bytes (a few kB), or None."""
    img = thumbnail(report)
    if img is None:
        return None
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else None


def sort_key(row: dict) -> tuple[int, float]:
    """Highest p_fake first; then faceless reports; errors last."""
    if "error" in row:
        return (2, 0.0)
    p = row.get("p_fake")
    return (1, 0.0) if p is None else (0, -float(p))


def render_index(rows: list[dict], pages: dict[int, tuple[str | None, str | None]], title: str = "Scan") -> str:
    """The index page (str). rows: parsed JSONL rows; pages: row position -> (report page, thumbnail)
    as paths relative to the index, either None where that file was not written."""
    e = html.escape
    order = sorted(range(len(rows)), key=lambda i: sort_key(rows[i]))
    counts: dict[str, int] = {}
    for r in rows:
        k = "error" if "error" in r else str(r.get("verdict"))
        counts[k] = counts.get(k, 0) + 1
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>",
           "<p>" + ", ".join(f"<span class='{e(k)}'>{e(k)}</span> {n}" for k, n in sorted(counts.items()))
           + f" — {len(rows)} files, highest p_fake first. A score is a lead, not proof: open a report for "
           "its face crops and explanations.</p>",
           "<table><tr><th></th><th>verdict</th><th>p_fake</th><th>faces</th><th>duration</th><th>file</th>"
           "<th>sha256</th></tr>"]
    for i in order:
        r = rows[i]
        f = r.get("file", {})
        page, thumb = pages.get(i, (None, None))
        img = f"<img src='{e(thumb)}' alt=''>" if thumb else ""
        if page:
            img = f"<a href='{e(page)}'>{img or 'report'}</a>"
        name = e(str(f.get("path") or f.get("name", "?")))
        if page:
            name = f"<a href='{e(page)}'>{name}</a>"
        if "error" in r:
            cells = ["<span class='error'>error</span>", "", "", "", f"{name}<br>{e(str(r['error']))}"]
        else:
            v, p = str(r.get("verdict")), r.get("p_fake")
            dur = (r.get("video") or {}).get("duration_s")
            cells = [f"<span class='{e(v)}'>{e(v)}</span>", "" if p is None else f"{float(p):.3f}",
                     str(len(r.get("faces", []))), "" if dur is None else f"{float(dur):.1f} s", name]
        out.append(f"<tr><td>{img}</td>" + "".join(f"<td>{c}</td>" for c in cells)
                   + f"<td><code>{e(str(f.get('sha256', ''))[:16])}</code></td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)
