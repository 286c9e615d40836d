"""Screenshots and visible text of every page and every "View" of the app, to compare two checkouts.

    python -m tests.screenshots OUTDIR [--width 1400 --height 1000]   # the app of the checkout this file lives in
    python -m tests.screenshots --compare BEFORE AFTER                # text diffs and pixel differences
    python -m tests.screenshots --readme docs/                        # the README's pictures (home, langevin)
    python -m tests.screenshots --present OUTDIR                      # every page at ?present=1, 1280×720
    python -m tests.screenshots --user OUTDIR                         # the pages on the RGB user model

``--readme`` writes the README's screenshots at a fixed window (README_SIZE): Home, and the Langevin page after a
run from noise (Reset, Play, until it says "finished"); each PNG is quantized to 256 colours to stay small.
``--present`` opens every page in presentation mode at 1280×720 and writes ``<page>.png`` (the screen),
``<page>--full.png`` (the whole page) and ``sizes.json``: each Streamlit image's rendered and natural size, so a
caption drawn into an image at F px shows at F × rendered width / natural width CSS px on that screen.

For each page (read from the sidebar's navigation, plus any ``views/*.py`` it lacks) this writes
``OUTDIR/<page>.png`` and ``OUTDIR/text/<page>.txt`` (the main block's visible text), then clicks each option of
the page's "View" segmented control and writes ``<page>--<view>.png`` / ``.txt``. A page or view that fails or
passes its time limit is logged and skipped. Not a test: pytest collects nothing here.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.browser import ROOT, chromium_page, streamlit_server, wait_idle

TIMEOUT = 180.0  # seconds for a page to load, and again for each of its views
BUSY = '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-testid="stSpinner"], [data-stale="true"]'
MAIN = '[data-testid="stMain"]'
# st.dataframe draws on a canvas; its hidden accessibility table holds the text of the rows it has rendered
TABLES = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] table')].map(t =>
    [...t.querySelectorAll('tr')].map(r => [...r.children].map(c => c.textContent).join('\\t')).join('\\n'))"""

README_SIZE = (1400, 1150)  # the README's window: the sidebar's pages, the settings, the grid and its energy trace
PRESENT_SIZE = (1280, 720)  # a projector
README_MAX_BYTES = 300_000
# --present: each Streamlit image as shown (CSS px) and as drawn (its natural size), with its caption
IMAGES = """() => [...document.querySelectorAll('[data-testid="stImage"] img')].map(img => {
    const r = img.getBoundingClientRect(), box = img.closest('[data-testid="stImageContainer"]');
    const caption = box && box.querySelector('[data-testid="stImageCaption"]');
    const shown = r.width > 0 && r.height > 0 && img.checkVisibility({opacityProperty: true, visibilityProperty: true});
    return {caption: caption ? caption.innerText : "", natural: [img.naturalWidth, img.naturalHeight],
            rendered: [Math.round(r.width * 100) / 100, Math.round(r.height * 100) / 100],
            top: Math.round(r.top), shown: shown, on_first_screen: shown && r.top < window.innerHeight};
})"""
IMAGES_LOADED = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
    .every(img => img.complete && (img.naturalWidth > 0 || img.getBoundingClientRect().width === 0))"""


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "x"


def page_paths(page, url: str) -> list[str]:
    """URL paths of the app's pages: the sidebar's links, then any views/*.py not among them ("" is home)."""
    page.goto(url)
    links = page.locator('[data-testid="stSidebarNavLink"]')
    try:
        links.first.wait_for(timeout=TIMEOUT * 1000)
    except Exception:
        print("no navigation links found; the pages are read from views/*.py")
    paths = [urlparse(h).path.strip("/") for h in links.evaluate_all("links => links.map(a => a.href)")]
    files = ["" if p.stem == "home" else p.stem for p in sorted((ROOT / "views").glob("*.py"))]
    return list(dict.fromkeys(paths + files))


def settle(page, deadline: float) -> None:
    """Wait until the run is done and nothing is loading, twice in a row 1.5 s apart."""
    ms = lambda: max(1_000, int((deadline - time.time()) * 1000))
    page.wait_for_selector(MAIN, timeout=ms())
    for _ in range(2):
        wait_idle(page, ms())
        page.wait_for_function(f"() => !document.querySelector('{BUSY}')", timeout=ms())
        time.sleep(1.5)


def shoot(page, out: Path, name: str, size: tuple[int, int]) -> None:
    """Full-page PNG and visible text. Streamlit scrolls inside the app, so the viewport grows to the content."""
    tall = page.evaluate(f"() => {{ const m = document.querySelector('{MAIN}'); return m ? m.scrollHeight : 0 }}")
    page.set_viewport_size({"width": size[0], "height": max(size[1], min(tall, 20_000))})
    time.sleep(0.5)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    text = page.locator(MAIN).inner_text() if page.locator(MAIN).count() else page.inner_text("body")
    tables = page.evaluate(TABLES)
    text += "".join(f"\n\n[dataframe {i}, rendered rows]\n{t}" for i, t in enumerate(tables))
    (out / "text" / f"{name}.txt").write_text(text)
    errors = page.locator('[data-testid="stException"]').count()
    print(f"  {name}.png" + (f"  ({errors} exception block(s) on the page)" if errors else ""), flush=True)


def view_control(page):
    """The options of the segmented control labelled "View" (empty when the page has none)."""
    return page.locator('[data-testid="stButtonGroup"] [role="radiogroup"][aria-label="View"]').first.locator("button")


def attempt(what: str, failed: list[str], step) -> bool:
    """Run ``step(deadline)``; log a failure (and record ``what``) instead of raising."""
    t = time.time()
    try:
        step(t + TIMEOUT)
        return True
    except Exception as e:  # one page's or view's failure must not end the run
        failed.append(what)
        print(f"  FAILED {what} after {time.time() - t:.0f} s: {type(e).__name__}: {str(e).splitlines()[0]}")
        return False


def one_page(page, url: str, path: str, out: Path, size: tuple[int, int], failed: list[str]) -> None:
    name = path or "home"

    def load(deadline: float) -> None:
        page.goto(f"{url}/{path}")
        settle(page, deadline)
        shoot(page, out, name, size)

    def view(i: int, label: str, deadline: float) -> None:
        button = view_control(page).nth(i)
        if button.get_attribute("aria-checked") != "true":  # clicking the selected one would unselect it
            button.click()
            settle(page, deadline)
        shoot(page, out, f"{name}--{slug(label)}", size)

    if attempt(name, failed, load):
        for i, label in enumerate(view_control(page).all_inner_texts()):
            attempt(f"{name}--{slug(label)}", failed, lambda deadline, i=i, label=label: view(i, label, deadline))


def capture(out: Path, size: tuple[int, int]) -> None:
    (out / "text").mkdir(parents=True, exist_ok=True)
    start, failed = time.time(), []
    with streamlit_server() as url, chromium_page(*size) as page:
        paths = page_paths(page, url)
        print(f"{ROOT}: {len(paths)} pages", flush=True)
        for path in paths:
            t = time.time()
            print(f"/{path}", flush=True)
            one_page(page, url, path, out, size, failed)
            print(f"  ({time.time() - t:.0f} s)", flush=True)
    print(f"done in {time.time() - start:.0f} s; failed: {', '.join(failed) or 'none'}")


def compare(before: Path, after: Path) -> None:
    import numpy as np
    from PIL import Image

    for sub, ext in (("text", "txt"), (".", "png")):
        a = {p.name for p in (before / sub).glob(f"*.{ext}")}
        b = {p.name for p in (after / sub).glob(f"*.{ext}")}
        for n in sorted(a - b):
            print(f"{n}: only in {before}")
        for n in sorted(b - a):
            print(f"{n}: only in {after}")
        for n in sorted(a & b):
            if ext == "txt":
                x, y = ((d / sub / n).read_text().splitlines() for d in (before, after))
                diff = list(difflib.unified_diff(x, y, "before", "after", lineterm="", n=1))
                print(f"{n}: " + ("same text" if not diff else "text differs\n  " + "\n  ".join(diff[2:22])))
                continue
            x, y = (np.asarray(Image.open(d / n).convert("RGB"), dtype=np.int16) for d in (before, after))
            h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
            share = (np.abs(x[:h, :w] - y[:h, :w]).max(axis=2) > 16).mean()
            where = "pixels" if x.shape == y.shape else "pixels of the overlap"
            print(f"{n}: {x.shape[1]}x{x.shape[0]} vs {y.shape[1]}x{y.shape[0]}, "
                  f"{100 * share:.2f}% of {where} differ by > 16")


def small_png(path: Path) -> int:
    """Quantize the screenshot at ``path`` to 256 colours in place (text and digits stay crisp); its size in bytes."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    return path.stat().st_size


def readme(out: Path) -> None:
    """The README's screenshots: ``home.png`` and ``langevin.png`` (after a run from noise) at ``README_SIZE``."""
    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, chromium_page(*README_SIZE) as page:
        page.goto(url)
        settle(page, time.time() + TIMEOUT)
        page.screenshot(path=str(out / "home.png"))
        page.goto(f"{url}/langevin")
        settle(page, time.time() + TIMEOUT)
        page.get_by_role("button", name="Reset", exact=True).click()
        settle(page, time.time() + TIMEOUT)
        page.get_by_text("Step 0 /").wait_for(timeout=TIMEOUT * 1000)
        page.get_by_role("button", name="Play", exact=True).click()
        page.get_by_text("· finished").wait_for(timeout=TIMEOUT * 1000)
        settle(page, time.time() + TIMEOUT)
        page.screenshot(path=str(out / "langevin.png"))
    for name in ("home", "langevin"):
        size = small_png(out / f"{name}.png")
        print(f"{out / name}.png: {README_SIZE[0]}x{README_SIZE[1]}, {size / 1000:.0f} kB")
        if size > README_MAX_BYTES:
            print(f"  larger than {README_MAX_BYTES / 1000:.0f} kB: crop it or lower README_SIZE")


def present(out: Path) -> None:
    """Every page at ``?present=1`` in a 1280×720 window: screenshots and ``sizes.json`` (see the module's doc)."""
    out.mkdir(parents=True, exist_ok=True)
    sizes, failed = {}, []
    with streamlit_server() as url, chromium_page(*PRESENT_SIZE) as page:
        for path in page_paths(page, url):
            name = path or "home"

            def load(deadline: float, path=path, name=name) -> None:
                page.goto(f"{url}/{path}?present=1")
                settle(page, deadline)
                page.wait_for_function(IMAGES_LOADED, timeout=max(1_000, int((deadline - time.time()) * 1000)))
                page.screenshot(path=str(out / f"{name}.png"))
                images = page.evaluate(IMAGES)
                for im in images:
                    im["scale"] = round(im["rendered"][0] / im["natural"][0], 4) if im["natural"][0] else None
                tall = page.evaluate(f"() => document.querySelector('{MAIN}').scrollHeight")
                sizes[name] = {"url": f"/{path}?present=1", "page_height": tall, "images": images}
                page.set_viewport_size({"width": PRESENT_SIZE[0], "height": max(PRESENT_SIZE[1], min(tall, 20_000))})
                time.sleep(0.5)
                page.screenshot(path=str(out / f"{name}--full.png"), full_page=True)
                page.set_viewport_size({"width": PRESENT_SIZE[0], "height": PRESENT_SIZE[1]})
                scales = ", ".join(f"{im['scale']:.2f}" for im in images if im["shown"] and im["scale"])
                print(f"/{path}: page {tall} px tall; images shown at {scales or 'none'} × their size", flush=True)

            attempt(name, failed, load)
    doc = {"viewport": list(PRESENT_SIZE),
           "note": "rendered and top (from the window's top, unscrolled) in CSS px at device scale 1; natural in "
                   "image px; scale = rendered width / natural width, so a caption drawn at F px in the image shows "
                   "at F × scale px; shown: false inside a folded expander or an inactive tab",
           "pages": sizes}
    (out / "sizes.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{out / 'sizes.json'}; failed: {', '.join(failed) or 'none'}")


USER_PAGES = {  # --user: the pages that take an energy, on the 3×32×32 fixture, and what each waits for
    "home": ("", "watch energy-based models work"),
    "langevin": ("langevin?model=rgb-digits", "· finished"),
    "anomaly": ("anomaly?view=One+model&model=rgb-digits", "Computed live on this machine"),
    "landscape": ("landscape?view=Map+now", "Minima"),
    "models": ("model_zoo", "Your own models"),
}


def map_rgb(page) -> None:
    """On the landscape's Map now: pick rgb-digits, 40 starts of its own images, 300 steps, and press Map now."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Energy model").click()
    page.get_by_role("option", name="rgb-digits").click()
    page.get_by_text("Start from").first.wait_for(timeout=60_000)
    time.sleep(1.0)
    for label, value in (("Starts", "40"), ("Descent steps (at most)", "300")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        time.sleep(1.0)
    page.get_by_role("button", name="Map now").click()


def user(out: Path) -> None:
    """The app started as a user starts it (``python -m ebmviz run --model`` the RGB fixture): every page of
    ``USER_PAGES``, the whole page (``<page>.png``); the Langevin page after Play has run its chains to the end."""
    from tests.browser import streamlit_process
    from tests.user_models import RGB

    out.mkdir(parents=True, exist_ok=True)
    args = ["--model", RGB.target, "--weights", RGB.weights, "--data", RGB.data, "--name", RGB.label]
    failed: list[str] = []
    with streamlit_process(ebmviz_run=args, timeout=TIMEOUT) as server, chromium_page(1400, 1000) as page:
        for name, (path, text) in USER_PAGES.items():

            def load(deadline: float, path=path, name=name, text=text) -> None:
                page.set_viewport_size({"width": 1400, "height": 1000})
                page.goto(f"{server.url}/{path}")
                settle(page, deadline)
                if name == "langevin":
                    page.get_by_role("button", name="Play", exact=True).click()
                if name == "landscape":
                    map_rgb(page)
                page.get_by_text(text).first.wait_for(timeout=max(1_000, int((deadline - time.time()) * 1000)))
                settle(page, deadline)
                tall = page.evaluate(f"() => document.querySelector('{MAIN}').scrollHeight")
                page.set_viewport_size({"width": 1400, "height": max(1000, min(tall, 12_000))})
                time.sleep(1.0)
                settle(page, deadline)
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"/{path}: {tall} px tall", flush=True)

            attempt(name, failed, load)
    print(f"{out}; failed: {', '.join(failed) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--readme", type=Path, metavar="DIR", help="write the README's screenshots into DIR")
    parser.add_argument("--present", type=Path, metavar="OUTDIR", help="every page in presentation mode, 1280×720")
    parser.add_argument("--user", type=Path, metavar="OUTDIR", help="the pages on the RGB user model of tests/fixtures")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    elif args.readme:
        readme(args.readme)
    elif args.present:
        present(args.present)
    elif args.user:
        user(args.user)
    elif args.outdir:
        capture(args.outdir, (args.width, args.height))
    else:
        parser.error("give OUTDIR, --compare BEFORE AFTER, --readme DIR, --present OUTDIR or --user OUTDIR")


if __name__ == "__main__":
    main()
