"""Real browser on the Training monitor: a tiny trainer in another process writes its log while the page, following
it live, shows the curve growing; a second run overlays the first."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from tests.browser import ROOT, SHOTS, browser_marks, chromium_page, streamlit_process, wait_idle

pytestmark = browser_marks()
playwright = pytest.importorskip("playwright.sync_api")

TRAINER = textwrap.dedent("""
    import math, sys, time
    import torch
    from ebmviz.training_log import EBMLogger
    steps, pause = int(sys.argv[2]), float(sys.argv[3])
    with EBMLogger(sys.argv[1]) as log:
        for step in range(0, steps * 10, 10):
            log.scalars(step, data_mean=-1 - step / 100, sample_mean=1 - step / 300, gap=2 + step / 150,
                        noise_mean=4.0, loss=math.exp(-step / 200), grad_norm=5 * math.exp(-step / 100), lr=1e-3)
            log.negatives(step, torch.rand(8, 1, 28, 28) * 2 - 1)
            log.flush()
            time.sleep(pause)
""")


def shown_step(page) -> int | None:
    text = page.evaluate("() => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
                         ".map(e => e.innerText).find(t => /^Last logged step/.test(t)) || ''")
    m = re.match(r"Last logged step (\d+)", text)
    return int(m.group(1)) if m else None


def points_of_first_curve(page) -> int:
    """The number of points of the energy row's first line, read from the plotly chart on the page."""
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " const t = p && p.data ? p.data.find(t => t.mode === 'lines') : null;"
                         " return t ? (t.x._inputArray || t.x).length : 0 }")  # x: plotly's typed array, decoded


@pytest.fixture()
def runs(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    return folder


def test_the_page_follows_a_run_while_another_process_writes_it(runs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRAINER, str(runs / "earlier"), "12", "0"], env=env, timeout=120)
    assert done.returncode == 0
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, str(runs / "tiny"), "60", "0.5"], env=env)
    try:
        deadline = time.time() + 60
        while not list((runs / "tiny").glob("events.out.tfevents.*")) and time.time() < deadline:
            time.sleep(0.2)
        with streamlit_process({"EBMVIZ_RUNS": str(runs)}, timeout=120) as server, chromium_page(1400, 1300) as page:
            page.goto(f"{server.url}/training_monitor?run=tiny&compare=earlier")
            wait_idle(page)
            page.get_by_text("Last logged step").wait_for(timeout=90_000)
            seen, points, deadline = [], [], time.time() + 60
            while time.time() < deadline and len(set(seen)) < 5:
                if (s := shown_step(page)) is not None:
                    seen.append(s)
                    points.append(points_of_first_curve(page))
                time.sleep(0.3)
            assert len(set(seen)) >= 5 and seen == sorted(seen), seen  # the step on screen grows, live
            assert points[-1] > points[0], points  # and the curve with it
            assert page.locator('[data-testid="stException"]').count() == 0
            body = page.inner_text("body")
            assert "earlier:" in json.dumps(page.evaluate(
                "() => document.querySelector('.js-plotly-plot').data.map(t => t.name)"))  # the overlaid run
            assert "The negatives over training" in body
            if SHOTS:
                page.screenshot(path=os.path.join(SHOTS, "monitor-live.png"), full_page=True)
    finally:
        trainer.kill()
        trainer.wait()
