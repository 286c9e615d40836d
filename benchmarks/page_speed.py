"""Pages in a real browser: seconds from pressing Play to the first new frame, and frames/s.

Starts `streamlit run app.py` on 127.0.0.1 and opens, in Debian's Chromium, with default settings
(16 chains, the checkpoint's sampler):
- /langevin: presses Play and watches the "Step N / K" counter until the run ends;
- /coarse_to_fine (``--page coarse_to_fine``): presses Play and watches the "Stage s · … step k"
  status through the whole 7 → 14 → 28 cascade.
A frame is a distinct status value.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import chromium_page, step_shown, streamlit_server, wait_idle  # noqa: E402


def cascade_status(page) -> str | None:
    m = re.search(r"Stage \d · \d+×\d+ · [^·]+", page.inner_text("body"))
    return m.group(0).strip() if m else None


def coarse_to_fine() -> None:
    with streamlit_server() as url, chromium_page() as page:
        page.goto(f"{url}/coarse_to_fine")
        wait_idle(page)
        page.get_by_text("Stage 0 · 7×7 · step 0").wait_for(timeout=90_000)
        time.sleep(1.0)
        first = cascade_status(page)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Play").click()
        seen: dict[str, float] = {}
        while time.perf_counter() - t0 < 120:
            s = cascade_status(page)
            if s and s != first and s not in seen:
                seen[s] = time.perf_counter() - t0
            if s and s.startswith("Stage 2") and "step" in s and s.split("/")[0].split()[-1] == s.split("/")[1].strip():
                break
            time.sleep(0.01)
    report(seen, "16 chains, full cascade")


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


def langevin_page() -> None:
    with streamlit_server() as url, chromium_page() as page:
        page.goto(f"{url}/langevin")
        wait_idle(page)
        page.get_by_text("Step 0 /").wait_for(timeout=90_000)
        time.sleep(1.0)
        total = int(page.get_by_text("Step 0 /").inner_text().split("/")[1].split()[0])
        t0 = time.perf_counter()
        page.get_by_role("button", name="Play").click()
        seen: dict[int, float] = {}
        while time.perf_counter() - t0 < 120:
            s = step_shown(page)
            if s and s not in seen:
                seen[s] = time.perf_counter() - t0
            if s == total:
                break
            time.sleep(0.01)
    report(seen, f"16 chains, {total} steps")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--page", choices=["langevin", "coarse_to_fine"], default="langevin")
    (coarse_to_fine if ap.parse_args().page == "coarse_to_fine" else langevin_page)()
