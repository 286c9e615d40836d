"""Training monitor: the runs folder's runs, each run's log read live (one reader per run folder, shared by the
sessions and refreshed incrementally), its tags mapped to the monitor's roles, the negatives and their class entropy."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from ebmviz.analysis.metrics import class_entropy
from ebmviz.app import cache
from ebmviz.monitor.alerts import Alert, check
from ebmviz.monitor.events import EventReader, ImageRef, downsample, image_value
from ebmviz.monitor.runs import Listing as Listing, RunInfo as RunInfo, find as find, list_runs, runs_folder
from ebmviz.training_log import IMAGE_ROLES, MEANINGS, SCALAR_ROLES, TAGS, decode_images

DRAW_POINTS = 2000  # points per drawn series (each bucket keeps its minimum and maximum)
LIVE_SECONDS = 0.5  # how often a followed run is read again (the logger flushes every 0.5 s too)
ROLES = (*SCALAR_ROLES,)  # the scalar roles a tag can be mapped to
MEANING = MEANINGS


class _Shared:
    """One run folder's reader, shared by every session that watches it; a lock keeps refreshes apart."""

    def __init__(self, path: Path):
        self.reader, self.lock = EventReader(path), threading.Lock()
        self.read_at = 0.0


@dataclass(frozen=True)
class Snapshot:
    """What a run's log holds at one moment (copies: safe to draw while the reader goes on)."""

    scalars: dict[str, tuple[np.ndarray, np.ndarray]]  # tag -> (steps, values), full length
    images: dict[str, list[ImageRef]]  # tag -> image summaries
    notes: list[str]
    last_step: int | None
    last_wall: float | None  # wall time of the newest value read (seconds since the epoch)
    read_seconds: float  # how long this refresh took


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared(path: str) -> _Shared:
    return _Shared(Path(path))


def listing() -> tuple[Path, Listing]:
    root = runs_folder()
    return root, list_runs(root)


def read(run: RunInfo) -> Snapshot:
    """Read what the run's files gained since the last read (by any session) and return a snapshot."""
    shared = _shared(str(run.path.resolve()))
    with shared.lock:
        t0 = time.perf_counter()
        shared.reader.refresh()
        seconds = time.perf_counter() - t0
        r = shared.reader
        scalars = {tag: (s.steps, s.values) for tag, s in r.scalars.items()}
        walls = [float(s.wall[-1]) for s in r.scalars.values() if len(s.wall)]
        return Snapshot(scalars, {t: list(v) for t, v in r.images.items()}, list(r.notes), r.last_step,
                        max(walls) if walls else None, seconds)


def default_mapping(tags: list[str]) -> dict[str, str | None]:
    """Role -> tag: the documented tag where the log has it, else None (a foreign log is mapped by hand)."""
    return {role: TAGS[role] if TAGS[role] in tags else None for role in ROLES}


def mapping_of(tags: list[str], chosen: dict[str, str | None]) -> dict[str, str | None]:
    """Role -> tag: what the user chose for a role (None: none), else the documented tag when the log has it."""
    return {**default_mapping(tags), **{r: t for r, t in chosen.items() if t is None or t in tags}}


def image_tags(snapshot: Snapshot) -> list[str]:
    """The image tags, documented ones first."""
    documented = [TAGS[r] for r in IMAGE_ROLES if TAGS[r] in snapshot.images]
    return documented + sorted(t for t in snapshot.images if t not in documented)


def by_role(snapshot: Snapshot, mapping: dict[str, str | None], points: int = DRAW_POINTS,
            full: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Role -> (steps, values) through ``mapping``; downsampled to about ``points`` for drawing unless ``full``."""
    out = {}
    for role, tag in mapping.items():
        if tag and tag in snapshot.scalars:
            steps, values = snapshot.scalars[tag]
            out[role] = (steps, values) if full else downsample(steps, values, points)
    return out


@st.cache_data(max_entries=512, show_spinner=False)
def negatives(path: str, step: int, offset: int, length: int) -> np.ndarray:
    """(n, C, H, W) uint8 images of one image summary (read from its file when first asked)."""
    ref = ImageRef(step, Path(path), offset, length)
    value = image_value(ref)
    if value.HasField("image"):
        with Image.open(io.BytesIO(value.image.encoded_image_string)) as im:
            a = np.asarray(im.convert("L" if im.mode in ("L", "P", "1") else "RGB"))
        return (a[None, None] if a.ndim == 2 else a.transpose(2, 0, 1)[None]).astype(np.uint8)
    return decode_images(value.tensor)


def load_images(ref: ImageRef) -> np.ndarray:
    return negatives(str(ref.file), ref.step, ref.offset, ref.length)


def saturation_of(images: np.ndarray) -> float:
    """Share of pixels with |x| ≥ 0.99 in uint8 images (u ∈ {0, 1, 254, 255})."""
    return float(np.mean((images <= 1) | (images >= 254)))


def class_counts(images: np.ndarray) -> np.ndarray | None:
    """(10,) the evaluator's digits among 1×28×28 images; None for other shapes or without the evaluator."""
    pred = cache.evaluate_frames(images)
    return None if pred is None else np.bincount(pred.label, minlength=10)


@st.cache_data(max_entries=4096, show_spinner=False)
def _entropy(path: str, step: int, offset: int, length: int) -> float | None:
    counts = class_counts(negatives(path, step, offset, length))
    return None if counts is None else class_entropy(np.repeat(np.arange(10), counts))


def entropy_series(refs: list[ImageRef], limit: int = 200) -> tuple[np.ndarray, np.ndarray] | None:
    """The class entropy of the negatives at (at most ``limit``, evenly spread) image steps where they are 28×28 grey
    digits (a coarse-to-fine run's 7- and 14-pixel stages are left out); None when none is."""
    if not refs:
        return None
    picks = [refs[i] for i in np.unique(np.linspace(0, len(refs) - 1, min(limit, len(refs))).astype(int))]
    pairs = [(r.step, _entropy(str(r.file), r.step, r.offset, r.length)) for r in picks]
    pairs = [(s, v) for s, v in pairs if v is not None]
    if not pairs:
        return None
    return np.array([s for s, _ in pairs]), np.array([v for _, v in pairs], float)


def check_alerts(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[Alert]:
    """The alerts of the full series by role (the saturation rule compares with MNIST's share of pixels at the
    walls: the monitor does not know a foreign run's data)."""
    return check(series)


def age(wall: float | None) -> str:
    """"12 s ago" for a wall time."""
    if wall is None:
        return "never"
    s = max(0.0, time.time() - wall)
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.1f} h ago"
