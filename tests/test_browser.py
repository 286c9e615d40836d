"""Real browser: Playwright drives Debian's Chromium against ``streamlit run`` on 127.0.0.1."""

import io
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

from ebmviz.app.navigation import PAGES
from ebmviz.landscape import load_map
from tests.browser import CHROMIUM, chromium_page, step_shown, streamlit_server, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app_url():
    with streamlit_server() as url:
        yield url


@pytest.fixture
def page():
    with chromium_page() as p:
        yield p


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def test_every_page_renders(app_url, page):
    page.goto(app_url)
    wait_idle(page)
    page.get_by_text("watch energy-based models work").wait_for()
    no_exception(page)
    links = page.locator('[data-testid="stSidebarNavLink"]')
    assert links.count() == len(PAGES)
    for i in range(links.count()):
        links.nth(i).click()
        wait_idle(page)
        no_exception(page)


def test_play_advances_frames(app_url, page):
    page.goto(f"{app_url}/langevin")
    wait_idle(page)
    page.get_by_text("Step 0 /").wait_for(timeout=60_000)
    page.get_by_role("button", name="Play").click()
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline and len(set(seen)) < 4:
        s = step_shown(page)
        if s is not None:
            seen.append(s)
        time.sleep(0.2)
    steps = sorted(set(seen))
    assert len(steps) >= 4 and steps[-1] > 0, seen  # several distinct frames appeared while playing
    no_exception(page)


def _png(mode, size, value):
    buf = io.BytesIO()
    Image.fromarray(np.full(size[::-1] + ((4,) if mode == "RGBA" else ()), value, np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def test_upload_wrong_size_and_junk(app_url, page, tmp_path):
    page.goto(f"{app_url}/langevin")
    wait_idle(page)
    page.get_by_text("an uploaded image").click()
    wait_idle(page)
    big = tmp_path / "digit.png"
    big.write_bytes(_png("RGBA", (64, 40), 200))
    page.locator('input[type="file"]').set_input_files(str(big))
    page.get_by_text("resized from 64×40 to 28×28").wait_for(timeout=30_000)
    page.get_by_text("Step 0 /").wait_for(timeout=30_000)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    page.locator('input[type="file"]').set_input_files(str(junk))
    page.get_by_text("Cannot use this file").wait_for(timeout=30_000)
    no_exception(page)
    page.get_by_text("uniform noise").first.click()  # the page keeps working afterwards
    wait_idle(page)
    page.get_by_text("Step 0 /").wait_for(timeout=30_000)
    no_exception(page)


def test_cascade_plays_through_the_stages(app_url, page):
    page.goto(f"{app_url}/coarse_to_fine")
    wait_idle(page)
    page.get_by_text("Stage 0 · 7×7 · step 0").wait_for(timeout=90_000)
    page.get_by_role("button", name="Play").click()
    seen, deadline = set(), time.time() + 90
    while time.time() < deadline and not {"Stage 1", "Stage 2"} <= seen:
        body = page.inner_text("body")
        seen |= {s for s in ("Stage 0", "Stage 1", "Stage 2") if s + " ·" in body}
        time.sleep(0.1)
    assert {"Stage 1", "Stage 2"} <= seen, seen  # the timeline played through the hand-offs
    no_exception(page)


def test_ebgan_views_in_the_browser(app_url, page):
    page.goto(f"{app_url}/ebgan")
    wait_idle(page)
    page.get_by_text("evaluator's digit and confidence").wait_for(timeout=60_000)
    page.locator('[data-testid="stImage"] img').nth(1).wait_for(timeout=60_000)  # the generator over training
    for view, shown in (("What D learned", "Share of noise images"), ("With vs without PT", "closest pairs"),
                        ("Langevin on D", "From uniform noise")):
        page.get_by_text(view, exact=True).first.click()
        wait_idle(page)
        page.get_by_text(shown).first.wait_for(timeout=120_000)
        no_exception(page)


def test_triangle_generator_view_draws_both_priors(app_url, page):
    page.goto(f"{app_url}/triangle")
    wait_idle(page)
    page.get_by_text("Generator", exact=True).first.click()
    wait_idle(page)
    page.get_by_text("the learned prior (K =").first.wait_for(timeout=120_000)
    # both priors' samples and the components' means: the third image arrives after the caption above
    page.get_by_text("each component's mean code").first.wait_for(timeout=120_000)
    page.locator('[data-testid="stImage"] img').nth(2).wait_for(timeout=60_000)
    no_exception(page)
    chart = page.locator('[data-testid="stPlotlyChart"]')
    chart.first.wait_for(timeout=60_000)
    assert "p_ψ draws" in chart.first.inner_text()  # the legend of the codes' densities
    page.get_by_text("Refinement", exact=True).first.click()
    wait_idle(page)
    page.get_by_text("z from p_ψ").first.wait_for(timeout=120_000)
    no_exception(page)


def test_picking_another_model_shows_its_sampler_defaults(app_url, page):
    """The browser, not only the server, shows the new model's settings (AppTest cannot see the difference)."""
    from ebmviz import checkpoints

    shipped = checkpoints.read_meta(checkpoints.resolve("ebgan-mnist"))["sampler"]
    page.goto(f"{app_url}/langevin")
    wait_idle(page)
    page.get_by_text("Step 0 /").wait_for(timeout=60_000)
    page.get_by_role("combobox", name="Energy model").click()
    page.get_by_role("option", name="ebgan-mnist", exact=True).click()
    wait_idle(page)
    page.get_by_text(f"Step 0 / {shipped['n_steps']}").wait_for(timeout=60_000)
    assert int(page.get_by_label("Steps K").input_value()) == shipped["n_steps"]
    assert float(page.get_by_label("Step size s").input_value()) == shipped["step_size"]
    no_exception(page)


def test_semantic_texture_plays_both_stages(app_url, page):
    page.goto(f"{app_url}/semantic_texture")
    wait_idle(page)
    page.get_by_text("latent step 0 /").first.wait_for(timeout=90_000)
    page.get_by_role("button", name="Play").click()
    seen, deadline = set(), time.time() + 90
    while time.time() < deadline and "Texture stage" not in seen:
        body = page.inner_text("body")
        if "latent step 0 /" not in body:  # a frame after the first is on show
            seen |= {stage for stage in ("Semantic stage", "Texture stage") if f"{stage} · " in body}
        time.sleep(0.1)
    assert seen == {"Semantic stage", "Texture stage"}, seen  # played from the latent steps into the pixel steps
    no_exception(page)
    page.get_by_text("Out of distribution", exact=True).first.click()
    wait_idle(page)
    page.get_by_text("as the score, as in the paper").first.wait_for(timeout=120_000)
    no_exception(page)


def basins_shown(page) -> int:
    import re

    m = re.search(r"(\d+) basins at", page.inner_text("body"))
    assert m, page.inner_text("body")[:1500]
    return int(m.group(1))


def test_landscape_threshold_two_minima_and_bad_uploads(app_url, page, tmp_path):
    page.goto(f"{app_url}/landscape")
    wait_idle(page)
    page.get_by_text("basins at").first.wait_for(timeout=90_000)
    no_exception(page)
    first = basins_shown(page)
    assert first >= 10
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("End")  # the highest level: one basin holds every minimum
    wait_idle(page)
    page.get_by_text("1 basins at").first.wait_for(timeout=30_000)
    # select two minima by clicking two leaves of the disconnectivity graph
    leaves = page.locator('[data-testid="stPlotlyChart"]').first.locator("path.point")
    assert leaves.count() >= load_map("ebgan-mnist-latent").n_minima  # a leaf per minimum of the page's default map
    picked = page.locator('[data-testid="stNumberInput"] input')
    before = [picked.nth(i).input_value() for i in range(picked.count())]
    for k in (7, 120):
        page.locator('[data-testid="stPlotlyChart"]').first.locator("path.point").nth(k).click(force=True)
        wait_idle(page)
        time.sleep(0.5)
    after = [picked.nth(i).input_value() for i in range(picked.count())]
    assert after[-2:] != before[-2:] and after[-2] != after[-1], (before, after)  # Minimum A and B changed
    page.get_by_text("straight segment, A → B").first.wait_for(timeout=60_000)
    page.get_by_text("graph joins A and B at").first.wait_for(timeout=10_000)
    no_exception(page)
    # a digit of one's own: junk bytes are a message, a blank picture descends with a warning
    page.get_by_text("Your digit", exact=True).first.click()
    wait_idle(page)
    page.get_by_text("upload a picture", exact=True).click()
    wait_idle(page)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image at all")
    page.locator('input[type="file"]').set_input_files(str(junk))
    page.get_by_text("Cannot use this file").first.wait_for(timeout=30_000)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(blank)
    page.locator('input[type="file"]').set_input_files(str(blank))
    page.get_by_text("not sure this is a digit").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^It (reaches|stops)")).first.wait_for(timeout=120_000)  # what became of it
    no_exception(page)


def frame_bytes(page) -> bytes:
    """The bytes of the first image on the page (the lab's frame), fetched from the server as the browser does."""
    src = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
    return page.request.get(src if src.startswith("http") else page.url.split("/sampler_lab")[0] + src).body()


def test_sampler_lab_link_opens_the_same_view_and_frames_in_a_fresh_browser(app_url, page, tmp_path):
    page.goto(f"{app_url}/sampler_lab")
    wait_idle(page)
    page.get_by_text("Step 0 / 300").wait_for(timeout=60_000)
    box = page.get_by_label("Step size s").first
    box.fill("0.2")
    box.press("Enter")
    page.wait_for_url("**a_step=0.2**", timeout=30_000)  # the rerun has drawn the new setting and written the link
    wait_idle(page)
    for k in (4, 8, 12):
        page.get_by_role("button", name="Step").click()
        page.get_by_text(f"Step {k} / 300").wait_for(timeout=30_000)
        wait_idle(page)
    link = page.url
    assert "a_step=0.2" in link and "frame=3" in link and "energy=mix8" in link
    shown = frame_bytes(page)
    no_exception(page)

    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})  # nothing shared but the link
    try:
        fresh = context.new_page()
        fresh.goto(link)
        wait_idle(fresh)
        fresh.get_by_text("Step 12 / 300").wait_for(timeout=60_000)
        wait_idle(fresh)
        step_box = fresh.get_by_label("Step size s").first
        deadline = time.time() + 15
        while step_box.input_value() != "0.2" and time.time() < deadline:  # the input can settle after the frame
            time.sleep(0.2)
        assert step_box.input_value() == "0.2"
        assert frame_bytes(fresh) == shown
        no_exception(fresh)
    finally:
        context.close()

    # the trajectory export holds both samplers' arrays, readable without pickle
    page.get_by_text("Export").click()
    wait_idle(page)  # the expander's rerun is over before the click that asks for the file
    with page.expect_download(timeout=90_000) as dl:
        page.get_by_role("button", name="Trajectory arrays (NPZ)").click()
    path = tmp_path / "lab.npz"
    dl.value.save_as(path)
    with np.load(path, allow_pickle=False) as z:
        assert z["a_frames"].shape == (13, 500, 2) and z["b_accept"].shape == (12, 500)
        assert '"step_size": 0.2' in str(z["meta_json"])
    with page.expect_download(timeout=90_000) as dl:
        page.get_by_role("button", name="GIF of the chains").click()
    dl.value.save_as(tmp_path / "lab.gif")
    gif = Image.open(tmp_path / "lab.gif")
    assert gif.n_frames == 4 and gif.size[0] > 2 * gif.size[1] - 20  # frames 0–3, the two samplers side by side


def test_sampler_lab_plays_and_bad_links_are_messages(app_url, page):
    page.goto(f"{app_url}/sampler_lab?energy=../../etc&particles=-3&b_sampler=HMC")
    wait_idle(page)
    page.get_by_text("The link's energy=").wait_for(timeout=60_000)
    page.get_by_text("The link's particles=").wait_for()
    page.get_by_role("button", name="Play").click()
    page.get_by_text("Step 300 / 300").wait_for(timeout=90_000)
    wait_idle(page)
    page.get_by_text("Diagnostics at step 300").wait_for()
    no_exception(page)


def iterations_logged(page) -> int | None:
    import re

    m = re.search(r"([\d,]+) iterations logged", page.inner_text("body"))
    return None if m is None else int(m.group(1).replace(",", ""))


def test_learning_dynamics_compares_the_flows_and_trains_live(app_url, page):
    page.goto(f"{app_url}/learning_dynamics")
    wait_idle(page)
    page.get_by_text("Gap at iteration").first.wait_for(timeout=90_000)
    assert "collapsed" in page.inner_text("body") and "stable" in page.inner_text("body")
    no_exception(page)
    page.get_by_text("Train live", exact=True).click()
    page.get_by_text("0 iterations logged").wait_for(timeout=90_000)
    wait_idle(page)
    page.get_by_role("button", name="Play").click()
    seen, deadline = set(), time.time() + 90
    while time.time() < deadline and max(seen, default=0) < 15:
        n = iterations_logged(page)
        if n is not None:
            seen.add(n)
        time.sleep(0.1)
    assert max(seen) >= 15 and len(seen) >= 3, seen  # the curve grew in several updates while training
    page.get_by_role("button", name="Pause").click()
    wait_idle(page)
    no_exception(page)
    page.get_by_text("Trained frame").first.wait_for(timeout=30_000)  # paused: the scrubber over trained frames


def test_anomaly_page_scores_uploads_and_refuses_bad_ones(app_url, page, tmp_path):
    page.goto(f"{app_url}/anomaly")
    wait_idle(page)
    page.get_by_text("Red: below 0.85").first.wait_for(timeout=90_000)  # the stored table
    no_exception(page)
    page.get_by_text("Your digit", exact=True).first.click()
    page.get_by_text("more typical than").first.wait_for(timeout=90_000)
    no_exception(page)
    page.get_by_text("an upload", exact=True).click()
    wait_idle(page)
    cases = {"junk.png": (b"not an image", "Cannot use this file"),
             "tiny.png": (_png("L", (1, 1), 255), "a digit needs at least"),
             "huge.png": (_png("L", (10_000, 10_000), 0), "the limit is 4096×4096")}
    for name, (raw, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        page.locator('input[type="file"]').set_input_files(str(path))
        page.get_by_text(message).first.wait_for(timeout=60_000)
        no_exception(page)
    page.get_by_text("more typical than").first.wait_for(timeout=30_000)  # the tiny picture was scored


def test_domain_translation_from_an_upload(app_url, page, tmp_path):
    page.goto(f"{app_url}/coarse_to_fine?view=Domain+translation")
    wait_idle(page)
    page.get_by_text("an upload", exact=True).first.wait_for(timeout=90_000)
    page.get_by_text("an upload", exact=True).first.click()
    wait_idle(page)
    picture = np.full((40, 30), 255, np.uint8)  # a dark boot-like block on white, not a digit
    picture[8:34, 6:20] = 0
    picture[26:34, 6:27] = 0
    path = tmp_path / "boot.png"
    Image.fromarray(picture).save(path)
    page.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text("Cascade · the evaluator").first.wait_for(timeout=120_000)
    body = page.inner_text("body")
    assert "Short-run · the evaluator" in body and "resized from 30×40" in body
    no_exception(page)


SCORE_LINE = ("() => [...document.querySelectorAll('[data-testid=\"stMarkdownContainer\"]')]"
              ".map(e => e.innerText).find(t => t.startsWith('Score −E')) || ''")  # the anomaly page's score


def test_a_digit_drawn_on_the_pad_is_scored_and_clear_empties_it(app_url, page):
    page.goto(f"{app_url}/anomaly?view=Your+digit")
    wait_idle(page)
    page.get_by_text("more typical than").first.wait_for(timeout=90_000)
    page.get_by_text("a drawing", exact=True).click()
    waiting = page.get_by_text("Meanwhile the page scores the held-out digit chosen below.")
    waiting.wait_for(timeout=60_000)
    wait_idle(page)
    before = page.evaluate(SCORE_LINE)
    canvas = page.locator("canvas[aria-label^='Drawing pad']")
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    corners = [(70, 60), (210, 60), (160, 150), (120, 240)]  # a 7, in the pad's 280×280 pixels
    page.mouse.move(box["x"] + corners[0][0], box["y"] + corners[0][1])
    page.mouse.down()
    for (a, b), (c, d) in zip(corners, corners[1:], strict=False):
        for t in range(1, 11):
            page.mouse.move(box["x"] + a + (c - a) * t / 10, box["y"] + b + (d - b) * t / 10)
    page.mouse.up()
    # the stroke reached Python and the drawing was scored: the score line changes (waiting for the caption to go
    # is not enough: a rerun can drop it before the new score is drawn)
    page.wait_for_function(f"(b) => {{ const t = ({SCORE_LINE})(); return t && t !== b; }}", arg=before,
                           timeout=60_000)
    # the placeholder's caption goes and the drawing's comparison comes (a rerun can keep stale elements a moment)
    waiting.wait_for(state="detached", timeout=60_000)
    page.get_by_text("before · after the edits").first.wait_for(timeout=60_000)
    no_exception(page)
    page.get_by_role("button", name="Clear").click()
    waiting.wait_for(timeout=60_000)  # an empty pad: back to the held-out digit
    no_exception(page)
