"""The runs of a runs folder: every folder under it (at most ``MAX_DEPTH`` levels down) that holds TensorBoard event
files. A page offers these by name — the path relative to the runs folder — and takes a name only from this listing,
never a path from a link."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ebmviz.monitor.events import EVENT_GLOB

ENV = "EBMVIZ_RUNS"  # the runs folder (``ebmviz run --runs DIR`` sets it); default runs/ in the working directory
MAX_DEPTH = 3  # runs/<method>/<variant>/<seed> at most
MAX_RUNS = 500  # folders listed at most (a huge tree is cut, with a note)


def runs_folder() -> Path:
    """``$EBMVIZ_RUNS``, else ``runs`` in the working directory (the clone's root under ``ebmviz run``)."""
    return Path(os.environ.get(ENV) or "runs").expanduser()


@dataclass(frozen=True)
class RunInfo:
    name: str  # posix path relative to the runs folder ("." for event files in the folder itself)
    path: Path
    files: int  # event files
    size: int  # their bytes
    modified: float  # the newest one's modification time (seconds since the epoch)


@dataclass(frozen=True)
class Listing:
    runs: list[RunInfo]  # newest first
    problem: str | None  # why the folder cannot be listed, or why the list is cut; None when all is well


def _events(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.glob(EVENT_GLOB) if p.is_file()]
    except OSError:
        return []


def list_runs(root: Path) -> Listing:
    """Every run under ``root``, newest first. A missing, unreadable or empty folder gives an empty list and a
    problem in words; symbolic links are not followed out of the folder."""
    if not root.exists():
        return Listing([], f"{root} does not exist")
    if not root.is_dir():
        return Listing([], f"{root} is not a folder")
    try:
        next(iter(os.scandir(root)), None)
    except OSError as exc:
        return Listing([], f"{root} cannot be read ({exc.strerror or exc})")
    base = root.resolve()
    found, problem, unreadable = [], None, 0
    for here, dirs, _ in os.walk(root, followlinks=False, onerror=lambda _e: None):
        rel = Path(here).relative_to(root)
        if len(rel.parts) >= MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        if not Path(here).resolve().is_relative_to(base):
            dirs[:] = []
            continue
        events = _events(Path(here))
        if not os.access(here, os.R_OK | os.X_OK):
            unreadable += 1
            continue
        if events:
            sizes = [(p.stat().st_size, p.stat().st_mtime) for p in events]
            found.append(RunInfo(rel.as_posix(), Path(here), len(events), sum(s for s, _ in sizes),
                                 max(m for _, m in sizes)))
        if len(found) >= MAX_RUNS:
            problem = f"more than {MAX_RUNS} runs under {root}: only the first {MAX_RUNS} are listed"
            break
    if not found and problem is None:
        problem = (f"no TensorBoard event files under {root}"
                   + (f" ({unreadable} folder(s) could not be read)" if unreadable else "")
                   + ": point --runs (or $EBMVIZ_RUNS) at the folder your SummaryWriter writes into")
    return Listing(sorted(found, key=lambda r: -r.modified), problem)


def find(listing: Listing, name: str) -> RunInfo | None:
    """The run called ``name`` in the listing (None for any other text: names are looked up, never used as paths)."""
    return next((r for r in listing.runs if r.name == name), None)
