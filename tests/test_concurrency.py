"""Several users at once on one server: a long run in one session does not stall another session's page, and
sessions with different seeds each see their own frames (``benchmarks/load.py`` at 3 sessions; run it for 8)."""

import os
import time

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, step_shown, streamlit_process, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright = pytest.importorskip("playwright.sync_api")

from tests.sessions import close, drive, log_tracebacks  # noqa: E402  (needs playwright only when run)

STALL_LIMIT_S = 15.0  # generous: CI machines are noisy; measured times are printed
LONG_STEPS = 16_000  # near the form's 20,000: more steps record every ceil(K / 1,000)th, which the page's
#                      "Steps per animation frame" slider cannot show unless it is a power of two


@pytest.fixture(scope="module")
def server():
    (ROOT / "runs").mkdir(exist_ok=True)  # (ignored by git) where the server's log goes: the tests read it
    with streamlit_process() as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def log_size(server) -> int:
    return len(server.log.read_text(errors="replace")) if server.log and server.log.exists() else 0


def open_langevin(browser, url: str, query: str, steps: int):
    """A new session (its own browser context) on the Langevin page; returns it and the seconds until its
    first frame ("Step 0 / steps" and the picture) was on show."""
    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    t = time.perf_counter()
    tab.goto(f"{url}/langevin?{query}")
    tab.get_by_text(f"Step 0 / {steps}").first.wait_for(timeout=120_000)
    tab.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.wait_for(timeout=60_000)
    return tab, time.perf_counter() - t


def wait_step(tab, above: int, timeout: float = 60.0) -> tuple[int, float]:
    """Wait until the step counter passes ``above``; returns the step and the seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        step = step_shown(tab)
        if step is not None and step > above:
            return step, time.perf_counter() - t
        tab.wait_for_timeout(100)
    raise AssertionError(f"the step counter stayed at or below {above} for {timeout:.0f} s")


def no_exception(tab):
    assert tab.locator('[data-testid="stException"]').count() == 0, tab.inner_text("body")[:2000]


def test_a_long_run_does_not_stall_another_session(server, browser):
    since = log_size(server)
    warm, _ = open_langevin(browser, server.url, "seed=2", 512)  # the model and the data loaded once
    wait_idle(warm)
    warm.context.close()
    alone, t_alone = open_langevin(browser, server.url, "seed=3", 512)
    wait_idle(alone)
    alone.context.close()

    # session A: a long run, 64 chains (the most) × 16,000 steps (recorded every 16th: 1,000 frames), playing
    a, _ = open_langevin(browser, server.url, f"seed=1&chains=64&steps={LONG_STEPS}", LONG_STEPS)
    try:
        wait_idle(a)
        a.get_by_role("button", name="Play").click()
        a_step, _ = wait_step(a, 0)
        # session B opens the same page meanwhile, then plays
        b, t_busy = open_langevin(browser, server.url, "seed=4", 512)
        try:
            t = time.perf_counter()
            wait_idle(b)
            t_rest = time.perf_counter() - t
            b.get_by_role("button", name="Play").click()
            _, t_first = wait_step(b, 0)
            a_after, _ = wait_step(a, a_step)  # A kept going all along
            print(f"\nsession B's first frame: {t_alone:.2f} s alone, {t_busy:.2f} s while A ran 64 chains × "
                  f"{LONG_STEPS:,} steps (the rest of B's page {t_rest:.2f} s later); B's first new frame "
                  f"after Play {t_first:.2f} s; A went from step {a_step} to {a_after} meanwhile")
            limit = max(STALL_LIMIT_S, 3 * t_alone + 5)  # a slow machine is slow for B alone too
            assert t_busy < limit and t_first < limit
            no_exception(a)
            no_exception(b)
        finally:
            b.context.close()
    finally:
        a.context.close()
    assert not log_tracebacks(server.log, since)


def test_sessions_with_different_seeds_see_their_own_frames(server, browser):
    """Three sessions at once (Langevin seeds 101 and 103, the sampler lab seed 102) press Play: no errors, frames
    in each, and the two Langevin sessions never show the same picture."""
    since = log_size(server)
    sessions, _ = drive(browser, server.url, ["langevin", "sampler_lab"], 3, seconds=8, ready_timeout=120)
    try:
        for s in sessions:
            print(f"\n{s.name} seed {s.seed}: ready {s.ready_s or float('nan'):.1f} s, {len(s.frames)} frames, "
                  f"{s.fps:.1f} fps, {s.last_status}")
        assert not [(s.name, s.errors) for s in sessions if s.errors]
        assert all(len(s.frames) >= 2 for s in sessions), [len(s.frames) for s in sessions]
        assert not sessions[0].keys & sessions[2].keys  # (also one of drive's checks)
    finally:
        close(sessions)
    assert not log_tracebacks(server.log, since)
