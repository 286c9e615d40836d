"""Helpers to drive the real app in Debian's Chromium: start ``streamlit run``, launch the browser.

Shared by the browser tests, ``tests/sessions.py``, ``benchmarks/page_speed.py`` and ``benchmarks/load.py``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("EBMVIZ_SHOTS")  # a folder: browser tests keep their screenshots there (the notes' pictures)


def browser_marks() -> list:
    """A browser test module's ``pytestmark``: marked ``browser``, skipped with the reason when Chromium is absent."""
    import pytest

    missing = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    return [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=missing)]


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run``: its URL, process id (to read its memory) and log file (None when not kept)."""

    url: str
    pid: int
    log: Path | None


@contextlib.contextmanager
def streamlit_process(env: dict | None = None, timeout: float = 90.0, ebmviz_run: list[str] | None = None):
    """Run the app on 127.0.0.1:<free port>; yield its ``Server``; stop it afterwards. With ``ebmviz_run`` (its
    arguments, e.g. ``["--model", "f.py:build"]``) the app starts as a user starts it: ``python -m ebmviz run``."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    if ebmviz_run is not None:
        cmd = [sys.executable, "-m", "ebmviz", "run", "--port", str(port), *ebmviz_run]
    log_path = ROOT / "runs" / f"streamlit-{port}.log" if (ROOT / "runs").is_dir() else None
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start (exit code {proc.poll()})")
            time.sleep(0.3)
        yield Server(url, proc.pid, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, timeout: float = 90.0):
    """Run the app on 127.0.0.1:<free port>; yield its URL; stop it afterwards."""
    with streamlit_process(env, timeout) as server:
        yield server.url


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in Debian's Chromium (Playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the app has rendered and no script run is in progress."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


def step_shown(page) -> int | None:
    """The 'Step N / K' counter of the Langevin page, or None when absent."""
    text = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=\"stMarkdownContainer\"]')]"
        ".map(e => e.innerText).find(t => /^Step \\d+ \\//.test(t)) || ''")
    return int(text.split()[1]) if text else None
