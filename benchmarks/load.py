"""Concurrent users: N browser sessions at once, each pressing Play with its own seed; errors, frames, memory.

Starts `streamlit run app.py` on 127.0.0.1 and one headless Chromium. Each session is its own browser
context (its own cookies and websocket: its own Streamlit session). Sessions go round-robin over the
pages in ``--pages``:
- /langevin?seed=S: 16 chains of the default model (shortrun-mnist, 512 steps, a frame every 8 steps),
  sampled live while playing;
- /sampler_lab?seed=S: ULA beside MALA on the 8-Gaussian mixture, 500 particles, 300 steps, live;
- /landscape?view=Your+digit&digit=D&seed=S: steepest descent of held-out digit D = 37·S mod 1000 on the
  stored map, computed by the server when the page opens, then played by plotly's own ▶ in the browser
  (the seed does not enter the descent, so each landscape session gets its own digit).
Seeds are 101, 102, … in the first round, 201, … in the second (``--rounds``).

All sessions open at once; when every one shows its first frame (and its script has finished), each
presses Play and the page is watched for ``--seconds``. A frame is a distinct picture in the animated
panel: the ``src`` of the first image on the Langevin and sampler-lab pages (Streamlit names a media file
by a hash of its bytes, so equal names mean equal pictures) or the ``href`` of the plotly image on the
landscape page. Frames per second: (new frames − 1) / (time of the last − time of the first new frame).
A MutationObserver inside each page stamps every first appearance, so polling does not load the page.

Checks, each an error of the session it concerns:
- no frame after Play, or the page not ready within ``--ready-timeout``;
- an exception block, the "connecting" badge (lost websocket), or a console / page error in the browser;
- another seed in the sidebar than the session's own;
- its own frames: two sessions on the Langevin or sampler-lab page (different seeds) must never show the
  same picture, and two landscape sessions (different digits) must start their descents from different
  pictures (their last pictures may be equal when two digits reach one minimum; that is counted, not an error);
- a Traceback in the server's log is an error of the run.

Memory: the server's resident set (VmRSS of the process and any children, from /proc) sampled every
0.2 s: before any session (cold), after one warm-up session per page has closed (baseline: models,
maps and data loaded), its peak during the run (with the kernel's VmHWM of the process), and
``--after-close`` seconds after every session of a round has closed. Streamlit keeps a closed tab's
session state until ``server.disconnectedSessionTTL`` (120 s) has passed and the session store is next
touched, and freed memory need not go back to the system: with ``--rounds 2`` or more, a leak shows as
growth from one round's after-close reading to the next, a plateau as none.

    .venv/bin/python benchmarks/load.py                       # 8 sessions, 30 s of Play, every page
    .venv/bin/python benchmarks/load.py --sessions 3 --seconds 10 --pages langevin,sampler_lab --json out.json
    .venv/bin/python benchmarks/load.py --rounds 3            # does memory settle after each round?

Exits 1 when any session had an error or saw no frame, or the server logged a Traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_process  # noqa: E402


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
    tab: object = None  # the Playwright page
    opened: float = 0.0  # time.perf_counter() at goto
    ready_s: float | None = None  # seconds from goto to the first frame with the script finished
    played_at: float = 0.0  # performance.now() in the page when Play was pressed
    before: set = field(default_factory=set)  # frames on show before Play
    frames: dict = field(default_factory=dict)  # frame key -> ms after Play, new frames only
    keys: set = field(default_factory=set)  # every frame key seen
    last_status: str = ""
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
    def first_frame_s(self) -> float | None:
        return min(self.frames.values()) / 1000 if self.frames else None

    def summary(self) -> dict:
        return {"session": self.index, "page": self.page.path, "seed": self.seed,
                "query": self.page.query(self.seed), "ready_s": self.ready_s,
                "frames": len(self.frames), "first_frame_s": self.first_frame_s, "fps": round(self.fps, 2),
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


def open_sessions(browser, url: str, pages: list[str], n: int, first_seed: int = 101) -> list[Session]:
    """Open n sessions at once (goto returns as soon as the request is sent); pages round-robin."""
    sessions = []
    for i in range(n):
        s = Session(i, PAGES[pages[i % len(pages)]], first_seed + i)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        s.tab = context.new_page()
        s.tab.on("console", lambda m, s=s: _console(s, url, m))
        s.tab.on("pageerror", lambda e, s=s: s.console.append(f"page error: {e}"))
        sessions.append(s)
    for s in sessions:
        s.opened = time.perf_counter()
        s.tab.goto(f"{url}/{s.page.path}?{urlencode(s.page.query(s.seed))}", wait_until="commit")
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
        if s.page.plotly_play:
            s.tab.locator('[data-testid="stPlotlyChart"] .updatemenu-button').first.click()
        else:
            s.tab.get_by_role("button", name="Play").click()


def snapshot(s: Session) -> None:
    """The frames the page's watcher saw since Play (read right when the watch ends)."""
    if s.ready_s is None:
        return
    seen = s.tab.evaluate("() => window.__load")
    s.keys = set(seen["frames"])
    s.frames = {k: t - s.played_at for k, t in seen["frames"].items() if k not in s.before and t >= s.played_at}
    s.last_status = max(seen["status"], key=lambda k: int(re.findall(r"\d+", k)[0]), default="")
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
          first_seed: int = 101) -> tuple[list[Session], dict[str, int]]:
    """Open n sessions at once, press Play in each, watch for ``seconds``, check them; the contexts stay open.
    Returns the sessions and ``own_frame_checks``' shared landscape pictures."""
    sessions = open_sessions(browser, url, pages, n, first_seed)
    wait_ready(sessions, ready_timeout)
    play(sessions)
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


def _status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if v.strip().endswith("kB")}


def _tree(pid: int) -> list[int]:
    """The process and its descendants (through /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def rss_mib(pid: int) -> float:
    """Resident set of ``pid`` and its children, MiB."""
    total = 0
    for p in _tree(pid):
        try:
            total += _status(p).get("VmRSS", 0)
        except OSError:
            pass
    return total / 1024


class RssSampler(threading.Thread):
    """Samples ``rss_mib(pid)`` every ``every`` seconds until stopped; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(self.every)

    def reset(self) -> None:
        self.peak = rss_mib(self.pid)

    def stop(self) -> None:
        self._stop.set()


def warm_up(browser, url: str, pages: list[str]) -> None:
    """One session per page, one after another, until its first frame: models, maps and data get loaded."""
    for path in pages:
        (s,) = open_sessions(browser, url, [path], 1, first_seed=0)
        wait_ready([s], 240)
        close([s])


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


def report(sessions: list[Session], shared: dict) -> None:
    print(f"{'session':<16}{'seed':>6}{'ready s':>9}{'frames':>8}{'1st frame s':>13}{'fps':>7}{'media 404':>11}  "
          f"{'last step':<18}errors")
    for s in sessions:
        first = "—" if s.first_frame_s is None else f"{s.first_frame_s:.2f}"
        ready = "—" if s.ready_s is None else f"{s.ready_s:.1f}"
        print(f"{s.name:<16}{s.seed:>6}{ready:>9}{len(s.frames):>8}{first:>13}{s.fps:>7.1f}{s.media_missing:>11}  "
              f"{s.last_status:<18}{'; '.join(s.errors) or 'none'}")
    for pair, n in shared.items():
        if n:
            print(f"landscape sessions {pair} share {n} picture(s) (both descents reach one minimum)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=8, help="browser sessions at once")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to watch after Play")
    ap.add_argument("--pages", default="langevin,landscape,sampler_lab",
                    help=f"comma-separated, round-robin over the sessions; of {', '.join(PAGES)}")
    ap.add_argument("--after-close", type=float, default=15.0, help="seconds to wait before the last RSS reading")
    ap.add_argument("--ready-timeout", type=float, default=240.0, help="seconds a page may take to open")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole round (new seeds each time): RSS after each close shows a leak as growth")
    ap.add_argument("--session-ttl", type=int,
                    help="server.disconnectedSessionTTL in seconds (Streamlit's default: 120): how long the server "
                         "keeps a closed tab's session; a short one separates kept sessions from leaks")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up session per page")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    if unknown := set(pages) - set(PAGES):
        ap.error(f"unknown page(s) {', '.join(sorted(unknown))}; choose from {', '.join(PAGES)}")
    if not os.path.exists(CHROMIUM):
        ap.error(f"{CHROMIUM} is missing (apt-get install -y chromium)")

    from playwright.sync_api import sync_playwright

    memory: dict = {"after_close": []}
    t0 = time.perf_counter()
    rounds = []
    (ROOT / "runs").mkdir(exist_ok=True)  # (ignored by git) the server's log, read for Tracebacks
    env = {} if args.session_ttl is None else {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.session_ttl)}
    with streamlit_process(env) as server, sync_playwright() as pw:
        sampler = RssSampler(server.pid)
        sampler.start()
        memory["cold"] = rss_mib(server.pid)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if not args.no_warmup:
            warm_up(browser, server.url, pages)
            time.sleep(3)
        memory["baseline"] = rss_mib(server.pid)
        sampler.reset()
        for r in range(args.rounds):
            print(f"round {r + 1}: {args.sessions} sessions over {', '.join(pages)}; watching {args.seconds:g} s "
                  "after Play …", flush=True)
            sessions, shared = drive(browser, server.url, pages, args.sessions, args.seconds, args.ready_timeout,
                                     first_seed=101 + 100 * r)
            close(sessions)
            time.sleep(args.after_close)
            memory["after_close"].append(rss_mib(server.pid))
            rounds.append((sessions, shared))
        browser.close()
        memory["peak"] = sampler.peak
        sampler.stop()
        memory["high_water_mark"] = _status(server.pid).get("VmHWM", 0) / 1024  # the kernel's peak, since start
        tracebacks = log_tracebacks(server.log)
    for r, (sessions, shared) in enumerate(rounds):
        if args.rounds > 1:
            print(f"round {r + 1}")
        report(sessions, shared)
    print(f"server RSS (MiB): cold {memory['cold']:.0f}, baseline {memory['baseline']:.0f}, "
          f"peak {memory['peak']:.0f} (kernel high-water mark {memory['high_water_mark']:.0f}), "
          f"{args.after_close:g} s after close " + ", ".join(f"{v:.0f}" for v in memory["after_close"]))
    for t in tracebacks:
        print(f"server log {server.log.name}: Traceback at {t}")
    everyone = [s for sessions, _ in rounds for s in sessions]
    failed = [s for s in everyone if s.errors] or tracebacks
    print(f"{'FAILED' if failed else 'OK'}: {sum(bool(s.errors) for s in everyone)} of {len(everyone)} sessions "
          f"with errors, {len(tracebacks)} server Traceback(s); {time.perf_counter() - t0:.0f} s in all "
          f"(on {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps({"rounds": [{"sessions": [s.summary() for s in sessions],
                                                     "shared_landscape_pictures": shared}
                                                    for sessions, shared in rounds],
                                         "rss_mib": memory, "server_log_tracebacks": tracebacks,
                                         "seconds": args.seconds, "pages": pages}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
