"""The app under load: N concurrent API requests against `python app.py` served on 127.0.0.1 only.

Starts the app in a child process with its own temporary folders (TMPDIR for our per-request work
folders, GRADIO_TEMP_DIR for Gradio's cache of uploads and outputs), waits until it answers, fires N
gradio_client requests at once (one thread and one client each, the committed example clips in turn),
and prints: successes, the errors clients saw (e.g. "busy, try again" past the queue size), latency
percentiles, peak RSS of the server process and its children (psutil, sampled every 0.1 s), and the
files left in each temporary folder once every response is in (then again after Gradio's cache sweep
when --cache-age is given).

    python benchmarks/bench_load.py --n 8                      # the issue's figure: 8 requests at once
    python benchmarks/bench_load.py --n 8 --queue-size 2       # past the queue size: busy messages
    python benchmarks/bench_load.py --n 8 --cache-age 600      # and wait for delete_cache to empty the cache

Bounded on purpose: at most 32 requests, and --timeout seconds for the whole run (the server is stopped
either way). The server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from detector.machine import cpu_name  # noqa: E402  (the project's own: no torch, no gradio)

EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.mp4"))
MAX_REQUESTS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


class PeakRSS(threading.Thread):
    """Samples the RSS of a process plus all its children (ffmpeg encoders, Gradio workers)."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc, self.every_s, self.peak, self.stop = psutil.Process(pid), every_s, 0, threading.Event()

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            time.sleep(self.every_s)


def wait_ready(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with code {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not answer within {timeout_s:.0f} s")


def one_request(url: str, clip: Path, frames: int, explain: bool, timeout_s: float, downloads: Path,
                out: dict) -> None:
    from gradio_client import Client, handle_file

    t0 = time.perf_counter()
    try:
        # No analytics (nothing leaves this machine); HTTP reads may wait as long as the whole run, since
        # a queued request gets no bytes until its turn; downloads go to the run's own folder.
        client = Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads),
                        httpx_kwargs={"timeout": timeout_s})
        job = client.submit(handle_file(str(clip)), None, frames, "HOG", explain, api_name="/analyze")
        result = job.result(timeout=timeout_s)
        out.update(ok=True, verdict=result[0].get("label") if isinstance(result[0], dict) else str(result[0]))
    except Exception as e:  # noqa: BLE001 - a benchmark reports every failure, it does not stop on one
        out.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    out["latency_s"] = time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0-100) of a non-empty list."""
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help=f"concurrent requests (1-{MAX_REQUESTS}, default 8)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--no-explain", action="store_true", help="requests without Grad-CAM (the UI's default is on)")
    ap.add_argument("--concurrency", type=int, help="DEEPFAKE_FORENSICS_CONCURRENCY for the server")
    ap.add_argument("--queue-size", type=int, help="DEEPFAKE_FORENSICS_QUEUE_SIZE for the server")
    ap.add_argument("--cache-age", type=int, help="DEEPFAKE_FORENSICS_CACHE_MAX_AGE_S; then wait for the sweep")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole run (default 900)")
    args = ap.parse_args()
    if not 1 <= args.n <= MAX_REQUESTS:
        raise SystemExit(f"--n must be 1-{MAX_REQUESTS}")
    t_start = time.perf_counter()
    # `kill` stops the run through the finally below, so the server goes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    root = Path(tempfile.mkdtemp(prefix="bench_load_"))
    work, cache, downloads = root / "tmp", root / "gradio", root / "client"
    for d in (work, cache, downloads):
        d.mkdir()
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), TMPDIR=str(work),
               GRADIO_TEMP_DIR=str(cache), GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    for flag, name in ((args.concurrency, "CONCURRENCY"), (args.queue_size, "QUEUE_SIZE"),
                       (args.cache_age, "CACHE_MAX_AGE_S")):
        if flag is not None:
            env[f"DEEPFAKE_FORENSICS_{name}"] = str(flag)
    url = f"http://127.0.0.1:{port}/"
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    monitor = None
    try:
        wait_ready(url, server, min(600.0, args.timeout))  # the app starts in ~10 s, far longer under load
        idle_rss = PeakRSS(server.pid).rss()
        monitor = PeakRSS(server.pid)
        monitor.start()
        results = [dict(clip=EXAMPLES[i % len(EXAMPLES)].name) for i in range(args.n)]
        left = args.timeout - (time.perf_counter() - t_start)
        threads = [threading.Thread(target=one_request, daemon=True,
                                    args=(url, EXAMPLES[i % len(EXAMPLES)], args.frames, not args.no_explain,
                                          left, downloads, results[i])) for i in range(args.n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, args.timeout - (time.perf_counter() - t_start)))
        wall = time.perf_counter() - t0
        time.sleep(1.0)  # the last response's clean-up runs right after it is served
        monitor.stop.set()
        peak = monitor.peak

        ok = [r for r in results if r.get("ok")]
        print(f"server: python app.py on {url} (concurrency {args.concurrency or 'default'}, queue size "
              f"{args.queue_size or 'default'}); CPU: {cpu_name()}, {os.cpu_count()} cores")
        print(f"requests: {args.n} at once, {args.frames} frames, explanations "
              f"{'off' if args.no_explain else 'on'}; {len(ok)}/{args.n} succeeded in {wall:.1f} s wall")
        errors: dict[str, int] = {}
        for r in results:
            if not r.get("ok"):
                msg = r.get("error") or "no answer before --timeout"
                errors[msg] = errors.get(msg, 0) + 1
        for msg, n in errors.items():
            print(f"  {n} × {msg}")
        if ok:
            lat = [r["latency_s"] for r in ok]
            print(f"latency (s, successful): p50 {percentile(lat, 50):.1f}, p90 {percentile(lat, 90):.1f}, "
                  f"max {max(lat):.1f}, mean {statistics.mean(lat):.1f}")
        print(f"server RSS incl. children: idle {idle_rss / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB")
        print(f"files left: {files_in(work)} in the work folder (TMPDIR), {files_in(cache)} in Gradio's cache "
              "(uploads and copies of outputs, removed by delete_cache)")
        if args.cache_age:
            sweep = max(60, args.cache_age // 4) + args.cache_age + 5
            budget = args.timeout - (time.perf_counter() - t_start)
            if sweep < budget:
                print(f"waiting {sweep} s for Gradio's cache sweep ...", flush=True)
                time.sleep(sweep)
                print(f"files left after the sweep: {files_in(work)} in TMPDIR, {files_in(cache)} in Gradio's cache")
            else:
                print(f"not waiting for the cache sweep ({sweep} s): over --timeout")
        return 0 if ok else 1
    finally:
        if monitor is not None:
            monitor.stop.set()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
