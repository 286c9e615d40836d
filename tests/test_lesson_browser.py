"""The lesson in a real browser: the route clicked through from Home to its last stop, and the animated pages in
presentation mode on a 1280×720 screen (the grid on screen beside its trace, captions ≥ 16 CSS px)."""

import os
import time

import pytest

from ebmviz.app.navigation import ROUTE
from ebmviz.app.presentation import PRESENT_FONT_PX
from tests.browser import CHROMIUM, chromium_page, streamlit_server, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright = pytest.importorskip("playwright.sync_api")
MIN_CAPTION_PX = 16  # the "legible from the back of a room" at 1280×720
# The animated pages whose main picture is a labelled grid drawn at PRESENT_FONT_PX, and whether a chart sits
# beside it: (url path, a chart beside the grid).
GRID_PAGES = [("langevin", True), ("coarse_to_fine", True), ("semantic_texture", False)]


@pytest.fixture(scope="module")
def app_url():
    with streamlit_server() as url:
        yield url


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def test_the_lesson_route_clicks_through_from_home_to_its_last_stop(app_url):
    with chromium_page() as page:
        page.goto(app_url)
        wait_idle(page)
        page.get_by_role("link", name="Start the lesson").click()
        visited = []
        for i, stop in enumerate(ROUTE):
            page.wait_for_url(f"**/{stop.url_path}*", timeout=90_000)
            wait_idle(page)
            no_exception(page)
            page.get_by_role("heading", name="What to notice").wait_for(timeout=120_000)
            visited.append(stop.url_path)
            onward = "Next stop" if i + 1 < len(ROUTE) else "back to Home"
            link = page.get_by_role("link", name=onward)
            assert link.count() == 1, (stop.url_path, page.inner_text("body")[-1500:])
            link.click()
        page.wait_for_url(lambda url: url.rstrip("/") == app_url.rstrip("/") or url.endswith("/home"),
                          timeout=60_000)
        wait_idle(page)
        page.get_by_text("watch energy-based models work").wait_for()
        assert visited == [p.url_path for p in ROUTE]


@pytest.mark.parametrize("path, beside", GRID_PAGES)
def test_presentation_mode_fits_a_projector(app_url, path, beside):
    with chromium_page(1280, 720) as page:
        page.goto(f"{app_url}/{path}?present=1")
        wait_idle(page)
        no_exception(page)
        img = page.locator('[data-testid="stImage"] img').first
        img.wait_for(timeout=90_000)
        time.sleep(1)  # the image's layout settles after it loads
        natural = img.evaluate("i => i.naturalWidth")
        box = img.bounding_box()
        caption_px = PRESENT_FONT_PX * box["width"] / natural
        assert caption_px >= MIN_CAPTION_PX, (path, natural, box)
        assert box["y"] + box["height"] <= 720 + 1, (path, box)  # the whole grid on the first screen
        if beside:
            chart = page.locator('[data-testid="stPlotlyChart"]').first
            chart.wait_for(timeout=60_000)
            cb = chart.bounding_box()
            assert cb["x"] >= box["x"] + box["width"] - 1 and cb["y"] < 720, (path, box, cb)
        assert page.locator('[data-testid="stSidebar"][aria-expanded="true"]').count() == 0  # folded by the link
