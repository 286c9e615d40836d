"""The energy-landscape page's cached work and widgets: paths between two minima and new maps made on request
(written to the map cache, so made once), of a checkpoint from held-out digits or of your own model from its own
images or noise; the map picker, the basin threshold and the two selected minima. Stored maps as the page opens
them (and the recipe of a map of your own model) are in ``ebmviz.app.landscape_maps``, a digit of your own in
``ebmviz.app.landscape_digit``; the names the view uses are re-exported here.

Session keys start with ``P``. The selection (minima A and B) lives in plain keys that outlive the views' widgets:
a click on the graph or the UMAP, or a typed number, changes it; the number inputs are set from it on each run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ebmviz import checkpoints as checkpoints
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.app.cache import EVALUATOR, is_digit_model, load_evaluator, load_model, model_data
from ebmviz.app.landscape_digit import (
    DigitDescent as DigitDescent,
    descend_digit as descend_digit,
    digit_notice as digit_notice,
    digit_story as digit_story,
    map_starts as map_starts,
)
from ebmviz.app.landscape_maps import (
    DIGIT_SHAPE,
    MapView as MapView,
    OwnMapSpec as OwnMapSpec,
    available_maps as available_maps,
    cut_reason as cut_reason,
    map_model,
    map_own,
    open_map as open_map,
    open_version,
    own_map_path,
    pictures,
)
from ebmviz.app.state import PageState
from ebmviz.figures.landscape import disconnectivity_figure
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
from ebmviz.user_model import UserEnergy

MAX_STARTS = 500  # most starts of a map made on the page (latent space: about 2 minutes on 2 cores)


@dataclass(frozen=True)
class PathProfile:
    """Energy along one path between two minima, with pictures along it."""

    distance: np.ndarray  # (L,) distance travelled in the mapped space
    energy: np.ndarray  # (L,)
    strip: np.ndarray  # (n, C, H, W) uint8 pictures evenly spaced along the path
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


def make_map(spec: DigitMapSpec | OwnMapSpec, config: LandscapeConfig, device: str,
             progress: Callable[[int, int, Landscape], None] | None = None) -> str:
    """Make (or find in the cache) the map of ``spec`` and return its path: a checkpoint's from held-out digits
    (``DigitMapSpec``), a user model's from its own images or noise (``OwnMapSpec``). Raises ``ValueError`` (bad
    settings, or the user's model raised), ``CheckpointError`` or ``LandscapeError``."""
    config.validate()
    if not 2 <= spec.n <= MAX_STARTS:
        raise ValueError(f"the number of starts must be between 2 and {MAX_STARTS}, got {spec.n}")
    model = load_model(spec.checkpoint, device)
    own = isinstance(spec, OwnMapSpec)
    if own != isinstance(model, UserEnergy):
        raise ValueError(f"{spec.checkpoint} is {'not ' if own else ''}a model of your own")
    # a checkpoint of an added folder is keyed by its own file (``map_path`` alone looks in the shipped folder)
    path = own_map_path(model, spec, config) if own else map_path(checkpoints.named(spec.checkpoint), config,
                                                                   spec.extra())
    if path.is_file():
        return str(path)
    evaluator = load_evaluator()
    if own:
        try:
            land = map_own(model, spec, config, device, evaluator if is_digit_model(model) else None, progress)
        except (RuntimeError, TypeError, IndexError) as exc:  # the user's own code raised on the map's batches
            raise ValueError(f"your model raised {type(exc).__name__} while mapping: {exc}") from None
    else:
        land = map_digits(model, spec, config, evaluator, progress)
    land.meta["made_on"] = "the Energy landscape page"
    if evaluator is None:
        land.meta["note"] = f"minima not scored: no {EVALUATOR} checkpoint"
    return str(save_map(land, path))


def is_own(model) -> bool:
    """A model of the user's own (``ebmviz run --model``): mapped by ``map_own``."""
    return isinstance(model, UserEnergy)


def now_spec(name: str, model, space: str, temperature: float, n: int, seed: int, layout: bool,
             start_from: str = "data") -> DigitMapSpec | OwnMapSpec:
    """The spec of a map the page makes: ``OwnMapSpec`` for a user model (image space, or latent through its
    decoder; PCA layout or none)."""
    if is_own(model):
        return OwnMapSpec(name, start_from, int(n), int(seed), "pca" if layout else "none", space, float(temperature))
    return DigitMapSpec(name, space, float(temperature), int(n), int(seed), "auto", "pca" if layout else "none")


def now_config(model, space: str, n_steps: int, refine: bool, k: int) -> LandscapeConfig:
    """The settings of a map the page makes. Image space counts end points within L2 distance 1 as one minimum
    for 784 pixels (``space_config``); for images of D numbers that distance grows as √(D/784), the same
    root-mean-square difference per number."""
    config = space_config(space, n_steps=int(n_steps), move_tol=3e-3, refine="tree" if refine else "none",
                          k_nearest=int(k))
    numbers = int(np.prod(model.image_shape))
    if space == "image" and numbers != int(np.prod(DIGIT_SHAPE)):
        config = replace(config, merge_tol=config.merge_tol * float(np.sqrt(numbers / np.prod(DIGIT_SHAPE))))
    return config


def map_now_lines(n: int, n_steps: int, k: int, refine: bool) -> list[str]:
    """"What to notice" of the Map now view, from its settings."""
    return [f"Each of the {n} starts descends for at most {n_steps} steps, each step one energy and gradient "
            "evaluation: the descent's cost grows with both.",
            f"Barriers are measured from each minimum to its {k} nearest (plus a spanning tree that keeps the graph "
            "connected): more is slower and closer to measuring every pair.",
            "Refined barriers (elastic bands) bend round hills, so they can only lower the graph's joins"
            + (" — this map refines them." if refine else "; this map keeps the straight lines.")]


def own_start_choice(name: str, model) -> str:
    """For a user model: where its map starts ("data" or "noise"), and what the map will be, in two sentences."""
    found = model_data(model)
    options = (["its own images"] if found is not None else []) + ["uniform noise"]
    pick = st.radio("Start from", options, horizontal=True, key=state.key("new_from"),
                    help="Its own images: a seeded choice of the images given with --data. Uniform noise: every "
                         "pixel drawn in [−1, 1]")
    shape = "×".join(map(str, model.image_shape))
    labels = found is not None and found[1] is not None and pick == "its own images"
    latent = ("With its decoder (`decode(z)`, `latent_dim`) it can also be mapped in latent space, "
              "U(z) = E(g(z))/T + ‖z‖²/2, from N(0, I) draws of z (the start choice is then for image space only). "
              if hasattr(model, "generator") else
              "A latent-space map needs a decoder: give your module `decode(z)` and an int `latent_dim`. ")
    st.caption(f"**{name}** is your own model: it is mapped in image space, E(x) on its {shape} pixels. " + latent
               + ("Its minima are read by the MNIST evaluator, as a shipped model's are." if
                              is_digit_model(model) else
                              "The MNIST evaluator reads 1×28×28 digits only, so its minima are unlabelled"
                              + ("; the starts keep your data's labels, so each basin still has a commonest label "
                                 "and a purity." if labels else ".")))
    return "data" if pick == "its own images" else "noise"


def growing(bar, box) -> Callable[[int, int, Landscape], None]:
    """``progress`` for ``make_map``: the bar says the phase and the minima so far, ``box`` redraws the partial
    graph at most once a second."""
    last = [0.0]

    def progress(done, total, partial):
        off = ~np.eye(partial.n_minima, dtype=bool)
        phase = "barriers" if np.isfinite(partial.barrier_linear[off]).any() else "descending"
        bar.progress(done / total, f"{phase}: {partial.n_minima} minima so far")
        if time.monotonic() - last[0] > 1.0 and partial.n_minima:
            last[0] = time.monotonic()
            box.plotly_chart(disconnectivity_figure(draw_tree(partial.tree), partial.energy, None, None,
                                                    partial.n_starts, height=360), key=state.key(f"grow_{done}"))
    return progress


def digits_refused(view: MapView) -> list[str] | None:
    """"Your digit" descends MNIST's digits: for a map of other images, the three lines that say so (the first is
    shown on the page), else None."""
    if tuple(view.image_shape) == DIGIT_SHAPE:
        return None
    shape = "×".join(map(str, view.image_shape))
    return [f"“Your digit” descends a 1×28×28 digit, and this map is of {view.land.meta.get('checkpoint')}'s "
            f"{shape} images: pick a map of digits, or look at this one in the graph and the layout.",
            f"This map has {view.land.n_minima} minima from {len(view.land.assignment)} starts.",
            "Its pictures are its minima themselves: the map is in image space."]


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
    shape = "×".join(map(str, view.image_shape))
    space = (f"latent space of **{m.get('checkpoint')}**'s generator, U(z) = E(g(z))/T + ‖z‖²/2 at T = "
             f"**{m.get('temperature', 1):g}**, starting codes: {m.get('codes_from', 'fitted')}"
             if view.latent else f"image space of **{m.get('checkpoint')}**, E(x) on {shape} pixels in [−1, 1]")
    used = "elastic-band (refined) barriers on the tree's edges, linear elsewhere" if np.isfinite(
        view.land.barrier_refined[~np.eye(view.land.n_minima, dtype=bool)]).any() else "linear barriers"
    unlabelled = (" The minima are unlabelled: the MNIST evaluator reads 1×28×28 digits only"
                  + (", and the starts carry the data's labels (the basins' commonest label and purity)."
                     if view.land.labels is not None else ".")) if view.digit is None and "own_model" in m else ""
    return (f"{space}; {len(view.land.assignment)} starts ({m.get('starts', 'digits')}); the graph uses {used}."
            + unlabelled)


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
