"""detector/training/reupload.py: the re-encode is a real H.264 copy of the clip (same frames, new codec), and
`paired` joins two evaluate reports on the clip's path (not its sha256, which a re-encode changes), counts
the verdicts that changed and the clips lost, and gives the AUC of each side."""

from __future__ import annotations

import numpy as np
import pytest

from detector.training import reupload as br


def _report(rows):
    return {"clips": [{"path": p, "label": lab, "family": fam, "p_fake": q, "margin": float(np.log(q / (1 - q))),
                       "verdict": "FAKE" if q >= 0.8 else "REAL" if q < 0.25 else "INCONCLUSIVE"}
                      for p, lab, fam, q in rows]}


def test_paired_joins_on_path_and_counts_verdicts():
    base = _report([("real/a.mp4", "real", "real", 0.1), ("real/b.mp4", "real", "real", 0.5),
                    ("fake/c.mp4", "fake", "lip-sync", 0.9), ("fake/d.mp4", "fake", "lip-sync", 0.6),
                    ("fake/e.mp4", "fake", "face-swap", 0.3)])
    new = _report([("real/a.mp4", "real", "real", 0.2), ("real/b.mp4", "real", "real", 0.85),
                   ("fake/c.mp4", "fake", "lip-sync", 0.7), ("fake/d.mp4", "fake", "lip-sync", 0.6)])
    r = br.paired(base, new)
    assert r["n"] == 4 and r["lost"] == ["fake/e.mp4"]
    assert r["roc_auc_base"] == pytest.approx(1.0) and r["roc_auc"] == pytest.approx(0.5)
    assert r["fake_verdicts"] == {"real": [0, 1], "fake": [1, 0]}
    assert r["verdicts_changed"] == 2
    assert r["median_margin_shift"]["fake"] < 0 < r["median_margin_shift"]["real"]
    assert set(r["per_family"]) == {"lip-sync"}
    assert "lost 1" in br.line("crf32", r)


def test_reencode_writes_h264_with_the_same_frames(tmp_path, face_clip):
    import cv2

    dst = tmp_path / "clip.webm"  # the name is kept; the container is MP4 whatever the suffix
    br.reencode(face_clip, dst, br.CONDITIONS["360p"])
    a, b = cv2.VideoCapture(str(face_clip)), cv2.VideoCapture(str(dst))
    assert int(b.get(cv2.CAP_PROP_FRAME_COUNT)) == int(a.get(cv2.CAP_PROP_FRAME_COUNT))
    assert (int(b.get(cv2.CAP_PROP_FRAME_WIDTH)), int(b.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (
        int(a.get(cv2.CAP_PROP_FRAME_WIDTH)) // 2 * 2, int(a.get(cv2.CAP_PROP_FRAME_HEIGHT)) // 2 * 2)
    assert int(b.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower() in ("avc1", "h264")
