"""Command-line options shared by `analyze` and `scan`, and the AnalysisConfig they describe."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    """--frames, --explain, --detector, --weights, --threshold, --max-mb, --max-seconds, --precision, --engine,
    --adaptive, --trust-list, --no-provenance."""
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
    p.add_argument("--engine", choices=["auto", "onnxruntime", "torch"], default="auto",
                   help="what runs the trunk in fp32: auto = onnxruntime where it can (~2x faster), else torch")
    p.add_argument("--adaptive", action=argparse.BooleanOptionalAction, default=False,
                   help="at 60 frames, score 20 first and stop there when the verdict is far from the threshold "
                   "and band (opt-in: on the dev set 3 of its 6 early verdicts differ from all 60 frames' verdict)")
    add_provenance_options(p)


def add_provenance_options(p: argparse.ArgumentParser) -> None:
    """--trust-list, --no-provenance (detector/provenance: read beside the verdict, never part of it)."""
    p.add_argument("--trust-list", type=Path, help="PEM file of trusted signing certificates for Content "
                   "Credentials (default: signatures are verified, signers not checked against a list)")
    p.add_argument("--no-provenance", action="store_true", help="skip reading Content Credentials and tags")


def provenance_config(args: argparse.Namespace):
    from detector.provenance import ProvenanceConfig

    trust = getattr(args, "trust_list", None)
    return ProvenanceConfig(trust_list=None if trust is None else str(trust),
                            enabled=not getattr(args, "no_provenance", False))


def analysis_config(args: argparse.Namespace, **extra):
    """The AnalysisConfig of parsed options (torch is imported here, not when the parser is built)."""
    from detector.faces import FaceConfig
    from detector.pipeline import AnalysisConfig
    from detector.video import VideoLimits
    from detector.weights import DEFAULT_WEIGHTS

    return AnalysisConfig(frames=args.frames, faces=FaceConfig(detector=args.detector),
                          limits=VideoLimits(int(args.max_mb * 2**20), args.max_seconds),
                          weights=str(args.weights or DEFAULT_WEIGHTS), threshold=args.threshold,
                          precision=args.precision, engine=args.engine, explain=args.explain,
                          provenance=provenance_config(args),
                          adaptive=getattr(args, "adaptive", False), **extra)
