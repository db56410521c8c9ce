"""What a file's container says about how it was written: ``read_container(path) -> ContainerMetadata``.

Videos are read with PyAV (FFmpeg's demuxers: tags, streams, packet timestamps; one frame is decoded for
the display rotation); images with Pillow (EXIF make / model / software / date, PNG text chunks). An XMP
packet anywhere in the first or last 2 MiB adds its creator tool and camera tags.

Every tag is something the writer chose to write and anyone can rewrite, so the `flags` state facts
("written by FFmpeg's muxer (Lavf...)", "no camera make or model"), never judgements: a phone original
re-shared through a messaging app loses its camera tags too.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

# Container tags that name a device or software (QuickTime's com.apple.*, Android's com.android.*,
# generic ones). First match wins.
MAKE_TAGS = ("com.apple.quicktime.make", "make", "com.android.manufacturer", "manufacturer")
MODEL_TAGS = ("com.apple.quicktime.model", "model", "com.android.model")
SOFTWARE_TAGS = ("com.apple.quicktime.software", "software", "com.android.version", "writing_application")
MAX_PACKETS = 600  # video packets whose timestamps are read for the frame-rate check (~20 s at 30 fps)
XMP_SCAN = 2 * 2**20  # bytes scanned for an XMP packet at each end of the file
MAX_TAG_CHARS = 300
MAX_TAGS = 60
# PNG text chunks in which image generators store their prompt and settings (AUTOMATIC1111 / Forge write
# "parameters", ComfyUI "prompt" and "workflow", NovelAI "Comment" with a "Software: NovelAI" chunk).
GENERATOR_PNG_KEYS = ("parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata")


@dataclass(frozen=True)
class StreamInfo:
    """One stream: kind ("video", "audio", ...), codec name, duration in seconds (None if unknown), handler."""

    kind: str
    codec: str
    duration_s: float | None = None
    handler: str | None = None


@dataclass(frozen=True)
class ContainerMetadata:
    """A file's container facts. tags: every container-level tag as written (values cut to 300 chars);
    frame_intervals_ms: {"n", "min", "max", "mean", "cv"} of the first video stream's packet spacing
    (cv: standard deviation / mean; 0 for a constant frame rate). flags: the plain factual lines."""

    kind: str  # "video", "image" or "unknown"
    format: str | None = None
    brand: str | None = None
    encoder: str | None = None
    creation_time: str | None = None
    comment: str | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None
    handler_names: tuple[str, ...] = ()
    audio: bool | None = None
    streams: tuple[StreamInfo, ...] = ()
    frame_intervals_ms: dict | None = None
    rotation: int | None = None
    xmp: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        d["streams"] = [s.__dict__ for s in self.streams]
        return d


def read_container(path: str | Path, image: bool = False) -> ContainerMetadata:
    """The container facts of a video (image=False) or an image; never raises for what is in the file."""
    path = Path(path)
    xmp = _xmp(path)
    try:
        meta = _read_image(path, xmp) if image else _read_video(path, xmp)
    except _Unreadable as e:
        meta = ContainerMetadata(kind="image" if image else "video", xmp=xmp, error=str(e))
    return _with_flags(meta)


class _Unreadable(Exception):
    pass


def _clean(v, limit: int = MAX_TAG_CHARS) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = str(v).replace("\x00", "").strip()
    if not s:
        return None
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _tags(d) -> dict:
    out = {}
    for k, v in list(dict(d or {}).items())[:MAX_TAGS]:
        c = _clean(v)
        if c is not None:
            out[str(_clean(k, 80))] = c
    return out


def _first(tags: dict, names: tuple[str, ...]) -> str | None:
    low = {k.lower(): v for k, v in tags.items()}
    return next((low[n] for n in names if n in low), None)


def _read_video(path: Path, xmp: dict) -> ContainerMetadata:
    try:
        import av
    except ImportError as e:
        raise _Unreadable(f"PyAV is not installed ({e}); pip install av") from None
    try:
        with av.open(str(path), metadata_errors="replace") as c:
            tags = _tags(c.metadata)
            streams, handlers, stream_tags = [], [], {}
            for s in c.streams:
                st = _tags(s.metadata)
                stream_tags.update({k: v for k, v in st.items() if k not in stream_tags})
                dur = float(s.duration * s.time_base) if s.duration is not None and s.time_base else None
                h = st.get("handler_name")
                if h and h not in handlers:
                    handlers.append(h)
                codec = s.codec_context.name if s.codec_context is not None else "?"
                streams.append(StreamInfo(s.type, str(codec), None if dur is None else round(dur, 3), h))
            intervals, rotation = _video_timing(c, av)
            fmt = c.format.name if c.format is not None else None
    except (av.FFmpegError, OSError, ValueError, UnicodeError, StopIteration) as e:
        raise _Unreadable(f"container not readable: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    both = {**stream_tags, **tags}  # container-level tags win over a stream's
    return ContainerMetadata(
        kind="video", format=fmt, brand=tags.get("major_brand"), encoder=tags.get("encoder") or tags.get("ENCODER"),
        creation_time=_first(both, ("creation_time", "com.apple.quicktime.creationdate", "date")),
        comment=_first(tags, ("comment", "description")),
        make=_first(both, MAKE_TAGS) or xmp.get("make"), model=_first(both, MODEL_TAGS) or xmp.get("model"),
        software=_first(both, SOFTWARE_TAGS) or xmp.get("creator_tool"), handler_names=tuple(handlers),
        audio=any(s.kind == "audio" for s in streams), streams=tuple(streams), frame_intervals_ms=intervals,
        rotation=rotation, xmp=xmp, tags=tags)


def _video_timing(c, av) -> tuple[dict | None, int | None]:
    """(packet-spacing statistics of the first video stream, its display rotation in degrees)."""
    if not c.streams.video:
        return None, None
    v = c.streams.video[0]
    pts = []
    for i, pkt in enumerate(c.demux(v)):
        if i >= MAX_PACKETS:
            break
        if pkt.pts is not None and pkt.time_base:
            pts.append(float(pkt.pts * pkt.time_base))
    pts.sort()  # B-frames: packets come in decode order
    gaps = [1000 * (b - a) for a, b in zip(pts, pts[1:]) if b > a]
    stats = None
    if len(gaps) >= 2:
        mean = statistics.fmean(gaps)
        stats = {"n": len(gaps), "min": round(min(gaps), 3), "max": round(max(gaps), 3), "mean": round(mean, 3),
                 "cv": round(statistics.pstdev(gaps) / mean, 4)}
    rotation = None
    try:  # the display matrix is read off the first decoded frame (PyAV exposes it there)
        c.seek(0)
        frame = next(c.decode(v), None)
        rotation = int(round(frame.rotation)) % 360 if frame is not None else None
    except (av.FFmpegError, ValueError, OverflowError):
        pass  # a first frame that will not decode leaves the rotation unknown; the tags are still reported
    return stats, rotation


def _read_image(path: Path, xmp: dict) -> ContainerMetadata:
    from PIL import ExifTags, Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt = im.format
            if fmt == "PNG":  # PNG's getexif() decodes the whole image to look past IDAT: read the header's only
                exif = Image.Exif()
                if "exif" in im.info:
                    exif.load(im.info["exif"])
            else:
                exif = im.getexif()
            base = {ExifTags.TAGS.get(k, str(k)): v for k, v in exif.items()}
            sub = {ExifTags.TAGS.get(k, str(k)): v for k, v in exif.get_ifd(ExifTags.IFD.Exif).items()}
            text = {k: v for k, v in (im.info or {}).items()
                    if isinstance(v, (str, bytes)) and k not in ("icc_profile", "exif", "xmp")}
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise _Unreadable(f"image metadata not readable: {e}") from None
    tags = _tags({**{k: v for k, v in base.items() if isinstance(v, (str, bytes, int, float))},
                  **{k: v for k, v in sub.items() if isinstance(v, (str, bytes, int, float))}, **text})
    return ContainerMetadata(
        kind="image", format=fmt, make=_clean(base.get("Make")) or xmp.get("make"),
        model=_clean(base.get("Model")) or xmp.get("model"),
        software=_clean(base.get("Software")) or _clean(text.get("Software")) or xmp.get("creator_tool"),
        creation_time=_clean(sub.get("DateTimeOriginal")) or _clean(base.get("DateTime")),
        comment=_clean(text.get("Comment") or text.get("comment") or base.get("ImageDescription")),
        xmp=xmp, tags=tags)


_XMP_FIELDS = {"creator_tool": ("xmp:CreatorTool",), "make": ("tiff:Make",), "model": ("tiff:Model",),
               "create_date": ("xmp:CreateDate", "photoshop:DateCreated"),
               "source_type": ("Iptc4xmpExt:DigitalSourceType",)}


def _xmp(path: Path) -> dict:
    """A few fields of the first XMP packet in the first or last XMP_SCAN bytes ({} when none)."""
    try:
        with open(path, "rb") as f:
            head = f.read(XMP_SCAN)
            f.seek(0, 2)
            size = f.tell()
            tail = b""
            if size > XMP_SCAN:
                f.seek(max(XMP_SCAN, size - XMP_SCAN))
                tail = f.read()
    except OSError:
        return {}
    for blob in (head, tail):
        i = blob.find(b"<x:xmpmeta")
        if i < 0:
            continue
        j = blob.find(b"</x:xmpmeta>", i)
        packet = blob[i: j if j > 0 else i + 65536].decode("utf-8", "replace")
        out = {}
        for key, names in _XMP_FIELDS.items():
            for n in names:  # attribute form name="v" or element form <name>v</name>
                m = re.search(rf'{re.escape(n)}="([^"]{{1,300}})"', packet) or \
                    re.search(rf"<{re.escape(n)}>([^<]{{1,300}})</{re.escape(n)}>", packet)
                if m:
                    out[key] = m.group(1).strip()
                    break
        return out
    return {}


def _with_flags(m: ContainerMetadata) -> ContainerMetadata:
    from dataclasses import replace

    return replace(m, flags=tuple(flags(m)))


def flags(m: ContainerMetadata) -> list[str]:
    """Plain factual lines about the container (no judgement on whether the pictures are real)."""
    if m.error:
        return [m.error]
    out = []
    enc = m.encoder or ""
    if enc.startswith("Lavf"):
        out.append(f"written by FFmpeg's muxer ({enc}): re-encoded or generated, not a camera original")
    elif enc:
        out.append(f"encoder tag: {enc}")
    elif not m.software:
        out.append("no encoder or software tag")
    if m.software and m.software != enc:
        out.append(f"software tag: {m.software}")
    if m.make or m.model:
        out.append("camera: " + " ".join(x for x in (m.make, m.model) if x))
    else:
        out.append("no camera make or model")
    if m.creation_time:
        out.append(f"creation time written in the file: {m.creation_time}")
    else:
        out.append("no creation time")
    if m.comment:
        out.append(f"comment: {m.comment}")
    if m.xmp.get("source_type"):
        out.append(f"XMP declares digital source type: {m.xmp['source_type'].rsplit('/', 1)[-1]}")
    if m.kind == "video":
        if m.audio is False:
            out.append("no audio track")
        durs = [(s.kind, s.duration_s) for s in m.streams if s.kind in ("video", "audio") and s.duration_s]
        if len({k for k, _ in durs}) == 2:
            v = max(d for k, d in durs if k == "video")
            a = max(d for k, d in durs if k == "audio")
            if abs(v - a) > 0.5:
                out.append(f"audio and video durations differ: {a:.2f} s and {v:.2f} s")
        fi = m.frame_intervals_ms
        if fi and fi["cv"] > 0.05:
            out.append(f"frame timing varies (frames {fi['min']:.0f} to {fi['max']:.0f} ms apart): a variable "
                       "frame rate, as phones record and some editors write")
        if m.rotation:
            out.append(f"display rotation {m.rotation}° (set by phones held upright, and by editors)")
    if m.kind == "image":
        gen = [k for k in GENERATOR_PNG_KEYS if k in m.tags]
        if gen:
            out.append(f"PNG text chunk {', '.join(repr(k) for k in gen)}: where image generators "
                       "store their prompt and settings")
    return out
