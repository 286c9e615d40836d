"""Langevin page in a real browser: seconds from pressing Play to the first new frame, and frames/s.

Starts `streamlit run app.py` on 127.0.0.1, opens /langevin in Debian's Chromium with the default
settings (16 chains, the checkpoint's sampler), presses Play and watches the "Step N / K" counter
until the run ends. A frame is a distinct counter value.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import chromium_page, step_shown, streamlit_server, wait_idle  # noqa: E402


def main() -> None:
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
    if not seen:
        print("no frame appeared within 120 s")
        return
    times = sorted(seen.values())
    span = times[-1] - times[0]
    fps = (len(times) - 1) / span if span > 0 else float("nan")
    print(f"16 chains, {total} steps: {len(times)} frames shown")
    print(f"first frame after Play: {times[0]:.2f} s")
    print(f"frames per second while playing: {fps:.1f}")


if __name__ == "__main__":
    main()
