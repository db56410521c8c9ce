"""deepfake-forensics: find the faces in a video, say whether they were manipulated, and why.

The flat API (face_recognition style)::

    from detector import analyze_video, AnalysisConfig
    report = analyze_video("clip.mp4", AnalysisConfig(frames=20))
    print(report.verdict, report.p_fake, report.to_json())
"""

import os as _os

from detector.version import __version__  # noqa: F401 - re-exported (__all__)

# FFmpeg and OpenCV write warnings ("moov atom not found") straight to stderr; our typed errors say it
# in one line instead. Set before cv2 is first imported; the user's own settings win.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from detector.errors import (  # noqa: E402
    CorruptVideoError,
    EmptyVideoError,
    ForensicsError,
    InputError,
    InputTooLargeError,
    NotAVideoError,
    WeightsError,
)
from detector.pipeline import AnalysisConfig, Detector, analyze_image, analyze_video, get_detector  # noqa: E402
from detector.report import FaceResult, Report  # noqa: E402

__all__ = [
    "AnalysisConfig", "Detector", "FaceResult", "Report", "analyze_image", "analyze_video", "get_detector",
    "ForensicsError", "InputError", "NotAVideoError", "CorruptVideoError", "EmptyVideoError",
    "InputTooLargeError", "WeightsError", "__version__",
]
