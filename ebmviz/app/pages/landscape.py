"""The energy-landscape page's cached work and widgets: paths between two minima and new maps made on request
(written to the map cache, so made once); the map picker, the basin threshold and the two selected minima. Stored
maps as the page opens them are in ``ebmviz.app.landscape_maps``, a digit of your own in
``ebmviz.app.landscape_digit``; the names the view uses are re-exported here.

Session keys start with ``P``. The selection (minima A and B) lives in plain keys that outlive the views' widgets:
a click on the graph or the UMAP, or a typed number, changes it; the number inputs are set from it on each run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ebmviz import checkpoints as checkpoints
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.app.cache import EVALUATOR, load_evaluator, load_model
from ebmviz.app.landscape_digit import (
    DigitDescent as DigitDescent,
    descend_digit as descend_digit,
    digit_notice as digit_notice,
    digit_story as digit_story,
    map_starts as map_starts,
)
from ebmviz.app.landscape_maps import (
    MapView as MapView,
    available_maps as available_maps,
    cut_reason as cut_reason,
    map_model,
    open_map as open_map,
    open_version,
    pictures,
)
from ebmviz.app.state import PageState
from ebmviz.images import to_u8 as to_u8
from ebmviz.landscape import (
    Landscape,
    LandscapeError as LandscapeError,
    map_path,
    save_map,
    space_config as space_config,
)
from ebmviz.landscape.cuts import Basins as Basins, basins_at as basins_at
from ebmviz.landscape.digits import DigitMapSpec as DigitMapSpec, map_digits
from ebmviz.landscape.graph import draw_tree as draw_tree, merge_level as merge_level, route
from ebmviz.landscape.paths import band_between, polyline_profile
from ebmviz.landscape.result import LandscapeConfig as LandscapeConfig

MAX_STARTS = 500  # most starts of a map made on the page (latent space: about 2 minutes on 2 cores)


@dataclass(frozen=True)
class PathProfile:
    """Energy along one path between two minima, with pictures along it."""

    distance: np.ndarray  # (L,) distance travelled in the mapped space
    energy: np.ndarray  # (L,)
    strip: np.ndarray  # (n, 1, 28, 28) uint8 pictures evenly spaced along the path
    minima: list[int]  # the map's minima the path passes through, ends included
    seconds: float

    @property
    def barrier(self) -> float:
        return float(self.energy.max())


def _profile(view: MapView, vertices: torch.Tensor, minima: list[int], t0: float, n_pictures: int) -> PathProfile:
    energy, decode, _ = map_model(view, "cpu")  # paths work on the map's CPU arrays
    p = polyline_profile(energy, vertices, view.land.config.n_path, view.land.config.batch_size)
    return PathProfile(p.distance, p.energy, pictures(decode, p.pick(n_pictures)), minima, time.perf_counter() - t0)


@st.cache_data(show_spinner="Scanning the straight segment and the tree's route…", max_entries=32)
def straight_and_route(name: str, mtime: float, i: int, j: int, n_pictures: int = 10) -> dict[str, PathProfile]:
    """The straight segment i–j (the paper's linear barrier) and the route of straight pieces through the minima
    the tree joins them by (its highest point is the graph's join level where those links are linear barriers, and
    above it where they were refined); only the straight segment when i and j never join."""
    view, t0 = open_version(name, mtime), time.perf_counter()
    x = torch.from_numpy(view.land.minima)
    out = {"straight segment": _profile(view, x[[i, j]], [i, j], t0, n_pictures)}
    steps = route(view.land.tree, i, j)
    if steps is not None:
        out["tree route"] = _profile(view, x[steps], steps, time.perf_counter(), n_pictures)
    return out


@st.cache_data(show_spinner="Relaxing an elastic band between the two minima…", max_entries=32)
def elastic_band(name: str, mtime: float, i: int, j: int, n_pictures: int = 10) -> PathProfile:
    """A climbing-image nudged elastic band from the straight segment i–j, relaxed with the map's settings."""
    view, t0 = open_version(name, mtime), time.perf_counter()
    energy, _, _ = map_model(view, "cpu")
    return _profile(view, band_between(energy, view.land, i, j), [i, j], t0, n_pictures)


def make_map(spec: DigitMapSpec, config: LandscapeConfig, device: str,
             progress: Callable[[int, int, Landscape], None] | None = None) -> str:
    """Make (or find in the cache) the map of ``spec`` and return its path. Raises ``ValueError`` (bad settings),
    ``CheckpointError`` or ``LandscapeError``."""
    config.validate()
    if not 2 <= spec.n <= MAX_STARTS:
        raise ValueError(f"the number of starts must be between 2 and {MAX_STARTS}, got {spec.n}")
    path = map_path(spec.checkpoint, config, spec.extra())
    if path.is_file():
        return str(path)
    model = load_model(spec.checkpoint, device)
    evaluator = load_evaluator()
    land = map_digits(model, spec, config, evaluator, progress)
    land.meta["made_on"] = "the Energy landscape page"
    if evaluator is None:
        land.meta["note"] = f"minima not scored: no {EVALUATOR} checkpoint"
    return str(save_map(land, path))


# Widgets
P = "ls"
state = PageState(P)  # the page's session keys
SEL = (state.key("sel_a"), state.key("sel_b"))  # the two selected minima
INPUTS = (state.key("a"), state.key("b"))  # the number inputs that show and change them


def pick_map(maps: dict[str, str], label: str, key: str, default: int = 0) -> MapView | None:
    """A picker over ``maps`` (label -> path); None (with the reason shown) when the chosen file cannot be read."""
    if not maps:
        return None
    labels, keep = list(maps), f"{key}_chosen"  # the choice outlives the views that do not draw this picker
    if st.session_state.get(keep) not in labels:
        st.session_state[keep] = labels[min(default, len(labels) - 1)]
    st.session_state[key] = st.session_state[keep]
    label = st.selectbox(label, labels, key=key, help="Shipped maps first (checkpoints/maps), then maps made here",
                         on_change=lambda: st.session_state.update({keep: st.session_state[key]}))
    try:
        return open_map(maps[label])
    except LandscapeError as exc:
        st.error(f"Cannot open this map — {exc.reason}. Pick another; the page keeps working.")
        return None


def describe(view: MapView) -> str:
    """Which energy, space, starts and barriers a map uses, in a sentence."""
    m = view.land.meta
    space = (f"latent space of **{m.get('checkpoint')}**'s generator, U(z) = E(g(z))/T + ‖z‖²/2 at T = "
             f"**{m.get('temperature', 1):g}**, starting codes: {m.get('codes_from', 'fitted')}"
             if view.latent else f"image space of **{m.get('checkpoint')}**, E(x) on pixels in [−1, 1]")
    used = "elastic-band (refined) barriers on the tree's edges, linear elsewhere" if np.isfinite(
        view.land.barrier_refined[~np.eye(view.land.n_minima, dtype=bool)]).any() else "linear barriers"
    return f"{space}; {len(view.land.assignment)} starts ({m.get('starts', 'digits')}); the graph uses {used}."


def selected(view: MapView) -> tuple[int, int]:
    """Minima A and B, kept inside the map's range."""
    m = view.land.n_minima
    out = []
    for key, default in zip(SEL, (0, min(1, m - 1)), strict=True):
        k = st.session_state.get(key)
        if not isinstance(k, int) or not 0 <= k < m:
            st.session_state[key] = k = default
        out.append(k)
    return out[0], out[1]


def select_from(key: str):
    """A click on a minimum (``customdata``) makes it A; the old A becomes B."""
    def pick():
        points = st.session_state[key].selection.get("points", [])
        picked = [p.get("customdata") for p in points if p.get("customdata") is not None]
        if picked:
            k = int(picked[-1][0] if isinstance(picked[-1], list) else picked[-1])
            if k != st.session_state.get(SEL[0]):
                st.session_state[SEL[1]] = st.session_state.get(SEL[0], 0)
                st.session_state[SEL[0]] = k
    return pick


def threshold_slider(view: MapView) -> float:
    """The basin threshold: a slider, and a box to type an exact level (a level outside the map's range is a
    message and is clamped to it). Its default leaves about 20 basins."""
    levels = view.levels()
    lo, hi = float(levels[0]), float(levels[-1])
    stem = Path(view.name).stem
    level, slide, typed, note = (state.key(f"{k}_{stem}") for k in ("level", "thr", "thr_typed", "thr_note"))
    if not isinstance(st.session_state.get(level), float):
        st.session_state[level] = view.default_threshold()
    st.session_state[level] = float(np.clip(st.session_state[level], lo, hi))  # a re-made map may have moved
    if lo == hi:  # one level only (a map of one minimum): nothing to slide
        st.caption(f"Energy threshold: {lo:.3f}, this map's only level")
        return lo

    def take(key: str) -> None:
        value = st.session_state[key]
        if value is None:  # the box was cleared: keep the level
            return
        if not np.isfinite(value) or not lo <= value <= hi:
            st.session_state[note] = (f"Threshold {value} is outside this map's range [{lo:.3f}, {hi:.3f}] "
                                      "(lowest minimum to highest level); using the nearest end.")
            value = hi if np.isnan(value) else float(np.clip(value, lo, hi))
        st.session_state[level] = float(value)

    if st.session_state.get(note):
        st.warning(st.session_state.pop(note))
    st.session_state[slide] = st.session_state[typed] = st.session_state[level]
    c = st.columns([4, 1])
    c[0].slider(f"Energy threshold ({view.energy_label})", lo, hi, key=slide, format="%.2f", on_change=take,
                args=(slide,), help="Minima joined by barriers at or below this level form one basin")
    c[1].number_input("exact level", value=None, key=typed, format="%.3f", on_change=take, args=(typed,))
    return st.session_state[level]


def minimum_caption(view: MapView, k: int) -> str:
    """Minimum k's energy, starts and the evaluator's reading."""
    d = "" if view.digit is None else f", evaluator {view.digit[k]} ({100 * view.confidence[k]:.0f}%)"
    return f"minimum {k}: {view.energy_label} = {view.land.energy[k]:.2f}, {view.land.n_starts[k]} starts{d}"


def pair_inputs(view: MapView) -> tuple[int, int]:
    """Number inputs showing A and B; typing a number selects that minimum."""
    m = view.land.n_minima
    for key, value in zip(INPUTS, selected(view), strict=True):
        st.session_state[key] = value
    c = st.columns(2)
    for col, label, key, sel in zip(c, ("Minimum A", "Minimum B"), INPUTS, SEL, strict=True):
        col.number_input(label, 0, m - 1, key=key, on_change=lambda k=key, s=sel: st.session_state.update({s: int(
            st.session_state[k])}), help="Or click a leaf in the graph: it becomes A, and A becomes B")
    return selected(view)


def layout_colours(view: MapView, colour: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The values the 2-D layout colours its starts (N,) and minima (M,) by: ``colour`` "basin" (the basin at
    ``threshold``; −1 for a start that reached no minimum), "digit" (the start's label, the evaluator's reading of
    the minimum; −1 when unknown) or "energy" (of the minimum each start reached; NaN for none)."""
    land = view.land
    n, ok = len(land.assignment), land.assignment >= 0
    reached = np.clip(land.assignment, 0, None)
    if colour == "basin":
        _, basin_of = view.basin_of(threshold)
        return np.where(ok, basin_of[reached], -1), basin_of
    if colour == "digit":
        return (land.labels if land.labels is not None else np.full(n, -1),
                view.digit if view.digit is not None else np.full(land.n_minima, -1))
    return np.where(ok, land.energy[reached], np.nan), land.energy


def layout_texts(view: MapView) -> tuple[list[str], list[str]]:
    """Hover texts of the layout's starts ("digit 7 → minimum 3") and minima (``minimum_caption``)."""
    land = view.land
    starts = [f"digit {land.labels[i] if land.labels is not None else '?'} → "
              + (f"minimum {land.assignment[i]}" if land.assignment[i] >= 0 else "no minimum")
              for i in range(len(land.assignment))]
    return starts, [minimum_caption(view, k) for k in range(land.n_minima)]
