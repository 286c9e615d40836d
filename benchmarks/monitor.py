"""The training monitor's reading speed on a long run, and (``--live``) the delay from a logged step to its point on
the page while ``python -m training shortrun`` trains.

Default: writes a run of ``--steps`` (100,000) logged steps through ``ebmviz.training_log.EBMLogger`` (13 scalar
roles a step, as the trainers log them), then times what the page does:
- *open*: a new reader reads the whole log, every role is downsampled for drawing, the alerts are checked on the full
  series and the figure is built and serialised to JSON (what ``st.plotly_chart`` sends);
- *refresh*: 100 more steps appended, then the same from the open reader (it reads only what was appended).
Aims: open ≤ 2 s, refresh ≤ 0.5 s. Medians of ``--repeats`` runs.

``--live``: starts the app (``EBMVIZ_RUNS`` a temporary folder) and ``python -m training shortrun --minutes M
--log-every 5`` into it, follows the run in headless Chromium, and for every "Last logged step N" the page shows,
the delay from that step's wall time in the log to the moment the browser first showed it. Screenshots mid-run and
after go to ``--shots``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz.figures.monitor import training_figure  # noqa: E402
from ebmviz.monitor.alerts import check  # noqa: E402
from ebmviz.monitor.events import EventReader, downsample  # noqa: E402
from ebmviz.training_log import SCALAR_ROLES, TAGS, EBMLogger  # noqa: E402

ROLES = [r for r in SCALAR_ROLES]


def write(folder: Path, first: int, count: int) -> None:
    with EBMLogger(folder, purge_step=None, flush_secs=60) as log:
        for step in range(first, first + count):
            log.scalars(step, **{r: math.sin(step / 1000 + k) + 2 for k, r in enumerate(ROLES)})


def page_work(reader: EventReader) -> float:
    """Read what is new, downsample, check alerts, build and serialise the figure; seconds."""
    t0 = time.perf_counter()
    reader.refresh()
    full = {r: (reader.scalars[TAGS[r]].steps, reader.scalars[TAGS[r]].values) for r in ROLES}
    drawn = {r: downsample(*full[r]) for r in ROLES}
    check(full)
    training_figure({"run": drawn}).to_json()
    return time.perf_counter() - t0


def speed(args) -> None:
    opens, refreshes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "long"
        t0 = time.perf_counter()
        write(folder, 0, args.steps)
        print(f"wrote {args.steps:,} steps × {len(ROLES)} roles in {time.perf_counter() - t0:.1f} s "
              f"({sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.1f} MB)", flush=True)
        for k in range(args.repeats):
            reader = EventReader(folder)
            opens.append(page_work(reader))
            write(folder, args.steps + 100 * k, 100)
            refreshes.append(page_work(reader))
            print(f"open {opens[-1]:.2f} s, refresh {refreshes[-1]:.3f} s", flush=True)
    print(f"{args.steps:,} logged steps: open median {statistics.median(opens):.2f} s (aim ≤ 2 s), refresh median "
          f"{statistics.median(refreshes):.3f} s (aim ≤ 0.5 s)")


def live(args) -> None:
    from tests.browser import chromium_page, streamlit_process, wait_idle

    root = Path(tempfile.mkdtemp())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "training", "shortrun", "--minutes", str(args.minutes), "--log-every", "5",
           "--run-dir", str(root / "shortrun"), "--out", str(root / "shortrun" / "model.safetensors")]
    trainer = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    seen: dict[int, float] = {}
    try:
        while not list((root / "shortrun").glob("events.out.tfevents.*")):
            time.sleep(0.2)
        with streamlit_process({"EBMVIZ_RUNS": str(root)}, timeout=120) as server, chromium_page(1400, 1500) as page:
            page.goto(f"{server.url}/training_monitor?run=shortrun")
            wait_idle(page)
            page.get_by_text("Last logged step").wait_for(timeout=120_000)
            shot_mid = time.time() + args.minutes * 30
            while trainer.poll() is None:
                text = page.evaluate("() => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
                                     ".map(e => e.innerText).find(t => /^Last logged step/.test(t)) || ''")
                if text.split()[3:4] and text.split()[3].isdigit():
                    seen.setdefault(int(text.split()[3]), time.time())
                if args.shots and shot_mid and time.time() > shot_mid:
                    page.screenshot(path=str(Path(args.shots) / "monitor-shortrun-mid.png"), full_page=True)
                    shot_mid = 0
                time.sleep(0.1)
            time.sleep(3)
            if args.shots:
                page.screenshot(path=str(Path(args.shots) / "monitor-shortrun-after.png"), full_page=True)
    finally:
        trainer.kill()
    reader = EventReader(root / "shortrun")
    reader.refresh()
    series = reader.scalars[TAGS["loss"]]
    wall = dict(zip(series.steps.tolist(), series.wall.tolist(), strict=True))
    delays = [seen[s] - wall[s] for s in sorted(seen) if s in wall]
    print(f"logged steps seen on the page: {len(delays)} of {len(wall)}; delay from the step's wall time to the "
          f"page: median {statistics.median(delays):.2f} s, max {max(delays):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    live(args) if args.live else speed(args)


if __name__ == "__main__":
    main()
