"""The app's examples are its demo: each bundled clip must get the verdict its README promises."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("name, verdict", [("real_hellomeme_drive.mp4", "REAL"),
                                           ("fake_anitalker_einstein.mp4", "FAKE"),
                                           ("fake_wav2lip_avatar.mp4", "FAKE")])
def test_bundled_example_gets_its_verdict(name: str, verdict: str) -> None:
    from detector.pipeline import AnalysisConfig, analyze_video

    report = analyze_video(EXAMPLES / name, AnalysisConfig())
    assert report.verdict == verdict, f"{name}: {report.verdict} p_fake {report.p_fake:.3f}"
