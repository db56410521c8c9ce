"""Command line: `deepfake-forensics analyze VIDEO [...]` (also `python -m detector`).

Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal error.
Other sub-commands (synth, prepare, train, evaluate, import-reference) live in their modules and are
registered here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from detector.options import add_analysis_options, analysis_config

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="analyse videos or images; prints a summary or JSON")
    p.add_argument("paths", nargs="+", help="video/image files or folders (folders: every video inside)")
    p.add_argument("--json", action="store_true", help="print the JSON report (one line per file in batch)")
    p.add_argument("--out", type=Path, help="folder for face crops (and explanation files with --explain)")
    p.add_argument("--target", choices=["fake", "real"], default="fake", help="class explained (default fake)")
    add_analysis_options(p)
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from detector.errors import InputError
    from detector.pipeline import get_detector
    from detector.video import expand_paths

    config = analysis_config(args, explain_target=args.target)
    files = expand_paths(args.paths)
    if not files:
        raise InputError(f"no video or image files found in {' '.join(args.paths)}")
    batch = len(files) > 1
    detector = get_detector(config.weights, config.precision)
    worst = EXIT_OK
    for f in files:
        try:
            report = _analyze_one(f, config, detector, args.out if not batch else
                                  (args.out / f.stem if args.out else None))
        except InputError as e:
            if not batch:
                raise
            worst = EXIT_INPUT
            print(f"error: {e}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": {"name": f.name}, "error": str(e)}))
            continue
        if args.json:
            print(report.to_json(indent=None if batch else 2))
        else:
            print(report.summary())
    return worst


def _analyze_one(path: Path, config, detector, out: Path | None):
    from detector.pipeline import analyze_video

    report = analyze_video(path, config, detector=detector)
    if out is not None:
        from detector.render import write_outputs

        write_outputs(report, out)
    return report


def build_parser() -> argparse.ArgumentParser:
    from detector import __version__

    parser = argparse.ArgumentParser(prog="deepfake-forensics", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_analyze(sub)
    from detector.scan import add_parser as add_scan  # Ray itself is imported only when a scan runs

    add_scan(sub)
    # The training flow's sub-commands live in detector.training (imported only to register them).
    for module in ("detector.training.synth", "detector.training.prepare", "detector.training.train",
                   "detector.training.evaluate"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.add_parser(sub)
    p = sub.add_parser("import-reference", help="convert a reference ResNeXt-LSTM .pt checkpoint (legacy mode)")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path, help="output .safetensors (a JSON sidecar is written beside it)")
    p.set_defaults(func=_cmd_import)
    return parser


def _cmd_import(args: argparse.Namespace) -> int:
    from detector.weights import import_reference_checkpoint

    spec = import_reference_checkpoint(args.checkpoint, args.out)
    print(f"wrote {args.out} ({spec.weights_sha256[:12]}…), legacy mode: only the last frame counts")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    parser = build_parser()
    args = parser.parse_args(argv)
    from detector.errors import ForensicsError, InputError

    try:
        return args.func(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except ForensicsError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - last resort: one line, not a traceback, unless asked
        if os.environ.get("DEEPFAKE_FORENSICS_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (set DEEPFAKE_FORENSICS_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
