"""Pages in a real browser: seconds from pressing Play to the first new frame, and frames/s.

Starts `streamlit run app.py` on 127.0.0.1 and opens, in Debian's Chromium, with default settings
(16 chains, the checkpoint's sampler):
- /langevin: presses Play and watches the "Step N / K" counter until the run ends; ``--page langevin_user`` the
  same on the 3×32×32 user model of tests/fixtures (``ebmviz run --model``'s way in);
- /coarse_to_fine (``--page coarse_to_fine``): presses Play and watches the "Stage s · … step k"
  status through the whole 7 → 14 → 28 cascade;
- /semantic_texture (``--page semantic_texture``): presses Play and watches the "Semantic stage · latent
  step t" / "Texture stage · pixel step t" status from the first latent step to the last pixel step;
- /sampler_lab (``--page sampler_lab``): at its defaults (500 particles, ULA beside MALA on the 8-Gaussian
  mixture, 300 steps, 4 per frame) presses Play and watches the "Step N / 300" counter until the run ends.
- /learning_dynamics (``--page learning_dynamics``): "Train live" with each flow on the 5 digits for 100
  iterations: presses Play and watches the "N iterations logged" caption under the live curve; its first
  appearance is when the first curve points are on show.
- ``--page open``: seconds from navigating to /model_zoo and to /anomaly (a server already started and its Home page
  shown once) until the page's stored table is on show (the caption under it); three
  fresh browser sessions each, with the Home page timed the same way for scale.
A frame is a distinct status value; its time is when it first reached the page's DOM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import chromium_page, streamlit_server, wait_idle  # noqa: E402
from tests.user_models import RGB  # noqa: E402

# A MutationObserver inside the page stamps the first time each status text appears, with
# performance.now(). Reading textContent forces no layout, so the probe costs the page almost
# nothing. Polling innerText from Playwright every 10 ms did: on 2 cores it competed with the server.
WATCH = """([pattern]) => {
  const re = new RegExp(pattern), seen = window.__seen = {};
  const scan = () => {
    for (const e of document.querySelectorAll(
        '[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"]')) {
      const m = re.exec(e.textContent);
      if (m && !(m[0] in seen)) seen[m[0]] = performance.now();
    }
  };
  new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, characterData: true});
  scan();
  return performance.now();
}"""


def watch_play(page, pattern: str, done: str, what: str) -> None:
    """Press Play and report when each new status text matching ``pattern`` first appeared."""
    page.evaluate(WATCH, [pattern])
    first = set(page.evaluate("() => Object.keys(window.__seen)"))
    t0 = page.evaluate("() => performance.now()")
    page.get_by_role("button", name="Play").click()
    try:
        page.wait_for_function("([d]) => Object.keys(window.__seen).some(k => new RegExp(d).test(k))",
                               arg=[done], timeout=120_000, polling=250)
    except PlaywrightTimeout:
        print("the last frame did not appear within 120 s; the frames seen until then:")
    seen = page.evaluate("() => window.__seen")
    report({k: (t - t0) / 1000 for k, t in seen.items() if k not in first}, what)


def play_page(path: str, ready: str, status: str, done: str, what: str) -> None:
    """Open ``path`` in a fresh server and browser, wait for the text ``ready``, press Play and watch the status
    (regex ``status``) until ``done``."""
    with streamlit_server() as url, chromium_page() as page:
        page.goto(f"{url}/{path}")
        wait_idle(page)
        page.get_by_text(ready).wait_for(timeout=90_000)
        time.sleep(1.0)
        watch_play(page, status, done, what)


def coarse_to_fine() -> None:
    play_page("coarse_to_fine", "Stage 0 · 7×7 · step 0", r"Stage \d · \d+×\d+ · [^·]+",
              r"Stage 2 · 28×28 · step (\d+) / \1\b", "16 chains, full cascade")


def semantic_texture() -> None:
    play_page("semantic_texture", "latent step 0 /", r"(Semantic|Texture) stage · (latent|pixel) step \d+ / \d+",
              r"Texture stage · pixel step (\d+) / \1\b", "16 chains, both stages")


def report(seen: dict, what: str) -> None:
    if not seen:
        print("no frame appeared within 120 s")
        return
    times = sorted(seen.values())
    span = times[-1] - times[0]
    fps = (len(times) - 1) / span if span > 0 else float("nan")
    print(f"{what}: {len(times)} frames shown")
    print(f"first frame after Play: {times[0]:.2f} s")
    print(f"frames per second while playing: {fps:.1f}")


def step_counter_page(path: str, what: str, env: dict | None = None) -> None:
    """A page whose status starts "Step N / K": press Play and watch the counter until step K."""
    with streamlit_server(env) as url, chromium_page() as page:
        page.goto(f"{url}/{path}")
        wait_idle(page)
        page.get_by_text("Step 0 /").wait_for(timeout=90_000)
        # Play on a page that has finished drawing: a click while its first run still draws the map, the
        # diagnostics and the export below waits for that run (0.4-2.5 s measured with a 1 s pause here)
        time.sleep(3.0)
        wait_idle(page)
        total = int(page.get_by_text("Step 0 /").inner_text().split("/")[1].split()[0])
        watch_play(page, r"^Step \d+ / \d+", rf"^Step {total} / {total}", f"{what}, {total} steps")


def langevin_page() -> None:
    step_counter_page("langevin", "16 chains")


def langevin_user() -> None:
    """The Langevin page on the 3×32×32 user model of tests/fixtures, offered as ``ebmviz run --model`` does."""
    env = {"EBMVIZ_USER_MODELS": json.dumps([RGB.to_dict()])}
    step_counter_page(f"langevin?model={RGB.label}", "16 chains of the 3×32×32 user model, the teaching pace", env)
    step_counter_page(f"langevin?model={RGB.label}&pace=0.07", "the same at the page's fastest pace (0.07 s)", env)


def sampler_lab() -> None:
    step_counter_page("sampler_lab", "500 particles × 2 samplers")


def learning_dynamics() -> None:
    for flow in ("kl", "jko"):
        play_page(f"learning_dynamics?view=Train+live&live_flow={flow}&live_digits=5&live_iterations=100",
                  "0 iterations logged", r"^[\d,]+ iterations logged", r"^100 iterations logged",
                  f"train live, {flow.upper()} flow, 5 digits, 100 iterations (a frame: new curve points)")


def page_open() -> None:
    checks = {"": "watch energy-based models work", "model_zoo": "Last scoring run", "anomaly": "Red: below 0.85"}
    with streamlit_server() as url, chromium_page() as page:
        page.goto(url)
        wait_idle(page)
        for path, text in checks.items():
            times = []
            for _ in range(3):
                context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
                tab = context.new_page()  # a new session each time: nothing cached in the browser
                t = time.perf_counter()
                tab.goto(f"{url}/{path}")
                tab.get_by_text(text).first.wait_for(timeout=120_000)
                times.append(time.perf_counter() - t)
                context.close()
            print(f"/{path}: open to '{text}' in " + ", ".join(f"{s:.2f}" for s in times) + " s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    pages = {"langevin": langevin_page, "langevin_user": langevin_user, "coarse_to_fine": coarse_to_fine,
             "semantic_texture": semantic_texture,
             "sampler_lab": sampler_lab, "learning_dynamics": learning_dynamics, "open": page_open}
    ap.add_argument("--page", choices=list(pages), default="langevin")
    pages[ap.parse_args().page]()
