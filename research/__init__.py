"""Research: probes, one-off studies and unshipped training experiments, kept runnable (docs/research-log.md).

Nothing in `detector/` or `explain/` imports from here. The probes run as scripts
(`.venv/bin/python research/probe_dense.py --help`); the experiments that were CLI sub-commands run as
modules with the same arguments: `python -m research.distill`, `python -m research.merge_heads`,
`python -m research.wise`. Their tests live in tests/research/.
"""

from __future__ import annotations

import argparse
import sys


def run_command(add_parser, argv: list[str] | None = None) -> int:
    """Run the one sub-command that `add_parser` registers, with the CLI's error handling (one line, exit 2)."""
    from detector.errors import ForensicsError, InputError

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    (name,) = sub.choices
    args = parser.parse_args([name, *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except ForensicsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, InputError) else 1
