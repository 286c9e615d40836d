"""Offline: every page renders in Chromium while every request to a host other than this machine is refused.

The app is shown in lecture halls without internet. Streamlit's own fonts (Source Sans, the Material icons, KaTeX)
and plotly.js are served by the app's server; what else a page asks for from outside (a ``:material/…:`` favicon
comes from fonts.gstatic.com, an ``<img>`` URL in markdown, plotly's topojson) would be missing there. Here each
such request is aborted and listed, and each page must still draw its title without an exception.
"""

import os
import time
from urllib.parse import urlparse

import pytest

from ebmviz.app.navigation import PAGES
from tests.browser import CHROMIUM, chromium_page, streamlit_server, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright = pytest.importorskip("playwright.sync_api")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
BUSY = ('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-testid="stSpinner"], '
        '[data-stale="true"]')
MAIN = '[data-testid="stMain"]'
TITLE = f"{MAIN} h1"
TIMEOUT_MS = 180_000  # a page's first load computes its cached results (two shared cores)


def outside(url: str) -> bool:
    """Whether a request leaves this machine (data: and blob: URLs never do)."""
    return not url.startswith(("data:", "blob:", "about:")) and urlparse(url).hostname not in LOCAL_HOSTS


class Guard:
    """Aborts every outside request of a browser context and records it with the page being opened."""

    def __init__(self, context):
        self.current = ""
        self.attempts: list[tuple[str, str]] = []  # (page, url)
        context.route(outside, self._abort)
        context.route_web_socket(outside, self._close)

    def _record(self, url: str) -> None:
        if (self.current, url) not in self.attempts:
            self.attempts.append((self.current, url))

    def _abort(self, route) -> None:
        self._record(route.request.url)
        route.abort("internetdisconnected")

    def _close(self, ws) -> None:
        self._record(ws.url)
        ws.close()


@pytest.fixture(scope="module")
def app_url():
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def offline_page():
    with chromium_page() as page:
        yield page, Guard(page.context)


def rendered(page) -> None:
    """Wait until the page's script has drawn something and no run or loading placeholder remains (twice, 1 s
    apart); then its title must be visible."""
    page.locator(f'{MAIN} [data-testid="stElementContainer"]').first.wait_for(timeout=TIMEOUT_MS)
    for _ in range(2):
        wait_idle(page, TIMEOUT_MS)
        page.wait_for_function(f"() => !document.querySelector('{BUSY}')", timeout=TIMEOUT_MS)
        time.sleep(1.0)


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_offline(app_url, offline_page, info):
    page, guard = offline_page
    guard.current = info.url_path
    path = "" if info is PAGES[0] else info.url_path  # the first page is the default one, at the root
    page.goto(f"{app_url}/{path}")
    rendered(page)
    problems = [f"asked a host outside this machine for {url}" for where, url in guard.attempts
                if where == info.url_path]
    active = page.locator('[data-testid="stSidebarNavLink"][aria-current="page"]').all_inner_texts()
    if [t.splitlines()[-1] for t in active] != [info.title]:
        problems.append(f"/{path} opened {active} instead of {info.title!r}")
    title = page.locator(TITLE)
    if not (title.count() and title.first.is_visible() and title.first.inner_text().strip()):
        problems.append(f"no title shown; the page reads:\n{page.locator(MAIN).inner_text()[:1000]}")
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        problems.append(f"exception shown:\n{errors.first.inner_text()[:2000]}")
    assert not problems, f"{info.url_path}:\n" + "\n".join(problems)
