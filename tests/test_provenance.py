"""Content Credentials and container metadata beside the verdict (detector/provenance, detector/plain.py).

Every fixture is made here: a test CA and signer certificate (cryptography), clips written by the ffmpeg
binary imageio-ffmpeg ships (tags chosen by the test), a C2PA manifest signed onto them with the bindings,
the same file with one byte changed, and damaged manifests. Nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from detector.plain import CREDENTIALS, DETECTOR, METADATA, credentials_sentence, evidence_lines, metadata_sentence
from detector.provenance import ProvenanceConfig, read_container, read_credentials, read_provenance

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
TAGS = {"comment": "made for a test", "creation_time": "2024-01-02T03:04:05Z",
        "com.apple.quicktime.make": "TestMake", "com.apple.quicktime.model": "TestModel 1",
        "com.apple.quicktime.software": "TestApp 2.0"}


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def _cert(name: str, key, issuer_name, issuer_key, ca: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Org")])
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:  # C2PA's signer profile: digitalSignature, an allowed extended key usage, an authority key id
        b = (b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False))
    return b.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(signer chain PEM, signer key PEM, path of the CA as a trust list, path of another CA)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def pem(c) -> bytes:
        return c.public_bytes(serialization.Encoding.PEM)

    ca_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("Test Root CA", ca_key, None, None, ca=True)
    leaf = _cert("Test Signer", leaf_key, ca.subject, ca_key, ca=False)
    other = _cert("Other Root CA", other_key, None, None, ca=True)
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.pem").write_bytes(pem(ca))
    (d / "other.pem").write_bytes(pem(other))
    key = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return pem(leaf) + pem(ca), key, d / "ca.pem", d / "other.pem"


def sign(src: Path, dest: Path, pki, source_type: str = AI) -> Path:
    """Sign `src` into `dest` with a C2PA manifest declaring `source_type` (the bindings embed it)."""
    import c2pa

    chain, key = pki[0], pki[1]
    manifest = {"claim_generator_info": [{"name": "dff-test", "version": "1.0"}], "title": src.name,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    with c2pa.Builder(manifest) as b, open(src, "rb") as s, open(dest, "w+b") as d:
        b.sign(signer, "video/mp4", s, d)
    return dest


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> Path:
    """1 s of test pattern and a tone, with a comment, creation time and QuickTime make/model/software."""
    p = tmp_path_factory.mktemp("prov") / "tagged.mp4"
    meta = [x for k, v in TAGS.items() for x in ("-metadata", f"{k}={v}")]
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "use_metadata_tags", *meta, str(p))
    return p


@pytest.fixture(scope="module")
def signed(tagged, pki) -> Path:
    return sign(tagged, tagged.with_name("signed.mp4"), pki)


def one_byte_changed(src: Path, dest: Path) -> Path:
    """The same file with one byte of the media data flipped (the manifest untouched)."""
    b = bytearray(src.read_bytes())
    b[b.index(b"mdat") + 64] ^= 0xFF
    dest.write_bytes(bytes(b))
    return dest


def test_signed_valid_unchecked_signer(signed):
    c = read_credentials(signed)
    assert c.present and c.state == "valid" and c.valid is True and c.trusted is None
    assert c.signer == "Test Signer" and c.issuer == "Test Org" and c.claim_generator == "dff-test 1.0"
    assert c.actions == ("created",) and c.source_types == ("trainedAlgorithmicMedia",) and c.declares_ai
    assert c.validation_errors == ()
    s = credentials_sentence(c.to_dict())
    assert "signature valid, signer not checked against a trust list" in s and "generative AI" in s


def test_trust_list_decides_trusted(signed, pki):
    ca, other = pki[2], pki[3]
    yes = read_provenance(signed, ProvenanceConfig(trust_list=str(ca))).credentials
    no = read_provenance(signed, ProvenanceConfig(trust_list=str(other))).credentials
    assert yes.valid and yes.trusted is True and "on your trust list" in credentials_sentence(yes.to_dict())
    assert no.valid and no.trusted is False and "NOT on your trust list" in credentials_sentence(no.to_dict())


def test_trust_list_that_is_not_pem_is_an_input_error(tmp_path):
    from detector.errors import InputError

    bad = tmp_path / "list.pem"
    bad.write_text("not a certificate")
    with pytest.raises(InputError, match="--trust-list"):
        ProvenanceConfig(trust_list=str(bad))
    with pytest.raises(InputError, match="cannot be read"):
        ProvenanceConfig(trust_list=str(tmp_path / "missing.pem"))


def test_one_byte_changed_breaks_the_signature(signed, tmp_path):
    c = read_credentials(one_byte_changed(signed, tmp_path / "changed.mp4"))
    assert c.present and c.state == "invalid" and c.valid is False
    assert any("mismatch" in e for e in c.validation_errors)
    s = credentials_sentence(c.to_dict())
    assert s.startswith("Present but broken") and "changed after signing" in s


def test_unsigned_is_unknown_provenance_not_fake(tagged):
    c = read_credentials(tagged)
    assert c.present is False and c.state == "absent" and c.valid is None
    s = credentials_sentence(c.to_dict())
    assert "no Content Credentials" in s and "unknown" in s and "fake" not in s.lower()


def test_signed_tampered_unsigned_told_apart(tagged, signed, tmp_path):
    states = [read_credentials(p).state for p in (signed, one_byte_changed(signed, tmp_path / "t.mp4"), tagged)]
    assert states == ["valid", "invalid", "absent"]


def test_container_tags_written_by_ffmpeg(tagged):
    m = read_container(tagged)
    assert m.comment == TAGS["comment"] and m.creation_time.startswith("2024-01-02T03:04:05")
    assert m.make == "TestMake" and m.model == "TestModel 1" and m.software == "TestApp 2.0"
    assert m.encoder.startswith("Lavf") and m.audio is True and m.rotation == 0
    assert {"VideoHandler", "SoundHandler"} <= set(m.handler_names)
    assert [s.kind for s in m.streams] == ["video", "audio"] and m.streams[0].duration_s == pytest.approx(1.0, abs=0.05)
    assert m.frame_intervals_ms["mean"] == pytest.approx(100.0, abs=1) and m.frame_intervals_ms["cv"] < 0.01
    assert m.tags["comment"] == TAGS["comment"]
    assert any("FFmpeg's muxer (Lavf" in f and "not a camera original" in f for f in m.flags)
    assert "camera: TestMake TestModel 1" in m.flags


def test_stripped_file_says_what_is_missing(tagged, tmp_path):
    bare = tmp_path / "bare.mp4"
    _ffmpeg("-i", str(tagged), "-c", "copy", "-map_metadata", "-1", "-fflags", "+bitexact", str(bare))
    m = read_container(bare)
    assert m.make is None and m.creation_time is None and m.comment is None
    assert "no camera make or model" in m.flags and "no creation time" in m.flags


def test_rotation_and_variable_frame_rate(tmp_path):
    rot = tmp_path / "rot.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            str(tmp_path / "cfr.mp4"))
    _ffmpeg("-display_rotation:v:0", "90", "-i", str(tmp_path / "cfr.mp4"), "-c", "copy", str(rot))
    vfr = tmp_path / "vfr.mp4"  # frames at irregular times: drop every third frame's slot
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2", "-vf", "select='not(mod(n\\,3))+eq(n\\,1)'",
            "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vfr))
    assert read_container(rot).rotation == 90 and any("rotation 90" in f for f in read_container(rot).flags)
    assert read_container(tmp_path / "cfr.mp4").frame_intervals_ms["cv"] < 0.01
    fi = read_container(vfr).frame_intervals_ms
    assert fi["cv"] > 0.05 and any("frame timing varies" in f for f in read_container(vfr).flags)


def test_image_exif_and_generator_chunks(tmp_path):
    from PIL import Image, PngImagePlugin

    img = Image.new("RGB", (32, 32), (120, 90, 60))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "PhoneMaker", "Phone 7", "Camera App 3"
    img.save(tmp_path / "photo.jpg", exif=exif)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a portrait, Steps: 20, Sampler: Euler")
    img.save(tmp_path / "gen.png", pnginfo=info)
    photo = read_provenance(tmp_path / "photo.jpg").container
    assert photo.kind == "image"
    assert (photo.make, photo.model, photo.software) == ("PhoneMaker", "Phone 7", "Camera App 3")
    gen = read_provenance(tmp_path / "gen.png").container
    assert "no camera make or model" in gen.flags and any("'parameters'" in f for f in gen.flags)
    assert read_provenance(tmp_path / "photo.jpg").credentials.state == "absent"


def _hostile(signed: Path, d: Path) -> dict[str, Path]:
    """Damaged or hostile manifests: cut inside the manifest, a box that claims 2 GB, random bytes inside the
    JUMBF, a text file with a video's name, a PNG whose bytes are named .mp4."""
    b = signed.read_bytes()
    j, u = b.index(b"jumb"), b.index(b"uuid")
    out = {"truncated": b[: j + 200], "garbage": b[: j + 50] + bytes(range(256)) * 2 + b[j + 562:],
           "oversized": b[: u - 4] + struct.pack(">I", 0x7FFFFFF0) + b[u:],
           "wrong_type": b"this is not a video\n" * 20,
           "png_as_mp4": b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00" * 40}
    paths = {}
    for name, data in out.items():
        paths[name] = d / f"{name}.mp4"
        paths[name].write_bytes(data)
    return paths


def test_hostile_manifests_give_a_clear_line(signed, tmp_path):
    for name, p in _hostile(signed, tmp_path).items():
        prov = read_provenance(p)  # never raises
        c = prov.credentials
        assert c.state in ("unreadable", "absent", "invalid"), name
        line = credentials_sentence(c.to_dict())
        assert line and "\n" not in line and len(line) < 600, (name, line)
        if c.state == "unreadable":
            assert c.error and line.startswith("Present but unreadable"), (name, line)
        assert "\n" not in metadata_sentence(prov.container.to_dict())
    assert read_credentials(tmp_path / "truncated.mp4").state == "unreadable"
    assert read_credentials(tmp_path / "oversized.mp4").state == "unreadable"


def test_size_cap_skips_reading(signed):
    c = read_credentials(signed, max_bytes=100)
    assert c.state == "not read" and "not read" in credentials_sentence(c.to_dict()).lower()


def test_no_line_ever_says_authentic(signed, tagged, pki, tmp_path):
    files = [signed, tagged, one_byte_changed(signed, tmp_path / "c.mp4"), *_hostile(signed, tmp_path).values()]
    configs = [ProvenanceConfig(), ProvenanceConfig(trust_list=str(pki[2]))]
    for f in files:
        for cfg in configs:
            d = {"verdict": "REAL", "calibration": {}, "model": {"trained": True},
                 "provenance": read_provenance(f, cfg).to_dict()}
            for title, line in evidence_lines(d):
                assert "authentic" not in line.lower(), (f.name, title, line)


def test_analyze_json_carries_provenance_and_metadata_never_changes_the_verdict(tmp_path, tiny_spec, face_clip,
                                                                                 pki, capsys):
    """The detector reads pixels: the same frames with the tags stripped, renamed, or signed as AI-generated
    (with or without a broken signature) give the same verdict and p_fake; the JSON carries each file's
    provenance block."""
    from detector.cli import main
    from detector.model import build_model
    from detector.weights import save_weights

    weights = tmp_path / "w.safetensors"
    save_weights(build_model(tiny_spec), tiny_spec, weights)
    d = tmp_path / "clips"
    d.mkdir()
    meta = [x for k, v in TAGS.items() for x in ("-metadata", f"{k}={v}")]
    _ffmpeg("-i", str(face_clip), "-t", "1.2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", "-movflags",
            "use_metadata_tags", *meta, str(d / "a_tagged.mp4"))
    _ffmpeg("-i", str(d / "a_tagged.mp4"), "-c", "copy", "-map_metadata", "-1", "-fflags", "+bitexact",
            str(d / "b_stripped.mp4"))
    shutil.copy(d / "a_tagged.mp4", d / "c_renamed_camera_original.mp4")
    sign(d / "a_tagged.mp4", d / "d_signed_ai.mp4", pki)
    # a flipped media byte would change a frame: break the manifest's own bytes instead, frames untouched
    b = bytearray((d / "d_signed_ai.mp4").read_bytes())
    j = b.index(b"jumb")
    b[j + 300: j + 340] = bytes(40)
    (d / "e_broken_manifest.mp4").write_bytes(bytes(b))
    code = main(["analyze", str(d), "--json", "--frames", "6", "--weights", str(weights)])
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(rows) == 5
    assert {(r["verdict"], r["p_fake"]) for r in rows} == {(rows[0]["verdict"], rows[0]["p_fake"])}
    by = {r["file"]["name"]: r["provenance"] for r in rows}
    tagged_c = by["a_tagged.mp4"]["container"]
    assert by["a_tagged.mp4"]["c2pa"]["present"] is False
    assert tagged_c["comment"] == TAGS["comment"] and tagged_c["creation_time"].startswith("2024-01-02")
    assert tagged_c["make"] == "TestMake" and tagged_c["model"] == "TestModel 1"
    assert tagged_c["encoder"].startswith("Lavf") and tagged_c["tags"]["comment"] == TAGS["comment"]
    assert by["b_stripped.mp4"]["container"]["make"] is None
    assert by["d_signed_ai.mp4"]["c2pa"]["present"] is True and by["d_signed_ai.mp4"]["c2pa"]["declares_ai"]
    assert by["e_broken_manifest.mp4"]["c2pa"]["state"] in ("invalid", "unreadable")
    # the three lines, in order, on every report
    assert [t for t, _ in evidence_lines(rows[0])] == [DETECTOR, CREDENTIALS, METADATA]


def test_cli_provenance_command_and_summary(signed, capsys):
    from detector.cli import main

    assert main(["provenance", str(signed)]) == 0
    out = capsys.readouterr().out
    assert "Content Credentials: Signed by Test Signer" in out and "File metadata: Written by FFmpeg's muxer" in out
    assert main(["provenance", str(signed), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provenance"]["c2pa"]["signer"] == "Test Signer"


def test_hostile_manifest_reads_as_one_line_in_every_report_form(signed, tmp_path):
    """The unreadable manifest's line reaches the CLI summary, the HTML page and the app's Markdown."""
    from detector.render import render_html
    from detector.render.views import timings_markdown
    from detector.report import NO_FACE, Report

    p = _hostile(signed, tmp_path)["garbage"]
    prov = read_provenance(p).to_dict()
    assert prov["c2pa"]["state"] == "unreadable"
    r = Report(file={"name": p.name}, video={}, model={"name": "m", "weights_sha256": "0" * 64, "trained_on": "-"},
               verdict=NO_FACE, p_fake=None, threshold=0.5, faces=[], timings_s={"total": 0.1},
               sampling={"indices": []}, provenance=prov)
    line = credentials_sentence(prov["c2pa"])
    assert line.startswith("Present but unreadable (") and prov["c2pa"]["error"] in line
    assert f"Content Credentials: {line}" in r.summary()
    import html

    assert html.escape(line) in render_html(r)
    assert f"**{CREDENTIALS}** — {line}" in timings_markdown(r)
