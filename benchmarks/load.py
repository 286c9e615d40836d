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
A MutationObserver inside each page stamps every first appearance, so polling does not load the page
(the sessions' code is ``tests/sessions.py``, shared with ``tests/test_concurrency.py``).

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

Scaling (``--scaling 1,4,8,16``): for each N, N Langevin sessions at once at the page's defaults but ``--steps``
(2,048) steps, all pressing Play; steps/s per session from the page's "Step N / K" counter and frames/s, their total,
errors, the server's RSS, and a bare batched loop at the total batch in this process after they close, with a probe
inside the server saying where the time goes (``benchmarks/session_scaling.py`` describes it all):

    .venv/bin/python benchmarks/load.py --scaling 1,4,8,16 --seconds 20 --json scaling.json

Exits 1 when any session had an error or saw no frame, or the server logged a Traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_process  # noqa: E402
from tests.sessions import PAGES, Session, close, drive, log_tracebacks, open_sessions, wait_ready  # noqa: E402

SCALING_PAGE = "langevin"


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


def browsers_cpu_s() -> float:
    """CPU seconds (user + system) used so far by the Chromium processes this benchmark started and that are alive
    now (its browser, renderers and helpers), from /proc."""
    from benchmarks.session_scaling import process_cpu_s

    total = 0.0
    for p in _tree(os.getpid()):
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().startswith("chrom"):
                    total += process_cpu_s(p)
        except OSError:
            pass
    return total


@contextlib.contextmanager
def browsers_watched(window, out: dict):
    """``window()`` (the probe's watch), and the browsers' CPU over it in cores into ``out["browser_cpu_cores"]``."""
    cpu, t = browsers_cpu_s(), time.perf_counter()
    with window():
        yield
    out["browser_cpu_cores"] = (browsers_cpu_s() - cpu) / (time.perf_counter() - t)


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


def open_browser(server, pw, pages: list[str], warmup: bool, nice: int = 0):
    """Start sampling the server's RSS, launch Chromium (at ``nice``, all its processes) and (``warmup``) open one
    session per page until its first frame; returns (the RSS sampler, the browser, {"cold": RSS before, "baseline":
    RSS after the warm-up})."""
    sampler = RssSampler(server.pid)
    sampler.start()
    memory = {"cold": rss_mib(server.pid)}
    browser = pw.chromium.launch(executable_path=niced(CHROMIUM, nice) if nice else CHROMIUM, args=CHROMIUM_ARGS)
    if warmup:
        warm_up(browser, server.url, pages)
        time.sleep(3)
    memory["baseline"] = rss_mib(server.pid)
    return sampler, browser, memory


def niced(program: str, nice: int) -> str:
    """A script that runs ``program`` with its arguments at niceness ``nice`` (every process it starts inherits it).
    Where the kernel groups each session's processes (``/proc/sys/kernel/sched_autogroup_enabled``), a process's
    niceness weighs only within its group and the groups share the CPUs evenly; Playwright starts Chromium in a
    session of its own, so the script also sets that group's niceness (``/proc/self/autogroup``; where that cannot
    be written, as without root, the browsers share the CPUs evenly with the server whatever ``nice`` says)."""
    path = Path(tempfile.gettempdir()) / f"ebmviz-nice{nice}-{Path(program).name}"
    path.write_text(f'#!/bin/sh\necho {int(nice)} > /proc/self/autogroup 2>/dev/null\n'
                    f'exec nice -n {int(nice)} {program} "$@"\n')
    path.chmod(0o755)
    return str(path)


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


def scaling(args, counts: list[int]) -> int:
    """``--scaling``: each N of ``counts`` in turn on one server, then the bare loop; prints and writes the table."""
    from playwright.sync_api import sync_playwright

    from benchmarks.session_scaling import CHAINS, ServerProbe, bare_beside, bare_model, report, summarise

    model, config, threads = bare_model(args.model)
    (ROOT / "runs").mkdir(exist_ok=True)  # (ignored by git) the server's log and the probe's readings
    probe = ServerProbe(ROOT / "runs" / f"probe-{os.getpid()}.json")
    env = probe.env(args.profile_hz, args.switch_interval) | ({} if args.session_ttl is None else
                         {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.session_ttl)})
    query = {"model": args.model, "chains": str(CHAINS), "steps": str(args.steps)}
    memory: dict = {"per_n": {}}
    rows, t0 = [], time.perf_counter()
    with streamlit_process(env) as server, sync_playwright() as pw:
        sampler, browser, started = open_browser(server, pw, [SCALING_PAGE], not args.no_warmup, args.browser_nice)
        memory |= started
        for r, n in enumerate(counts):
            print(f"N = {n}: {n} Langevin session(s), {args.steps} steps, watching {args.seconds:g} s after Play …",
                  flush=True)
            log_at = len(server.log.read_text(errors="replace")) if server.log and server.log.exists() else 0
            sampler.reset()
            browsers: dict = {}
            sessions, _ = drive(browser, server.url, [SCALING_PAGE], n, args.seconds, args.ready_timeout,
                                first_seed=101 + 100 * r, query=query,
                                window=functools.partial(browsers_watched, probe.window, browsers))
            close(sessions)
            time.sleep(args.after_close)
            memory["per_n"][n] = {"peak": sampler.peak, "after_close": rss_mib(server.pid)}
            tracebacks = log_tracebacks(server.log, since=log_at)
            for s in sessions:
                if s.steps_per_s == 0 and not s.errors:
                    s.errors.append("fewer than two step counter readings after Play")
            row = summarise(n, sessions, sum(bool(s.errors) for s in sessions) + len(tracebacks),
                            bare_beside(server.pid, model, n * CHAINS, config, args.bare_seconds), probe.last)
            row["tracebacks"] = tracebacks
            row["browser_cpu_cores"] = browsers.get("browser_cpu_cores", float("nan"))
            rows.append(row)
            for s in sessions:
                if s.errors:
                    print(f"  session {s.name} (seed {s.seed}): {'; '.join(s.errors)}")
            for t in tracebacks:
                print(f"  server log {server.log.name}: Traceback at {t}")
        browser.close()
        sampler.stop()
        memory["high_water_mark"] = _status(server.pid).get("VmHWM", 0) / 1024
    verdict = report(rows, threads)
    print(f"server RSS (MiB): cold {memory['cold']:.0f}, baseline {memory['baseline']:.0f}; per N peak / "
          f"{args.after_close:g} s after close: " + ", ".join(f"N={n} {m['peak']:.0f} / {m['after_close']:.0f}"
                                                             for n, m in memory["per_n"].items())
          + f" (kernel high-water mark {memory['high_water_mark']:.0f})")
    failed = sum(r["errors"] for r in rows)
    print(f"{'FAILED' if failed else 'OK'}: {failed} error(s); {time.perf_counter() - t0:.0f} s in all "
          f"(on {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps({"scaling": rows, "targets": verdict, "rss_mib": memory,
                                         "seconds": args.seconds, "steps": args.steps, "model": args.model,
                                         "chains": CHAINS, "torch_threads": threads, "cpus": os.cpu_count(),
                                         "switch_interval": args.switch_interval, "browser_nice": args.browser_nice},
                                        indent=1))
    return 1 if failed else 0


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
    ap.add_argument("--scaling", help="comma-separated session counts, e.g. 1,4,8,16: Langevin sessions only, each "
                                      "count in turn, against a bare batched loop (see above)")
    ap.add_argument("--steps", type=int, default=2048, help="--scaling: the Langevin page's steps K")
    ap.add_argument("--model", default="shortrun-mnist", help="--scaling: the Langevin page's model")
    ap.add_argument("--bare-seconds", type=float, default=6.0, help="--scaling: time for each bare loop measurement")
    ap.add_argument("--profile-hz", type=float, default=0.0,
                    help="--scaling: sample the server's thread stacks this often per second (e.g. 50) and print where "
                         "its threads are (costs the server a little CPU: measure the table without it)")
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="--scaling: run Chromium at this niceness (e.g. 19): the browsers stand for the students' own "
                         "machines, so that on one small machine they take only the CPU the server leaves")
    ap.add_argument("--switch-interval", type=float,
                    help="--scaling, an experiment: the server's sys.setswitchinterval in seconds (Python's default "
                         "0.005), e.g. 0.0005 to see how much the shared loop waits for the interpreter lock")
    args = ap.parse_args()
    if args.scaling is not None:
        try:
            counts = [int(v) for v in args.scaling.split(",") if v.strip()]
        except ValueError:
            ap.error(f"--scaling takes comma-separated whole numbers, e.g. 1,4,8,16; got {args.scaling!r}")
        if not counts or min(counts) < 1:
            ap.error("--scaling needs session counts of at least 1")
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    if unknown := set(pages) - set(PAGES):
        ap.error(f"unknown page(s) {', '.join(sorted(unknown))}; choose from {', '.join(PAGES)}")
    if not os.path.exists(CHROMIUM):
        ap.error(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if args.scaling is not None:
        return scaling(args, counts)

    from playwright.sync_api import sync_playwright

    memory: dict = {"after_close": []}
    t0 = time.perf_counter()
    rounds = []
    (ROOT / "runs").mkdir(exist_ok=True)  # (ignored by git) the server's log, read for Tracebacks
    env = {} if args.session_ttl is None else {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.session_ttl)}
    with streamlit_process(env) as server, sync_playwright() as pw:
        sampler, browser, started = open_browser(server, pw, pages, not args.no_warmup)
        memory |= started
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
