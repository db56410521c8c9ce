"""End to end in a real browser: `python app.py` served on a free port, driven by headless Chromium.

Uploads an example clip, clicks Analyze, waits for the verdict, checks the plain verdict sentence and the
three evidence lines (Detector, Content Credentials, File metadata), the face gallery and the Plotly chart,
saves tests/artifacts/browser.png and prints the upload -> verdict wall time.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}; see {ARTIFACTS / 'server.log'}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("app.py did not answer HTTP 200 within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_upload_analyze_in_chromium(server_url):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    clip = sorted((ROOT / "assets" / "examples").glob("*.mp4"))[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server_url, wait_until="networkidle")
            t0 = time.perf_counter()
            page.locator("#video-in input[type=file]").set_input_files(str(clip))
            # The upload is done when the player shows the clip.
            expect(page.locator("#video-in video")).to_have_count(1, timeout=60_000)
            page.locator("#analyze-btn").click()
            expect(page.locator("#verdict")).to_contain_text(re.compile(r"\b(FAKE|REAL|INCONCLUSIVE)\b"),
                                                             timeout=180_000)
            wall = time.perf_counter() - t0
            print(f"\nupload -> verdict wall time: {wall:.1f} s")

            # The verdict in one plain sentence, then the three evidence lines, then the numbers under Details
            summary = page.locator("#summary")
            expect(summary).to_contain_text(re.compile(
                r"(Flagged|Inconclusive|Not flagged|No verdict): [^.]+\."), timeout=30_000)
            text = summary.inner_text()
            spots = [text.index(t) for t in ("Detector —", "Content Credentials —", "File metadata —", "Details")]
            assert spots == sorted(spots), text
            assert "no Content Credentials" in text and "FFmpeg's muxer" in text
            assert "authentic" not in text.lower()

            expect(page.locator("#faces img").first).to_be_visible(timeout=30_000)
            assert page.locator("#faces img").count() >= 1
            page.get_by_role("tab", name="Temporal chart").click()
            expect(page.locator("#temporal .js-plotly-plot, #temporal svg.main-svg").first).to_be_visible(
                timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "browser_chart.png"), full_page=True)
            page.get_by_role("tab", name="Face tracks").click()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
        finally:
            browser.close()
