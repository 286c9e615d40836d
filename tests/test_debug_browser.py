"""Real browser on the Debug a sampler page: a small phase map fills in, a click on a square shows its chains, and its
link opens the Langevin page at that square's step size and noise."""

import os
import re

import pytest

from tests.browser import SHOTS, browser_marks, chromium_page, streamlit_server, wait_idle

pytestmark = browser_marks()
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app():
    with streamlit_server() as url:
        yield url


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def test_clicking_a_square_opens_its_setting_on_the_langevin_page(app):
    with chromium_page(1500, 1100) as page:
        page.goto(f"{app}/sampler_debug?model=shortrun-mnist&s_n=3&sigma_n=3&chains=4&steps=60")
        wait_idle(page)
        page.get_by_role("button", name="Draw the map").click()
        page.get_by_text("Click a square to see its chains").wait_for(timeout=120_000)
        wait_idle(page)
        no_exception(page)
        squares = page.locator(".js-plotly-plot .scatterlayer .trace path.point")
        squares.first.wait_for(timeout=30_000)
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "debug-phase-map.png"), full_page=True)
        assert squares.count() >= 9  # 3 × 3 squares, plus the star
        squares.nth(4).click(force=True)  # a square in the middle of its trace
        heading = page.get_by_role("heading", name=re.compile(r"^Square s = "))
        heading.wait_for(timeout=60_000)
        wait_idle(page)
        s, sigma = re.match(r"Square s = ([\d.e+-]+), σ = ([\d.e+-]+)", heading.inner_text()).groups()
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "debug-square.png"), full_page=True)
        page.get_by_text("Open this setting on the Langevin page").click()
        page.wait_for_url(re.compile(r"/langevin\?"), timeout=60_000)
        wait_idle(page)
        page.get_by_text("Step 0 /").wait_for(timeout=90_000)
        no_exception(page)
        step = page.get_by_label("Step size s").input_value()
        noise = page.get_by_label("Noise σ").input_value()
        assert float(step) == pytest.approx(float(s)) and float(noise) == pytest.approx(float(sigma))
        assert "Step 0 / 60" in page.inner_text("body")
