"""Command-line options shared by `analyze` and `scan`, and the AnalysisConfig they describe."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    """--frames, --explain, --detector, --weights, --threshold, --max-mb, --max-seconds, --precision."""
    from detector.pipeline import DEFAULT_FRAMES

    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                   help=f"frames sampled evenly over the clip (default {DEFAULT_FRAMES})")
    p.add_argument("--explain", action="store_true", help="Grad-CAM overlays + temporal importance (+HTML)")
    p.add_argument("--detector", choices=["blazeface", "hog", "cnn"], default="blazeface",
                   help="face detector (blazeface: fastest, default; hog/cnn: dlib)")
    p.add_argument("--weights", type=Path, help="weights .safetensors (default: bundled)")
    p.add_argument("--threshold", type=float, help="p_fake threshold (default: the weights' own)")
    p.add_argument("--max-mb", type=float, default=500, help="refuse files over this size (MiB)")
    p.add_argument("--max-seconds", type=float, default=900, help="refuse clips longer than this")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")


def analysis_config(args: argparse.Namespace, **extra):
    """The AnalysisConfig of parsed options (torch is imported here, not when the parser is built)."""
    from detector.faces import FaceConfig
    from detector.pipeline import AnalysisConfig
    from detector.video import VideoLimits
    from detector.weights import DEFAULT_WEIGHTS

    return AnalysisConfig(frames=args.frames, faces=FaceConfig(detector=args.detector),
                          limits=VideoLimits(int(args.max_mb * 2**20), args.max_seconds),
                          weights=str(args.weights or DEFAULT_WEIGHTS), threshold=args.threshold,
                          precision=args.precision, explain=args.explain, **extra)
