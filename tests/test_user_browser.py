"""Real browser on the user's own model: ``python -m ebmviz run --model … --data …`` (the way a user starts it) and
Debian's Chromium on the Langevin and Anomaly pages of the 3×32×32 RGB fixture."""

import os
import time

import pytest

from tests.browser import CHROMIUM, chromium_page, step_shown, streamlit_process, wait_idle
from tests.user_models import RGB

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("EBMVIZ_SHOTS")  # a folder: keep the screenshots there (the README's and the note's)


@pytest.fixture(scope="module")
def user_app():
    args = ["--model", RGB.target, "--weights", RGB.weights, "--data", RGB.data, "--name", RGB.label]
    with streamlit_process(ebmviz_run=args, timeout=120) as server:
        yield server.url


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def shoot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def test_rgb_chains_play_live_with_traces_and_diagnostics(user_app):
    with chromium_page() as page:
        page.goto(f"{user_app}/langevin?model={RGB.label}")
        wait_idle(page)
        page.get_by_text("Step 0 /").wait_for(timeout=90_000)
        assert "32×32 RGB images" in page.inner_text("body")
        page.get_by_role("button", name="Play").click()
        seen, deadline = [], time.time() + 90
        while time.time() < deadline and len(set(seen)) < 5:
            if (s := step_shown(page)) is not None:
                seen.append(s)
            time.sleep(0.2)
        assert len(set(seen)) >= 5 and max(seen) > 0, seen  # frames advance while playing
        shoot(page, "user-langevin-playing")
        page.get_by_role("button", name="Pause").click()
        wait_idle(page)
        page.get_by_text("R-hat of the energy").wait_for(timeout=60_000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "ESS of the energy" in body and "R-hat of the energy" in body
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # the traces and the map (and the ACF)
        assert "evaluator reads 28×28 grey digits only" in body
        no_exception(page)
        page.locator('[data-testid="stMain"]').evaluate("e => e.scrollTo(0, 0)")
        shoot(page, "user-langevin-paused")


def test_anomaly_page_scores_the_rgb_model_on_its_own_images(user_app):
    with chromium_page() as page:
        page.goto(f"{user_app}/anomaly?view=One+model&model={RGB.label}")
        wait_idle(page)
        page.get_by_text("Computed live on this machine").wait_for(timeout=120_000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "uniform noise" in body and "of your images" in body
        # the score histograms and the ROC curves (drawn after the text above reaches the page)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
        no_exception(page)
        shoot(page, "user-anomaly")
