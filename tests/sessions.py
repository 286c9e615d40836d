"""Many browser sessions on one app server at once: open them, press Play, watch each one's frames and errors.

A ``Session`` is one browser context (its own cookies and websocket: its own Streamlit session) on one of
``PAGES``. A MutationObserver inside each page (``WATCH``) stamps the first appearance of every frame, so polling
does not load the page; ``check`` turns what a session saw into errors, ``own_frame_checks`` compares sessions.
``log_tracebacks`` reads the server's log. Used by ``benchmarks/load.py`` (8 sessions) and
``tests/test_concurrency.py`` (3).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from tests.browser import ROOT


@dataclass(frozen=True)
class Page:
    """How to open, play and read one page."""

    path: str  # URL path
    ready: str  # text on show once the first frame is drawn
    frame: str  # CSS selector of the animated picture
    attr: str  # its attribute that changes with the frame
    status: str | None  # regex of the page's step counter, if it has one
    plotly_play: bool = False  # Play is plotly's own ▶ (the animation runs in the browser)

    def query(self, seed: int) -> dict[str, str]:
        q = {"seed": str(seed)}
        if self.path == "landscape":  # one held-out digit per seed (37 is prime to 1,000: no two alike)
            q |= {"view": "Your digit", "digit": str(37 * seed % 1000)}
        return q


PAGES = {
    "langevin": Page("langevin", "Step 0 /", '[data-testid="stMain"] [data-testid="stImage"] img', "src",
                     r"^Step \d+ / \d+"),
    "landscape": Page("landscape", "Press ▶ to watch it descend", '[data-testid="stPlotlyChart"] image', "href",
                      None, plotly_play=True),
    "sampler_lab": Page("sampler_lab", "Step 0 /", '[data-testid="stMain"] [data-testid="stImage"] img', "src",
                        r"^Step \d+ / \d+"),
}

# Installed in each page before Play: stamps (performance.now(), ms) the first appearance of each frame and
# step-counter text, and remembers whether an exception block or the connection badge ever showed. Long
# attribute values (plotly's data: URIs) are kept as a 32-bit FNV-1a hash and their length.
WATCH = """([frameSel, attr, statusRe]) => {
  const re = statusRe ? new RegExp(statusRe) : null;
  const w = window.__load = {frames: {}, status: {}, exception: false, disconnected: false};
  const key = v => {
    if (v.length <= 200) return v;
    let h = 0x811c9dc5;
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 16777619);
    return (h >>> 0).toString(16) + '/' + v.length;
  };
  const scan = () => {
    const now = performance.now();
    const f = document.querySelector(frameSel), v = f && f.getAttribute(attr);
    if (v) { const k = key(v); if (!(k in w.frames)) w.frames[k] = now; }
    if (re) for (const e of document.querySelectorAll('[data-testid="stMarkdownContainer"]')) {
      const m = re.exec(e.textContent);
      if (m && !(m[0] in w.status)) w.status[m[0]] = now;
    }
    w.exception = w.exception || !!document.querySelector('[data-testid="stException"]');
    w.disconnected = w.disconnected || !!document.querySelector('[data-testid="stConnectionStatus"]');
  };
  new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                      attributes: true, attributeFilter: [attr]});
  scan();
  return performance.now();
}"""


@dataclass
class Session:
    """One browser context on one page, and what it saw."""

    index: int
    page: Page
    seed: int
    extra: dict = field(default_factory=dict)  # query parameters beyond the page's own (e.g. {"steps": "2048"})
    tab: object = None  # the Playwright page
    opened: float = 0.0  # time.perf_counter() at goto
    ready_s: float | None = None  # seconds from goto to the first frame with the script finished
    played_at: float = 0.0  # performance.now() in the page when Play was pressed
    before: set = field(default_factory=set)  # frames on show before Play
    frames: dict = field(default_factory=dict)  # frame key -> ms after Play, new frames only
    keys: set = field(default_factory=set)  # every frame key seen
    last_status: str = ""
    steps: dict = field(default_factory=dict)  # step number on the page's counter -> ms after Play it first showed
    console: list = field(default_factory=list)
    media_missing: int = 0  # frames whose picture was gone (404) before the browser fetched it
    errors: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.index}:{self.page.path}"

    @property
    def fps(self) -> float:
        t = sorted(self.frames.values())
        return (len(t) - 1) / ((t[-1] - t[0]) / 1000) if len(t) > 1 and t[-1] > t[0] else 0.0

    @property
    def steps_per_s(self) -> float:
        """Steps per second from the step counter: between its first and last new reading after Play (0 with fewer
        than two readings)."""
        if len(self.steps) < 2:
            return 0.0
        by_time = sorted(self.steps.items(), key=lambda kv: kv[1])
        (s0, t0), (s1, t1) = by_time[0], by_time[-1]
        return (s1 - s0) / ((t1 - t0) / 1000) if t1 > t0 else 0.0

    @property
    def query(self) -> dict[str, str]:
        return self.page.query(self.seed) | self.extra

    @property
    def first_frame_s(self) -> float | None:
        return min(self.frames.values()) / 1000 if self.frames else None

    def summary(self) -> dict:
        return {"session": self.index, "page": self.page.path, "seed": self.seed,
                "query": self.query, "ready_s": self.ready_s,
                "frames": len(self.frames), "first_frame_s": self.first_frame_s, "fps": round(self.fps, 2),
                "steps_per_s": round(self.steps_per_s, 2),
                "media_404": self.media_missing, "last_status": self.last_status, "errors": self.errors}


def _console(s: Session, origin: str, message) -> None:
    """Keep the browser's error messages, less three kinds that are not the app's: resources from other hosts
    (icon fonts: this machine is offline), the 404s of Streamlit probing a deep link's path as its base URL
    (``/langevin/_stcore/health``), and pictures replaced before the browser fetched them (counted: Streamlit
    drops a session's previous media files when a rerun replaces them, and a slow browser can ask too late)."""
    if message.type != "error":
        return
    where = message.location.get("url", "")
    if not where.startswith(origin + "/"):
        return
    if re.search(r"/[^/]+/_stcore/(health|host-config)$", where):
        return
    if "/media/" in where or "Image source error" in message.text:  # the 404 itself, and the app's report of it
        s.media_missing += 1
        return
    s.console.append(f"{message.text} ({where})")


def open_sessions(browser, url: str, pages: list[str], n: int, first_seed: int = 101,
                  query: dict[str, str] | None = None) -> list[Session]:
    """Open n sessions at once (goto returns as soon as the request is sent); pages round-robin; ``query`` adds
    parameters to every session's link."""
    sessions = []
    for i in range(n):
        s = Session(i, PAGES[pages[i % len(pages)]], first_seed + i, dict(query or {}))
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        s.tab = context.new_page()
        s.tab.on("console", lambda m, s=s: _console(s, url, m))
        s.tab.on("pageerror", lambda e, s=s: s.console.append(f"page error: {e}"))
        sessions.append(s)
    for s in sessions:
        s.opened = time.perf_counter()
        s.tab.goto(f"{url}/{s.page.path}?{urlencode(s.query)}", wait_until="commit")
    return sessions


def _ready(s: Session) -> bool:
    tab = s.tab
    if tab.get_by_text(s.page.ready).count() == 0 or tab.locator('[data-testid="stStatusWidget"]').count():
        return False
    if s.page.plotly_play:
        return tab.locator('[data-testid="stPlotlyChart"] .updatemenu-button').count() > 0
    return tab.locator(s.page.frame).count() > 0


def wait_ready(sessions: list[Session], timeout: float) -> None:
    """Poll every session until its first frame is on show and its script has finished."""
    deadline, waiting = time.perf_counter() + timeout, list(sessions)
    while waiting and time.perf_counter() < deadline:
        for s in list(waiting):
            if _ready(s):
                s.ready_s = time.perf_counter() - s.opened
                waiting.remove(s)
        if waiting:
            waiting[0].tab.wait_for_timeout(250)
    for s in waiting:
        s.errors.append(f"not ready within {timeout:.0f} s")


def play(sessions: list[Session]) -> None:
    """Start watching each ready session, then press Play in each, one right after another."""
    for s in sessions:
        if s.ready_s is not None:
            s.tab.evaluate(WATCH, [s.page.frame, s.page.attr, s.page.status])
    for s in sessions:
        if s.ready_s is None:
            continue
        s.before = set(s.tab.evaluate("() => Object.keys(window.__load.frames)"))
        s.played_at = s.tab.evaluate("() => performance.now()")
        try:
            if s.page.plotly_play:
                s.tab.locator('[data-testid="stPlotlyChart"] .updatemenu-button').first.click()
            else:
                s.tab.get_by_role("button", name="Play").click()
        except Exception as exc:  # noqa: BLE001 — Playwright's TimeoutError (a browser starved of CPU): this session's
            s.errors.append(f"Play could not be pressed: {str(exc).splitlines()[0]}")


def snapshot(s: Session) -> None:
    """The frames the page's watcher saw since Play (read right when the watch ends)."""
    if s.ready_s is None:
        return
    seen = s.tab.evaluate("() => window.__load")
    s.keys = set(seen["frames"])
    s.frames = {k: t - s.played_at for k, t in seen["frames"].items() if k not in s.before and t >= s.played_at}
    s.last_status = max(seen["status"], key=lambda k: int(re.findall(r"\d+", k)[0]), default="")
    s.steps = {int(re.findall(r"\d+", k)[0]): t - s.played_at for k, t in seen["status"].items() if t >= s.played_at}
    if not s.frames:
        s.errors.append("no frame after Play")


def check(s: Session) -> None:
    """The page's error signs: exception blocks, the connection badge, console errors, another seed."""
    if s.ready_s is None:
        return
    seen = s.tab.evaluate("() => window.__load")
    blocks = s.tab.locator('[data-testid="stException"]')
    if blocks.count():
        s.errors.append("exception: " + blocks.first.inner_text()[:300])
    elif seen["exception"]:
        s.errors.append("an exception block showed while playing")
    if seen["disconnected"]:
        s.errors.append("the connection badge showed (websocket lost)")
    if s.console:
        s.errors.append(f"{len(s.console)} console error(s): " + " | ".join(s.console[:3])[:300])
    box = s.tab.get_by_label("Seed", exact=True)
    seed = box.input_value(timeout=10_000) if box.count() == 1 else "no (single) seed box"
    if seed != str(s.seed):
        s.errors.append(f"the sidebar shows seed {seed}, not this session's {s.seed}")


def own_frame_checks(sessions: list[Session]) -> dict[str, int]:
    """Sessions on one page never show each other's pictures (landscape: never the same first picture).
    Returns, per pair of landscape sessions, how many pictures they share (an equal last minimum is allowed)."""
    shared = {}
    by_page: dict[str, list[Session]] = {}
    for s in sessions:
        if s.keys:
            by_page.setdefault(s.page.path, []).append(s)
    for group in by_page.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                common = a.keys & b.keys
                if a.page.plotly_play:
                    shared[f"{a.name}~{b.name}"] = len(common)
                    if a.before & b.before:  # the picture before Play: the descent's start, the session's digit
                        a.errors.append(f"starts its descent from the same picture as session {b.index}")
                elif common:
                    a.errors.append(f"showed {len(common)} picture(s) that session {b.index} (seed {b.seed}) showed")
                    b.errors.append(f"showed {len(common)} picture(s) that session {a.index} (seed {a.seed}) showed")
    return shared


def drive(browser, url: str, pages: list[str], n: int, seconds: float, ready_timeout: float = 240.0,
          first_seed: int = 101, query: dict[str, str] | None = None,
          window: Callable[[], AbstractContextManager] = contextlib.nullcontext,
          ) -> tuple[list[Session], dict[str, int]]:
    """Open n sessions at once, press Play in each, watch for ``seconds``, check them; the contexts stay open.
    ``query`` adds parameters to every session's link; ``window()`` is entered once every session has pressed Play
    and left when the watch ends (e.g. to read the server's counters over it).
    Returns the sessions and ``own_frame_checks``' shared landscape pictures."""
    sessions = open_sessions(browser, url, pages, n, first_seed, query)
    wait_ready(sessions, ready_timeout)
    play(sessions)
    with window():
        sessions[0].tab.wait_for_timeout(seconds * 1000)
    for s in sessions:
        snapshot(s)
    shared = own_frame_checks(sessions)
    for s in sessions:
        check(s)
    return sessions, shared


def close(sessions: list[Session]) -> None:
    for s in sessions:
        s.tab.context.close()


def log_tracebacks(log: Path | None, since: int = 0) -> list[str]:
    """Each Traceback in the server's log (from character ``since`` on) as "<the app's frames> → <exception>"."""
    if log is None or not log.exists():
        return []
    out = []
    root = str(ROOT) + "/"
    for chunk in log.read_text(errors="replace")[since:].split("Traceback (most recent call last):")[1:]:
        lines = chunk.splitlines()
        ours = [m.groups() for m in (re.match(r'\s*File "(.+)", line (\d+), in (\S+)', line) for line in lines)
                if m and m.group(1).startswith(root) and "/.venv/" not in m.group(1)]
        error = next((line for line in lines[1:] if line and not line.startswith(" ")), "?")
        where = " … ".join(dict.fromkeys(f"{f[len(root):]}:{n} in {fn}" for f, n, fn in (ours[:1] + ours[-1:])))
        where = where or "(not in the app's code)"
        out.append(f"{where} → {error[:200]}")
    return out
