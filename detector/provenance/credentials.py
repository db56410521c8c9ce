"""C2PA Content Credentials of a file: who signed it, with what tool, what it declares, whether it still matches.

``read_credentials(path, trust_anchors=None) -> ContentCredentials`` reads the manifest store with the
maintained C2PA bindings (``c2pa-python``, https://github.com/contentauth/c2pa-python) and reduces it to
plain fields. The bindings' own types (Reader, Context, C2paError) stay inside the private helpers here.

What the fields can and cannot say (C2PA 2.x, https://spec.c2pa.org):
- no manifest (the reader's ManifestNotFound) is ``present=False``: the origin is unknown, nothing more.
  Most cameras and apps do not write Content Credentials yet, so their absence is not evidence of fakery.
- ``valid``: the claim's signature verifies and the file's bytes still match the hashes it signed. A
  valid signature says who signed and that nothing changed since; it says nothing about whether the
  pictures show what happened.
- ``trusted``: None when no trust list was given (offline, nobody's certificate is checked against one),
  True / False when the signer's chain does / does not lead to one of the given trust anchors.
- A broken, truncated or hostile manifest never raises: it reads as ``state="unreadable"`` with the
  reader's message in ``error``, so a report can say so in one line.

Reading is offline: remote manifests and OCSP are not fetched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# What a manifest's digitalSourceType (IPTC NewsCodes, https://cv.iptc.org/newscodes/digitalsourcetype/)
# declares, in words a non-specialist reads; unknown terms are shown as they are.
SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "made by a generative AI model",
    "compositeWithTrainedAlgorithmicMedia": "edited with generative AI (a composite)",
    "algorithmicallyEnhanced": "enhanced by an algorithm",
    "algorithmicMedia": "made by an algorithm (not a trained AI model)",
    "compositeSynthetic": "a composite including synthetic elements",
    "digitalCapture": "captured by a camera or recorder",
    "negativeFilm": "scanned from a film negative",
    "positiveFilm": "scanned from film",
    "print": "scanned from a print",
    "minorHumanEdits": "captured, with minor human edits",
    "humanEdits": "edited by a person",
    "compositeCapture": "a composite of captured media",
    "composite": "a composite",
    "digitalArt": "digital art made by a person",
    "virtualRecording": "a recording of a virtual scene",
    "screenCapture": "a screen capture",
    "dataDrivenMedia": "made from data (e.g. a chart)",
}
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "compositeSynthetic")
# A certificate that is only "not on a trust list" is not a broken signature: reported through `trusted`.
UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class ContentCredentials:
    """The active C2PA manifest of a file, reduced to what an analyst weighs.

    state: "absent" (no manifest), "valid" (signature and hashes verify), "invalid" (present, but the file
    no longer matches it or the signature fails), "unreadable" (present or damaged beyond reading), or
    "not read" (skipped: file over the size cap).
    source_types: the declared digitalSourceType terms (short IPTC names, e.g. "trainedAlgorithmicMedia").
    validation_errors: the reader's failure codes with their explanations, "code: explanation".
    """

    present: bool
    state: str
    valid: bool | None = None
    trusted: bool | None = None
    trust_list: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    claim_generator: str | None = None
    title: str | None = None
    actions: tuple[str, ...] = ()
    source_types: tuple[str, ...] = ()
    validation_errors: tuple[str, ...] = ()
    manifests: int = 0
    error: str | None = None

    @property
    def declares_ai(self) -> bool:
        return any(t in AI_SOURCE_TYPES for t in self.source_types)

    def to_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        d["declares_ai"] = self.declares_ai
        return d


def read_credentials(path: str | Path, trust_anchors: str | None = None, max_bytes: int = 2**31) -> ContentCredentials:
    """The file's Content Credentials; never raises for what is in the file (see the module docstring).

    trust_anchors: PEM text of the certificates to trust (the caller reads the user's trust-list file);
    None checks no signer against a trust list. max_bytes: files above it are not read (the reader hashes
    the whole file)."""
    path = Path(path)
    if path.stat().st_size > max_bytes:
        return ContentCredentials(present=False, state="not read",
                                  error=f"not read: the file is over {max_bytes / 2**20:.0f} MiB")
    try:
        store, state = _read_store(path, trust_anchors)
    except _NoManifest:
        return ContentCredentials(present=False, state="absent")
    except _Unreadable as e:
        return ContentCredentials(present=True, state="unreadable", error=str(e))
    return _summarise(store, state, trust_anchors is not None)


class _NoManifest(Exception):
    pass


class _Unreadable(Exception):
    pass


def _read_store(path: Path, trust_anchors: str | None) -> tuple[dict, str]:
    """(manifest store as parsed JSON, the reader's validation state "Invalid" / "Valid" / "Trusted")."""
    try:
        import c2pa
    except ImportError as e:  # the package is a dependency; a broken install reads as unreadable, not a crash
        raise _Unreadable(f"the C2PA reader is not installed ({e}); pip install c2pa-python") from None
    settings: dict = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_anchors is not None:
        settings["trust"] = {"trust_anchors": trust_anchors}
    try:
        context = c2pa.Context.from_dict(settings)
        with open(path, "rb") as stream:
            fmt = _mime(path, stream)
            with c2pa.Reader(fmt, stream, context=context) as reader:
                return json.loads(reader.json()), str(reader.get_validation_state() or "")
    except c2pa.C2paError.ManifestNotFound:
        raise _NoManifest() from None
    except c2pa.C2paError.NotSupported:
        raise _NoManifest() from None  # a format C2PA does not define: nothing to find
    # Any other failure of the native reader (truncated box, oversized length, garbage JUMBF, bad JSON) is
    # what the file holds, not a bug of ours: the report says it in one line.
    except (c2pa.C2paError, ValueError, OSError, UnicodeError) as e:
        raise _Unreadable(_first_line(str(e)) or type(e).__name__) from None


def _mime(path: Path, stream) -> str:
    """The MIME type the reader should parse as: from the bytes' signature, not the (renameable) extension."""
    head = stream.read(16)
    stream.seek(0)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "image/heic" if brand in (b"heic", b"heix", b"mif1") \
            else "video/mp4"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:4] == b"RIFF":
        return "image/webp" if head[8:12] == b"WEBP" else "video/avi" if head[8:12] == b"AVI " else "audio/wav"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] == b"GIF8":
        return "image/gif"
    return {".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4", ".avi": "video/avi",
            ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}.get(
        path.suffix.lower(), "application/octet-stream")


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _summarise(store: dict, state: str, trust_checked: bool) -> ContentCredentials:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "", {})
    if not isinstance(active, dict):
        active = {}
    sig = active.get("signature_info") or {}
    statuses = store.get("validation_status") or []
    failures = [s for s in statuses if isinstance(s, dict)]
    untrusted = any(s.get("code") == UNTRUSTED for s in failures)
    errors = tuple(_first_line(f"{s.get('code', '?')}: {s.get('explanation', '')}".rstrip(": "))
                   for s in failures if s.get("code") != UNTRUSTED)
    valid = state in ("Valid", "Trusted") and not errors
    actions, sources = _actions(active)
    return ContentCredentials(
        present=True, state="valid" if valid else "invalid", valid=valid,
        trusted=(state == "Trusted" and not untrusted) if trust_checked else None,
        signer=_text(sig.get("common_name")), issuer=_text(sig.get("issuer")), signed_at=_text(sig.get("time")),
        claim_generator=_generator(active), title=_text(active.get("title")), actions=actions,
        source_types=sources, validation_errors=errors[:20], manifests=len(manifests))


def _text(v, limit: int = 200) -> str | None:
    if v is None or v == "":
        return None
    s = str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _generator(active: dict) -> str | None:
    info = active.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        name, version = info[0].get("name"), info[0].get("version")
        return _text(f"{name} {version}" if name and version else name)
    return _text(active.get("claim_generator"))


def _actions(active: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(action names without the "c2pa." prefix, declared digitalSourceType short names), in manifest order."""
    actions, sources = [], []
    for a in active.get("assertions") or []:
        if not isinstance(a, dict) or not str(a.get("label", "")).startswith("c2pa.actions"):
            continue
        for act in (a.get("data") or {}).get("actions") or []:
            if not isinstance(act, dict):
                continue
            name = str(act.get("action", "?"))
            actions.append(name.removeprefix("c2pa."))
            dst = act.get("digitalSourceType")
            if dst:
                short = str(dst).rstrip("/").rsplit("/", 1)[-1]
                if short not in sources:
                    sources.append(short)
    return tuple(actions[:50]), tuple(sources[:10])
