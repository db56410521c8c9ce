"""`deepfake-forensics scan`: analyse an archive of videos on Ray, one task per file, results streamed to JSONL.

A pool of Ray actors, each loading the model once (`runtime.get_model`), takes one file at a time; every
result is appended to the JSONL the moment it arrives (one `analyze --json` report per line, plus
`file.path`; a file that cannot be analysed gives `{"file": {...}, "error": ..., "error_type": ...}`).
Files whose sha256 is already in the output are skipped, so a killed scan re-run with the same command
finishes the rest without duplicates. At the end: a summary (verdict counts, flagged files, throughput
as video seconds per wall second) and an HTML index, highest p_fake first, linking to per-file reports.

`--ray local` (default) starts a private Ray on this machine: --workers CPUs, no dashboard, no usage
stats, bound to 127.0.0.1. `--ray auto` or `--ray HOST:PORT` joins a cluster started with `ray start`;
every node then needs this project installed and the scanned paths readable under the same names
(a shared filesystem). Ray is imported only here, so `analyze` starts as fast as before.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from detector.errors import ForensicsError, InputError
from detector.options import add_analysis_options, analysis_config

if TYPE_CHECKING:  # torch is imported by the workers and by _cmd_scan, not when the CLI registers us
    from detector.pipeline import AnalysisConfig

LOCAL = "local"
OBJECT_STORE_MB = 256  # results are JSON lines and small pages: Ray's default (30 % of RAM) is far too much
MAX_WORKER_RESTARTS = 3  # a worker killed (out of memory, crash in a native decoder) is restarted this often
FLAGGED_SHOWN = 20


@dataclass(frozen=True)
class ScanOptions:
    """Where a scan writes and on which Ray it runs.

    ray: "local" (start one here), "auto" (join the cluster `ray start` made on this machine) or an
    address HOST:PORT / ray://HOST:PORT. workers: actors (None: one per cpus_per_worker cluster CPUs).
    html_index: the index page (None: beside `out`, same stem, .html); per-file pages and thumbnails go
    to a folder named after it (`<stem>_reports/`).
    """

    out: Path
    ray: str = LOCAL
    workers: int | None = None
    cpus_per_worker: int = 1
    html_index: Path | None = None
    pages: bool = True

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, not {self.workers}")
        if self.cpus_per_worker < 1:
            raise InputError(f"--cpus-per-worker must be at least 1, not {self.cpus_per_worker}")

    @property
    def index_path(self) -> Path:
        return self.html_index or self.out.with_suffix(".html")

    @property
    def pages_dir(self) -> Path:
        return self.index_path.with_name(self.index_path.stem + "_reports")


@dataclass
class ScanSummary:
    """What one run did. `rows` is every row of the output file after the run (all runs)."""

    files: int = 0
    analysed: int = 0
    errors: int = 0
    skipped: int = 0
    video_seconds: float = 0.0
    wall_s: float = 0.0
    startup_s: float = 0.0
    verdicts: Counter = field(default_factory=Counter)
    rows: list[dict] = field(default_factory=list)
    cluster_cpus: float = 0.0
    workers: int = 0
    interrupted: bool = False

    @property
    def x_realtime(self) -> float | None:
        return self.video_seconds / self.wall_s if self.wall_s > 0 and self.video_seconds > 0 else None


# ---------------------------------------------------------------- the output file
def row_key(row: dict) -> str | None:
    """What makes a row 'done': the file's sha256, or its path where it could not be read."""
    f = row.get("file") or {}
    if f.get("sha256"):
        return "sha256:" + f["sha256"]
    return "path:" + f["path"] if f.get("path") else None


def read_rows(out: Path) -> tuple[list[dict], bool]:
    """(parsed rows, whether the file ends mid-line). A line cut by a kill is ignored (and re-done)."""
    if not out.exists():
        return [], False
    data = out.read_bytes()
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows, bool(data) and not data.endswith(b"\n")


def error_row(path: Path, error: BaseException | str, sha256: str | None = None,
              error_type: str | None = None) -> dict:
    """A row for a file that could not be analysed: its name, path, sha256 (when readable) and the error."""
    f: dict = {"name": path.name, "path": str(path)}
    if sha256:
        f["sha256"] = sha256
    try:
        f["bytes"] = path.stat().st_size
    except OSError:
        pass
    msg = str(error).splitlines()[0] if str(error) else type(error).__name__
    return {"schema_version": 1, "file": f, "error": msg,
            "error_type": error_type or (type(error).__name__ if isinstance(error, BaseException) else "Error")}


def _sha256(path: Path) -> str:
    from detector.hashing import sha256_file

    return sha256_file(path)


# ---------------------------------------------------------------- the Ray worker
class ScanWorker:
    """One Ray actor: loads the model once, then analyses one file per call. Never raises for a bad file."""

    def __init__(self, config: AnalysisConfig, threads: int, pages: bool) -> None:
        from detector.runtime import get_model

        # Ray sets OMP_NUM_THREADS from the actor's CPUs; the intra-op pools (torch's, ONNX Runtime's) must match
        # it, or N actors on N cores each start N threads and fight over them. Without explanations the model
        # pass runs without PyTorch (detector/lean.py), whose ONNX Runtime sessions read this variable.
        self.threads = max(1, threads)
        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        self.config, self.pages = config, pages
        self.detector = get_model(config.weights, config.precision, config.engine, config.explain)
        if getattr(self.detector, "uses_torch", True):
            import torch

            torch.set_num_threads(self.threads)

    def hello(self) -> dict:
        threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else self.threads
        return {"host": socket.gethostname(), "pid": os.getpid(), "threads": threads}

    def analyze(self, path: str, sha256: str | None) -> dict:
        """-> {"row": dict, "page": html str | None, "thumb": jpeg bytes | None}."""
        from detector.pipeline import analyze_video

        try:
            report = analyze_video(path, self.config, detector=self.detector)
        except InputError as e:
            return {"row": error_row(Path(path), e, sha256)}
        except Exception as e:  # noqa: BLE001 - one bad file must not stop an archive scan
            return {"row": error_row(Path(path), f"internal error: {type(e).__name__}: {e}", sha256,
                                     type(e).__name__)}
        report.file["path"] = path
        result: dict = {"row": report.to_dict(), "page": None, "thumb": None}
        if self.pages:
            from detector.render import render_html
            from detector.render.index import thumbnail_jpeg

            result["page"], result["thumb"] = render_html(report), thumbnail_jpeg(report)
        return result


def _start_ray(opts: ScanOptions, log: TextIO):
    """ray.init for `opts.ray`; returns the ray module."""
    # Before ray is imported: no usage report leaves this machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ForensicsError("scan needs Ray: pip install 'ray>=2.9' (make setup installs it)") from None
    # ERROR: Ray's start-up notices would bury our own lines; its errors still show.
    common = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
    if opts.ray == LOCAL:
        workers = opts.workers or max(1, (os.cpu_count() or 1) // opts.cpus_per_worker)
        root = str(Path(__file__).resolve().parent.parent)
        kwargs = dict(num_cpus=workers * opts.cpus_per_worker, include_dashboard=False,
                      object_store_memory=OBJECT_STORE_MB * 2**20, _node_ip_address="127.0.0.1",
                      # Workers import this very checkout (not another install of the package on sys.path).
                      runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                          [root, *filter(None, [os.environ.get("PYTHONPATH")])]),
                          "RAY_USAGE_STATS_ENABLED": "0"}}, **common)
        # Ray gives its node a fixed 30 s to come up; on an overloaded machine that can fail once.
        for attempt in (1, 2):
            try:
                ray.init(**kwargs)
                break
            except Exception as e:  # noqa: BLE001 - Ray raises plain Exception here
                ray.shutdown()
                if attempt == 2:
                    raise ForensicsError(f"could not start a local Ray: {str(e).splitlines()[0]}") from None
                log.write(f"scan: local Ray did not start ({str(e).splitlines()[0][:80]}); trying once more\n")
    else:
        address = opts.ray
        try:
            ray.init(address=address, **common)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, AuthenticationError, ...
            ray.shutdown()
            raise join_error(address, e) from None
    return ray


def join_error(address: str, error: BaseException) -> ForensicsError:
    """The error a failed `ray.init(address=...)` becomes: Ray's own reason, and the fix that fits it.

    Ray's reason comes first (its first non-empty line, type named), so a refused token or a version
    mismatch is not mistaken for a missing cluster; the hint says what usually fixes that reason.
    """
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    reason = f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
    text = str(error).lower()
    if "authentication" in type(error).__name__.lower() or ("auth" in text and "token" in text):
        hint = ("the cluster uses token authentication: give this machine the head's token "
                "(copy the head's ~/.ray/auth_token here, or set RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH)")
    elif "version" in text:
        hint = "every machine needs the same Ray and Python versions as the head"
    elif isinstance(error, ConnectionError) or "could not find any running ray instance" in text:
        hint = "is a head running there? start one with `ray start --head`"
    else:
        hint = "see Ray's reason above; `ray status --address ADDRESS` on this machine shows the same"
    return ForensicsError(f"cannot join the Ray cluster at {address!r}: {reason} ({hint})")


# ---------------------------------------------------------------- progress
def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _Progress:
    """One self-rewriting line on a terminal (a line per 5 % otherwise): files done, files/min, ETA."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.t0 = total, stream, time.perf_counter()
        self.tty = stream.isatty()
        self.last_pct = -1

    def update(self, done: int, errors: int) -> None:
        """done: files finished (analysed or failed) out of total."""
        elapsed = time.perf_counter() - self.t0
        # A rate over the first seconds says nothing.
        rate = done / elapsed * 60 if elapsed >= 2 else 0.0
        left = self.total - done
        eta = _clock(left / rate * 60) if rate > 0 and left else ("0m00s" if not left else "?")
        width = 24
        filled = int(width * done / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} files ({errors} errors) · "
                f"{rate:.1f} files/min · ETA {eta}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            pct = int(100 * done / max(self.total, 1)) // 5 * 5
            if pct == self.last_pct:
                return
            self.last_pct = pct
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- the scan
def page_name(row: dict) -> str | None:
    """Stem of a row's page and thumbnail in the pages folder: its sha256 prefix."""
    sha = (row.get("file") or {}).get("sha256")
    return sha[:24] if sha and "error" not in row else None


def plan(files: list[Path], done: set[str]) -> tuple[list[tuple[Path, str]], list[dict], int]:
    """Hash every file (in this process: a shared filesystem is read once per file, sequentially) and
    split them into (to analyse [(path, sha256)], error rows for unreadable files, number skipped).
    Files already in `done`, or repeating the content of an earlier one, are skipped; `done` grows."""
    todo, errors, skipped = [], [], 0
    for f in files:
        try:
            key = "sha256:" + _sha256(f)
        except OSError as e:
            key = "path:" + str(f)
            if key not in done:
                errors.append(error_row(f, f"cannot read: {e.strerror or e}", error_type="NotAVideoError"))
        else:
            if key not in done:
                todo.append((f, key.removeprefix("sha256:")))
        skipped += key in done
        done.add(key)
    return todo, errors, skipped


def run_scan(paths: list[str], config: AnalysisConfig, opts: ScanOptions, log: TextIO | None = None) -> ScanSummary:
    """Scan every video/image under `paths` on Ray; append to opts.out; write the index; return a summary.

    Progress and notices go to `log` (default: sys.stderr as it is at call time)."""
    log = log or sys.stderr
    from detector.video import expand_paths

    t0 = time.perf_counter()
    # Absolute paths: workers (on other machines, too) do not share this process's working directory.
    files = [Path(os.path.abspath(f)) for f in expand_paths(paths)]
    if not files:
        raise InputError(f"no video or image files found in {' '.join(map(str, paths))}")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    rows, cut = read_rows(opts.out)
    done = {k for k in map(row_key, rows) if k}
    todo, unreadable, skipped = plan(files, done)
    summary = ScanSummary(files=len(files), skipped=skipped)
    if opts.pages:
        opts.pages_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(opts.out, "a", encoding="utf-8") as fh:
            if cut:
                fh.write("\n")  # the previous run was killed mid-line: start a fresh one
            sink = _Sink(fh, opts, summary)
            for row in unreadable:
                sink.write(row)
            if todo:
                log.write(f"scan: {len(files)} files, {skipped} already in {opts.out.name}, {len(todo)} to analyse\n")
                _run_on_ray(todo, config, opts, summary, sink, log, t0)
            else:
                log.write(f"scan: all {len(files)} files are already in {opts.out.name}; nothing to analyse\n")
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.wall_s = time.perf_counter() - t0
        summary.rows, _ = read_rows(opts.out)
        if opts.pages:
            write_index(summary.rows, opts)
    return summary


class _Sink:
    """Appends rows to the open JSONL (flushed per row), writes pages and thumbnails, counts."""

    def __init__(self, fh: TextIO, opts: ScanOptions, summary: ScanSummary) -> None:
        self.fh, self.opts, self.summary = fh, opts, summary

    def write(self, row: dict, page: str | None = None, thumb: bytes | None = None) -> None:
        stem = page_name(row) if self.opts.pages else None
        if stem and page is not None:
            (self.opts.pages_dir / f"{stem}.html").write_text(page, encoding="utf-8")
        if stem and thumb is not None:
            (self.opts.pages_dir / f"{stem}.jpg").write_bytes(thumb)
        self.fh.write(json.dumps(row) + "\n")
        self.fh.flush()  # a killed scan keeps every line written so far
        s = self.summary
        if "error" in row:
            s.errors += 1
            s.verdicts["error"] += 1
        else:
            s.analysed += 1
            s.verdicts[row["verdict"]] += 1
            s.video_seconds += float((row.get("video") or {}).get("duration_s") or 0.0)


def _run_on_ray(todo: list[tuple[Path, str]], config: AnalysisConfig, opts: ScanOptions, summary: ScanSummary,
                sink: _Sink, log: TextIO, t0: float) -> None:
    ray = _start_ray(opts, log)
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        summary.cluster_cpus = cpus
        n_workers = min(len(todo), opts.workers or max(1, int(cpus // opts.cpus_per_worker)))
        where = "a local Ray (127.0.0.1)" if opts.ray == LOCAL else f"the Ray cluster at {opts.ray}"
        log.write(f"scan: running on Ray {ray.__version__}, {where}: {len(ray.nodes())} node(s), "
                  f"{cpus:g} CPUs; {n_workers} workers × {opts.cpus_per_worker} CPU\n")
        if n_workers * opts.cpus_per_worker > cpus:
            log.write(f"scan: warning: {n_workers} workers need {n_workers * opts.cpus_per_worker} CPUs, the "
                      f"cluster has {cpus:g}: some will wait\n")
        remote = ray.remote(num_cpus=opts.cpus_per_worker, max_restarts=MAX_WORKER_RESTARTS)(ScanWorker)
        actors = [remote.remote(config, opts.cpus_per_worker, opts.pages) for _ in range(n_workers)]
        try:
            hosts = ray.get([a.hello.remote() for a in actors])
        except ray.exceptions.RayActorError as e:
            raise ForensicsError(f"the scan workers could not start: {str(e).splitlines()[0]}") from None
        summary.workers = len(actors)
        summary.startup_s = time.perf_counter() - t0
        log.write(f"scan: {len(actors)} workers ready on {len({h['host'] for h in hosts})} host(s) in "
                  f"{summary.startup_s:.1f} s\n")
        _stream(ray, actors, todo, summary, sink, log)
    finally:
        ray.shutdown()  # a local Ray stops; a cluster keeps running, only this driver disconnects


def _stream(ray, actors: list, todo: list[tuple[Path, str]], summary: ScanSummary, sink: _Sink,
            log: TextIO) -> None:
    """Keep one file in flight per worker; append each result the moment it arrives."""
    queue = iter(todo)
    idle = list(actors)
    deaths: Counter = Counter()
    pending: dict = {}
    progress = _Progress(len(todo), log)

    def submit() -> None:
        while idle and (item := next(queue, None)) is not None:
            actor = idle.pop()
            pending[actor.analyze.remote(str(item[0]), item[1])] = (actor, *item)

    submit()
    finished = 0
    progress.update(finished, 0)
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        actor, f, sha = pending.pop(ref)
        try:
            res = ray.get(ref)
            sink.write(res["row"], res.get("page"), res.get("thumb"))
            idle.append(actor)
        except ray.exceptions.RayActorError:
            # The worker process died on this file (out of memory, a crash in a native decoder). The file
            # gets its error line; Ray restarts the worker up to MAX_WORKER_RESTARTS times.
            sink.write(error_row(f, "the worker died while analysing this file (out of memory or a crash in "
                                    "a native library)", sha, "WorkerDiedError"))
            deaths[actor] += 1
            if deaths[actor] <= MAX_WORKER_RESTARTS:
                idle.append(actor)
            if not idle and not pending:
                raise ForensicsError("every scan worker died; see the Ray logs (/tmp/ray/session_latest/logs); "
                                     "re-run to go on where it stopped") from None
        finished += 1
        submit()
        progress.update(finished, summary.errors)
    progress.close()


def write_index(rows: list[dict], opts: ScanOptions) -> Path:
    """The HTML index over every row of the output file; links only to pages that exist."""
    from detector.render.index import render_index

    rel = opts.pages_dir.name
    pages = {}
    for i, row in enumerate(rows):
        stem = page_name(row)
        if not stem:
            continue
        page, thumb = opts.pages_dir / f"{stem}.html", opts.pages_dir / f"{stem}.jpg"
        pages[i] = (f"{rel}/{page.name}" if page.exists() else None, f"{rel}/{thumb.name}" if thumb.exists() else None)
    path = opts.index_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_index(rows, pages, title=f"Scan: {opts.out.name}"), encoding="utf-8")
    return path


def format_summary(s: ScanSummary, opts: ScanOptions) -> str:
    """Readable lines: this run's counts and throughput, the whole output file's verdicts and flagged files."""
    lines = [f"scan: {s.files} files: {s.analysed} analysed, {s.errors} errors, {s.skipped} skipped (already in "
             f"{opts.out.name})" + (" — INTERRUPTED: re-run the same command to finish" if s.interrupted else "")]
    if s.verdicts:
        lines.append("this run: " + ", ".join(f"{k} {v}" for k, v in sorted(s.verdicts.items())))
    if s.analysed:
        xrt, busy = s.x_realtime, s.wall_s - s.startup_s
        lines.append(f"throughput: {s.video_seconds:.1f} s of video in {s.wall_s:.1f} s wall"
                     + (f" = {xrt:.2f}× real time" if xrt else "")
                     + f" ({s.workers} workers on {s.cluster_cpus:g} CPUs; start-up {s.startup_s:.1f} s included"
                     + (f"; {s.video_seconds / busy:.2f}× after it" if busy > 0 else "") + ")")
    every = Counter("error" if "error" in r else str(r.get("verdict")) for r in s.rows)
    lines.append(f"{opts.out}: {len(s.rows)} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(every.items())))
    flagged = sorted((r for r in s.rows if r.get("verdict") == "FAKE"), key=lambda r: -float(r["p_fake"]))
    if flagged:
        lines.append(f"flagged FAKE ({len(flagged)}), highest p_fake first:")
        lines += [f"  {float(r['p_fake']):.3f}  {r['file'].get('path') or r['file'].get('name')}"
                  for r in flagged[:FLAGGED_SHOWN]]
        if len(flagged) > FLAGGED_SHOWN:
            lines.append(f"  … and {len(flagged) - FLAGGED_SHOWN} more (see the index)")
    if opts.pages:
        lines.append(f"index: {opts.index_path}")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="scan folders of videos on Ray; one JSON line per file, resumable")
    p.add_argument("paths", nargs="+", help="video/image files or folders (folders: every video inside)")
    p.add_argument("--out", type=Path, required=True, help="results JSONL (appended to; files already in it "
                                                           "are skipped)")
    p.add_argument("--ray", default=LOCAL, metavar="local|auto|ADDRESS",
                   help="local: start Ray here (default); auto: join the cluster of `ray start` on this "
                        "machine; HOST:PORT: join that cluster")
    p.add_argument("--workers", type=int, help="Ray actors, each with its own model (default: one per CPU)")
    p.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs (torch threads) per worker (default 1)")
    p.add_argument("--html-index", type=Path, help="index page (default: --out with .html)")
    p.add_argument("--no-pages", action="store_true", help="JSONL only: no index, per-file pages, thumbnails")
    add_analysis_options(p)
    p.set_defaults(func=_cmd_scan)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _cmd_scan(args: argparse.Namespace) -> int:
    from detector.weights import read_spec

    config = analysis_config(args)
    read_spec(config.weights)  # a missing or broken sidecar fails here, in one line, before Ray starts
    opts = ScanOptions(out=args.out, ray=args.ray, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                       html_index=args.html_index, pages=not args.no_pages)
    # `kill PID` (SIGTERM) stops like Ctrl-C: lines written stay, the local Ray is shut down. (SIGKILL can
    # leave Ray's agent processes behind.)
    signal.signal(signal.SIGTERM, _interrupt)
    summary = run_scan(args.paths, config, opts)
    print(format_summary(summary, opts))
    if summary.interrupted:
        return 130
    return 2 if summary.errors else 0

