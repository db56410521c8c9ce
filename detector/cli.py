"""Command line: `deepfake-forensics analyze VIDEO [...]` (also `python -m detector`).

Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal error.
The analyst's commands (analyze, provenance, scan, import-reference) come first in `--help`; the training flow's
commands live in detector/training/ and are listed in their own group below them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from detector.options import add_analysis_options, add_provenance_options, analysis_config, provenance_config

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
# In the order of the recipe (docs/training.md): data, training, evaluation, calibration; `grid` is the
# small GRID recipe the tests train end to end.
TRAINING_MODULES = ("pack", "clipset", "neural", "train_pack", "train_residual", "evaluate_clips", "calibrate",
                    "synth", "prepare", "grid")


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="analyse videos or images; prints a summary or JSON")
    p.add_argument("paths", nargs="+", help="video/image files or folders (folders: every video inside)")
    p.add_argument("--json", action="store_true", help="print the JSON report (one line per file in batch)")
    p.add_argument("--out", type=Path, help="folder for face crops (and explanation files with --explain)")
    p.add_argument("--target", choices=["fake", "real"], default="fake", help="class explained (default fake)")
    add_analysis_options(p)
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from detector.errors import InputError
    from detector.pipeline import classify, get_model, prepare
    from detector.video import expand_paths

    config = analysis_config(args, explain_target=args.target)
    files = expand_paths(args.paths)
    if not files:
        raise InputError(f"no video or image files found in {' '.join(args.paths)}")
    batch = len(files) > 1
    worst = EXIT_OK
    # Overlap: torch and the model load in one thread while the first clip is read and its faces found
    # in another; then each clip's reading and face finding overlaps the model on the clip before it.
    with ThreadPoolExecutor(2) as pool:
        model = pool.submit(get_model, config.weights, config.precision, config.engine, config.explain)
        pending = pool.submit(prepare, files[0], config)
        for i, f in enumerate(files):
            try:
                prep = pending.result()
            except InputError as e:
                prep, error = None, e
            if i + 1 < len(files):
                pending = pool.submit(prepare, files[i + 1], config)
            try:
                if prep is None:
                    raise error
                report = classify(prep, config, detector=model.result())
                out = args.out if not batch else (args.out / f.stem if args.out else None)
                if out is not None:
                    from detector.render import write_outputs

                    write_outputs(report, out)
            except InputError as e:
                if not batch:
                    raise
                worst = EXIT_INPUT
                print(f"error: {e}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"file": {"name": f.name}, "error": str(e)}))
                continue
            if args.json:
                print(report.to_json(indent=None if batch else 2), flush=True)
            else:
                print(report.summary(), flush=True)
    return worst


def _add_provenance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("provenance", help="read Content Credentials (C2PA) and container tags only (no model)")
    p.add_argument("paths", nargs="+", help="video/image files or folders")
    p.add_argument("--json", action="store_true", help="print JSON (one line per file in batch)")
    add_provenance_options(p)
    p.set_defaults(func=_cmd_provenance)


def _cmd_provenance(args: argparse.Namespace) -> int:
    from detector.errors import InputError
    from detector.plain import CREDENTIALS, METADATA, credentials_sentence, metadata_sentence
    from detector.provenance import read_provenance
    from detector.video import expand_paths

    config = provenance_config(args)
    files = expand_paths(args.paths)
    if not files:
        raise InputError(f"no video or image files found in {' '.join(args.paths)}")
    for f in files:
        if not f.is_file():
            raise InputError(f"{f} is not a file; pass a video or image path")
        d = read_provenance(f, config).to_dict()
        if args.json:
            print(json.dumps({"file": {"name": f.name}, "provenance": d}, indent=None if len(files) > 1 else 2))
        else:
            print(f"{f.name}:\n  {CREDENTIALS}: {credentials_sentence(d['c2pa'])}\n"
                  f"  {METADATA}: {metadata_sentence(d['container'])}", flush=True)
    return EXIT_OK


class _TrainingGroup:
    """Registers the training flow's sub-commands in the parser but lists them in their own group.

    argparse lists a sub-command under "commands" when it has `help`; these keep theirs for the epilog, so
    `--help` shows the analyst's commands first and the training ones below, each with its one line.
    """

    def __init__(self, sub: argparse._SubParsersAction) -> None:
        self.sub, self.lines = sub, []

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        text = kwargs.pop("help", "")
        self.lines.append(f"  {name:<16}{text}")
        return self.sub.add_parser(name, description=text, **kwargs)


def build_parser(training: bool = True) -> argparse.ArgumentParser:
    """training=False leaves out the training flow's sub-commands (their modules import torch: ~2 s)."""
    from detector.version import __version__

    parser = argparse.ArgumentParser(prog="deepfake-forensics", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    _add_analyze(sub)
    _add_provenance(sub)
    from detector.scan import add_parser as add_scan  # Ray itself is imported only when a scan runs

    add_scan(sub)
    p = sub.add_parser("import-reference", help="convert a reference ResNeXt-LSTM .pt checkpoint (legacy mode)")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path, help="output .safetensors (a JSON sidecar is written beside it)")
    p.set_defaults(func=_cmd_import)
    # The training flow's sub-commands live in detector.training (imported only to register them).
    group = _TrainingGroup(sub)
    for module in (f"detector.training.{m}" for m in TRAINING_MODULES) if training else ():
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.add_parser(group)
    if group.lines:
        parser.epilog = ("training commands (the recipe of the shipped weights: docs/training.md):\n"
                         + "\n".join(group.lines))
    return parser


def _cmd_import(args: argparse.Namespace) -> int:
    from detector.weights import import_reference_checkpoint

    spec = import_reference_checkpoint(args.checkpoint, args.out)
    print(f"wrote {args.out} ({spec.weights_sha256[:12]}…), legacy mode: only the last frame counts")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(training=argv[:1] not in (["analyze"], ["provenance"]))  # these start without torch
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
