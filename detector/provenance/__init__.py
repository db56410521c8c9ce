"""Evidence beside the detector: a file's Content Credentials (C2PA) and its container metadata.

    from detector.provenance import ProvenanceConfig, read_provenance
    prov = read_provenance("clip.mp4", ProvenanceConfig(trust_list="anchors.pem"))
    prov.credentials.present, prov.credentials.signer, prov.container.encoder, prov.container.flags

- ``credentials``: the C2PA manifest (detector/provenance/credentials.py): present / valid / signer / claim
  generator / actions / declared digital source type / validation errors / trust-list result.
- ``container``: the container's tags and stream facts (detector/provenance/container.py).

Neither changes the detector's verdict: they are read from the file's bytes, the detector from its
pixels, and a report shows the three side by side (detector/plain.py says each in plain words). No
Content Credentials means unknown provenance, never "fake"; a valid signature is never "authentic".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from detector.errors import InputError
from detector.provenance.container import ContainerMetadata, StreamInfo, read_container
from detector.provenance.credentials import SOURCE_TYPES, ContentCredentials, read_credentials

__all__ = ["ContainerMetadata", "ContentCredentials", "Provenance", "ProvenanceConfig", "SOURCE_TYPES",
           "StreamInfo", "read_container", "read_credentials", "read_provenance"]


@dataclass(frozen=True)
class ProvenanceConfig:
    """trust_list: a PEM file of the certificates whose signers you trust (C2PA's published trust list, or
    your organisation's); None checks no signer against a list (offline: "signature valid, signer not
    checked against a trust list"). max_bytes: larger files are not read for credentials (the reader
    hashes the whole file). enabled=False skips both readings (the report then says "not read")."""

    trust_list: str | None = None
    max_bytes: int = 2**31
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.trust_list is not None:
            load_trust_anchors(self.trust_list)  # a wrong path fails here, once, not on every file


@dataclass(frozen=True)
class Provenance:
    """credentials and container of one file; read_ms: wall time of the two readings."""

    credentials: ContentCredentials
    container: ContainerMetadata
    read_ms: float

    def to_dict(self) -> dict:
        return {"c2pa": self.credentials.to_dict(), "container": self.container.to_dict(),
                "read_ms": round(self.read_ms, 2)}


def load_trust_anchors(trust_list: str | os.PathLike) -> str:
    """The PEM text of a trust-list file; InputError (the user's option is wrong) saying the fix."""
    p = Path(trust_list)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeError) as e:
        raise InputError(f"trust list {p} cannot be read ({type(e).__name__}); pass a PEM file of trusted "
                         "certificates with --trust-list") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InputError(f"trust list {p} holds no PEM certificate (-----BEGIN CERTIFICATE-----); pass a PEM "
                         "file of trusted certificates with --trust-list")
    return text


def read_provenance(path: str | os.PathLike, config: ProvenanceConfig = ProvenanceConfig(),
                    image: bool | None = None) -> Provenance:
    """Both readings of one file. image: read the container as an image (None: from the extension)."""
    if image is None:
        from detector.video import is_image_path

        image = is_image_path(path)
    if not config.enabled:
        return Provenance(ContentCredentials(present=False, state="not read", error="not read (turned off)"),
                          ContainerMetadata(kind="image" if image else "video", error="not read (turned off)"), 0.0)
    anchors = load_trust_anchors(config.trust_list) if config.trust_list else None
    t = time.perf_counter()
    cred = read_credentials(path, anchors, config.max_bytes)
    if config.trust_list and cred.present:
        from dataclasses import replace

        cred = replace(cred, trust_list=Path(config.trust_list).name)
    cont = read_container(path, image=image)
    return Provenance(cred, cont, 1000 * (time.perf_counter() - t))
