"""The energy-landscape page's cached work and widgets: stored maps with their drawing and verdicts, paths between
two minima, a digit's descent, and new maps made on request (written to the map cache, so made once); the map
picker, the basin threshold and the two selected minima.

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
from ebmviz.analysis import metrics
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.app.cache import EVALUATOR, load_evaluator, load_model
from ebmviz.app.state import PageState
from ebmviz.images import to_u8
from ebmviz.landscape import (
    Landscape,
    LandscapeError,
    codes_for,
    load_map,
    map_energy,
    map_path,
    save_map,
    space_config as space_config,
)
from ebmviz.landscape.cuts import Basins as Basins, CutScan, DefaultCut, basins_at as basins_at, default_cut, scan_cuts
from ebmviz.landscape.digits import DigitMapSpec, map_digits
from ebmviz.landscape.graph import TreeDrawing, draw_tree, merge_level as merge_level, route
from ebmviz.landscape.minima import descend
from ebmviz.landscape.paths import band_between, polyline_profile
from ebmviz.landscape.placing import FLAT, Placement, place
from ebmviz.landscape.result import LandscapeConfig
from ebmviz.landscape.storage import maps_dir

MAX_STARTS = 500  # most starts of a map made on the page (latent space: about 2 minutes on 2 cores)


def available_maps() -> dict[str, str]:
    """Stored maps, label -> path: shipped ones (``maps/<checkpoint>-<space>``) first, then those made on the page
    (``maps/cache/``)."""
    folder = maps_dir()
    shipped = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    made = sorted((folder / "cache").glob("*.safetensors")) if (folder / "cache").is_dir() else []
    return {p.stem: str(p) for p in shipped} | {f"{p.stem} (made here)": str(p) for p in made}


@dataclass(frozen=True)
class MapView:
    """A stored map with what the page draws from it."""

    name: str  # the map file's path
    mtime: float  # the file's version (keys the caches below)
    land: Landscape
    drawing: TreeDrawing
    digit: np.ndarray | None  # (M,) the evaluator's digit for each minimum's image, or None
    confidence: np.ndarray | None  # (M,)
    seconds_to_open: float  # reading the file and rebuilding and laying out the tree
    scan: CutScan  # every cut level with its basins and purity (``landscape.cuts``)
    cut: DefaultCut  # the level the page opens at: the purest of the cuts with 10–30 basins

    @property
    def latent(self) -> bool:
        return self.land.meta.get("space") == "latent"

    @property
    def energy_label(self) -> str:
        return "U(z)" if self.latent else "E(x)"

    def confident_share(self) -> float | None:
        return None if self.confidence is None else float((self.confidence > metrics.CONFIDENT).mean())

    def same_digit_share(self) -> float | None:
        """Share of labelled starts whose minimum the evaluator reads as the start's own digit."""
        if self.digit is None or self.land.labels is None:
            return None
        ok = self.land.assignment >= 0
        return float((self.digit[self.land.assignment[ok]] == self.land.labels[ok]).mean())

    def levels(self) -> np.ndarray:
        """Every level where the basins change: the minima's energies and the tree's merge levels, ascending."""
        return self.scan.levels

    def default_threshold(self) -> float:
        """The level the page opens at (``cuts.default_cut``)."""
        return self.cut.level

    def flat_joins(self) -> int:
        """Joins of the graph with no rise: the barrier is the higher minimum's own energy, so that minimum runs
        downhill into the other (a point where a descent stopped on a slope or a flat floor)."""
        t, e = self.land.tree, self.land.energy
        rise = [d["energy"] - max(e[d["pair"][0]], e[d["pair"][1]]) for _, d in t.nodes(data=True)
                if d["kind"] == "merge"]
        spread = float(e.max() - e.min()) if len(e) > 1 else 1.0
        return int(sum(r <= FLAT * spread for r in rise))

    def merges(self) -> int:
        return self.land.n_minima - len(self.land.tree.graph["roots"])

    def focus(self, threshold: float, few: int = 3) -> tuple[float, float]:
        """The energies the graph shows at first: from the lowest minimum to where the basins above the opening
        cut have merged into ``few`` (and at least to ``threshold``), with 5% to spare. The highest minima of a map
        often climb far above its basins, which would squeeze them to a line."""
        scan, i = self.scan, self.cut.index
        merged = np.flatnonzero((scan.basins <= few) & (np.arange(len(scan.levels)) >= i))
        lo, hi = float(scan.levels[0]), float(scan.levels[merged[0]] if len(merged) else scan.levels[-1])
        hi = min(max(hi, threshold), float(scan.levels[-1]))
        pad = 0.05 * max(hi - lo, 1e-9)
        return lo - pad, hi + pad

    def basin_of(self, threshold: float) -> tuple[list[np.ndarray], np.ndarray]:
        """The basins at ``threshold`` and (M,) each minimum's basin index (−1: above the threshold, in none)."""
        basins = self.land.basins(threshold)
        of = np.full(self.land.n_minima, -1, dtype=np.int64)
        for k, group in enumerate(basins):
            of[group] = k
        return basins, of


def cut_reason(view: MapView) -> str:
    """Why the page opens at its cut, with the numbers (``cuts.default_cut``)."""
    scan, cut, e = view.scan, view.cut, view.energy_label
    i, (lo, hi) = cut.index, cut.wanted
    span = f"from {e} = {scan.levels[cut.among].min():.2f} to {scan.levels[cut.among].max():.2f}"
    inside = lo <= scan.basins[i] <= hi
    among = (f"Of the cut levels that leave {lo}–{hi} basins ({span})" if inside else
             f"This map never has {lo}–{hi} basins; of the levels with the nearest count, {scan.basins[i]} ({span})")
    if cut.rule == "purity":
        return (f"{among}, this one sorts the most starts by digit: its **{scan.basins[i]} basins** hold "
                f"{scan.wet[i]} of the {scan.n_starts} starts, and {scan.sorted[i]} of those carry their basin's "
                f"commonest digit: **purity {scan.sorted[i]}/{scan.n_starts} = {scan.purity[i]:.2f}**. A lower cut "
                f"leaves more minima above the water (their starts count as unsorted); a higher one pours different "
                f"digits into one basin.")
    return (f"{among}, this one has the most starts in basins ({scan.wet[i]} of {scan.n_starts}); the map has no "
            f"labels, so purity cannot choose.")


def _verdict(land: Landscape) -> tuple[np.ndarray | None, np.ndarray | None]:
    q = land.meta.get("minima_quality") or {}
    if len(q.get("labels", [])) == land.n_minima:
        return np.asarray(q["labels"], dtype=np.int64), np.asarray(q["confidence"], dtype=np.float64)
    ev = load_evaluator()
    if ev is None or land.images is None:
        return None, None
    pred = metrics.classify(ev, torch.from_numpy(land.images))
    return pred.label, pred.confidence


@st.cache_resource(show_spinner="Opening the map…", max_entries=8)
def _open(name: str, mtime: float) -> MapView:
    t0 = time.perf_counter()
    land = load_map(name)
    drawing = draw_tree(land.tree)
    seconds = time.perf_counter() - t0
    digit, confidence = _verdict(land)
    scan = scan_cuts(land)
    return MapView(name, mtime, land, drawing, digit, confidence, seconds, scan, default_cut(scan))


def open_map(path: str) -> MapView:
    """The stored map at ``path``, cached per version of its file. Raises ``LandscapeError``."""
    if not Path(path).is_file():
        raise LandscapeError(path, "no such map")
    return _open(path, Path(path).stat().st_mtime)


def map_model(view: MapView, device: str):
    """(energy, decode, model) of the map's checkpoint in its space. Raises CheckpointError or ValueError."""
    meta = view.land.meta
    if "checkpoint" not in meta:
        raise ValueError("this map does not say which checkpoint it was made from")
    model = load_model(meta["checkpoint"], device)
    energy, decode = map_energy(model, meta.get("space", "image"), float(meta.get("temperature", 1.0)))
    return energy, decode, model


def _pictures(decode, states: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_u8((decode(states) if decode is not None else states).float().cpu().numpy())


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
    return PathProfile(p.distance, p.energy, _pictures(decode, p.pick(n_pictures)), minima, time.perf_counter() - t0)


@st.cache_data(show_spinner="Scanning the straight segment and the tree's route…", max_entries=32)
def straight_and_route(name: str, mtime: float, i: int, j: int, n_pictures: int = 10) -> dict[str, PathProfile]:
    """The straight segment i–j (the paper's linear barrier) and the route of straight pieces through the minima
    the tree joins them by (its highest point is the graph's join level where those links are linear barriers, and
    above it where they were refined); only the straight segment when i and j never join."""
    view, t0 = _open(name, mtime), time.perf_counter()
    x = torch.from_numpy(view.land.minima)
    out = {"straight segment": _profile(view, x[[i, j]], [i, j], t0, n_pictures)}
    steps = route(view.land.tree, i, j)
    if steps is not None:
        out["tree route"] = _profile(view, x[steps], steps, time.perf_counter(), n_pictures)
    return out


@st.cache_data(show_spinner="Relaxing an elastic band between the two minima…", max_entries=32)
def elastic_band(name: str, mtime: float, i: int, j: int, n_pictures: int = 10) -> PathProfile:
    """A climbing-image nudged elastic band from the straight segment i–j, relaxed with the map's settings."""
    view, t0 = _open(name, mtime), time.perf_counter()
    energy, _, _ = map_model(view, "cpu")
    return _profile(view, band_between(energy, view.land, i, j), [i, j], t0, n_pictures)


@dataclass(frozen=True)
class DigitDescent:
    """One digit descending the map's energy, and where it ends up on the map (``landscape.placing``)."""

    frames: np.ndarray  # (F, 1, 28, 28) uint8 pictures along the descent (decoded codes in a latent map)
    energy: np.ndarray  # (F,) energy at each recorded state
    steps: np.ndarray  # (F,) descent iteration of each frame (the last: where it stopped)
    end: np.ndarray  # (1, ...) float32, where the descent stopped in the mapped space
    placement: Placement
    start: int | None  # the digit's index among the map's starts, when it was one of them
    start_distance: float | None  # then how far this descent stopped from the minimum the map gave that start


def map_start(view: MapView, index: int | None) -> int | None:
    """Which of the map's starts test digit ``index`` was (None: not one of them, or the map does not say)."""
    if index is None:
        return None
    return next((k for k in range(len(view.land.assignment)) if _start_index(view, k) == index), None)


@st.cache_data(show_spinner="Descending…", max_entries=16)
def descend_digit(name: str, mtime: float, image: np.ndarray, index: int | None = None,
                  n_frames: int = 40) -> DigitDescent:
    """Steepest descent of one digit (1, 1, 28, 28) float in [−1, 1] with the map's settings, from its latent code
    in a latent map, then its place on the map; on the CPU, where the map's arrays are. ``index``: its place in
    the test split, to say when it was one of the map's starts."""
    view = _open(name, mtime)
    land, c = view.land, view.land.config
    energy, decode, model = map_model(view, "cpu")
    x = torch.from_numpy(image)
    if view.latent:
        method = "infer" if str(land.meta.get("codes_from", "")).startswith("inference") else "fit"
        x, _ = codes_for(model, x, method, steps=int(land.meta.get("fit_steps", 400)),
                         inits=int(land.meta.get("fit_inits", 4)), seed=int(land.meta.get("seed", 0)))
    d = descend(energy, x, n_steps=c.n_steps, first_move=c.first_move, move_tol=c.move_tol, grad_tol=c.grad_tol,
                temperature=c.temperature, clamp=c.clamp, seed=c.seed, record_every=1)
    keep = np.unique(np.linspace(0, len(d.path) - 1, n_frames).round().astype(int))  # ≤ n_frames, ends kept
    start = map_start(view, index)
    gone = None
    if start is not None and land.assignment[start] >= 0:
        gone = float((torch.from_numpy(land.minima[land.assignment[start]]).flatten() - d.x.flatten()).norm())
    return DigitDescent(frames=_pictures(decode, d.path[keep, 0]), energy=d.path_energy[keep, 0].double().numpy(),
                        steps=keep, end=d.x.numpy(), placement=place(energy, land, d.x, float(d.energy[0])),
                        start=start,
                        start_distance=gone)


def where_at(view: MapView, p: Placement, threshold: float) -> str:
    """Where a placed end point lies at ``threshold``: in one of the map's basins, above the water, or in a lake of
    its own (a phrase: "it is in basin 3, …")."""
    land, e = view.land, view.energy_label
    basins, basin_of = view.basin_of(threshold)
    k = p.basin(land, threshold, basin_of)
    if k is not None:
        return (f"it is in **basin {k}**, with {len(basins[k])} minima and {int(land.n_starts[basins[k]].sum())} of "
                f"the map's starts")
    wet, joins = (float(land.energy[p.nearest]), None) if p.same_minimum else (p.energy, p.joins_at(land))
    if threshold < wet:
        return (f"it lies above the water ({e} = {wet:.2f}), in no basin: at {wet:.2f} it goes under"
                + ("" if joins is None or joins <= wet else f", and at {joins:.2f} it joins the map's basins"))
    return f"it is under water in a lake of its own, not one of the map's basins: it joins them at {e} = {joins:.2f}"


def digit_story(view: MapView, d: DigitDescent, threshold: float) -> list[str]:
    """What happened to the digit, in words with the numbers: where it stopped, what of the map that is, and
    where it lies at ``threshold`` (one paragraph each)."""
    land, p, e = view.land, d.placement, view.energy_label
    m, tol = land.n_minima, f"{p.merge_tol:g}"
    out = []
    if d.start is not None:
        a = int(land.assignment[d.start])
        out.append(f"This digit was one of the map's {len(land.assignment)} starts (start {d.start}): when the map "
                   f"was made, its descent reached **minimum {a}**. Descended again here, alone, it stops "
                   f"{d.start_distance:.2f} from there.")
    if p.kind == "minimum":
        out.append(f"It reaches **minimum {p.nearest}**: it stopped at {e} = {p.energy:.2f}, {p.distance:.2f} from "
                   f"that minimum, within the {tol} the map counts as one minimum.")
    elif p.kind == "valley":
        v, hi = p.valley, max(p.energy, p.valley_energy)
        side = (f"minimum {v} lies higher: the map's descent stopped on this valley's slope" if p.valley_energy >
                p.energy else "it stopped on the slope or the floor above minimum " + str(v))
        out.append(f"It stops at {e} = {p.energy:.2f} in the valley of **minimum {v}** ({e} = {p.valley_energy:.2f}),"
                   f" {p.valley_distance:.2f} from it. That is further than the {tol} within which the map counts two "
                   f"end points as one minimum, so the map has no leaf for this point; but the straight line between "
                   f"them rises no higher than the higher end ({e} = {hi:.2f}, at most {p.valley_rise:.3f} above it): "
                   f"no barrier separates them, and {side}. A descent stops where its steps shrink below a set "
                   f"length, and on a flat valley floor two descents can stop apart.")
    else:
        single = int((land.n_starts == 1).sum())
        out.append(f"It stops at {e} = {p.energy:.2f} in a valley the map does not have: the nearest of the map's "
                   f"{m} minima (minimum {p.nearest}) is {p.distance:.2f} away, further than the {tol} within which "
                   f"the map counts two end points as one minimum, and the straight line to each of the {p.checked} "
                   f"nearest crosses a hill. The lowest of those passes, {e} = {p.barrier:.2f} ({p.climb:.2f} above "
                   f"where it stopped), leads to **minimum {p.via}**: there this valley would join the graph. New "
                   f"valleys are common here: {single} of the map's {m} minima were reached by one start only.")
    out.append(f"At the threshold {threshold:.2f} {where_at(view, p, threshold)}.")
    return out


def map_starts(view: MapView, n_digits: int) -> list[int]:
    """The test digits (indices under ``n_digits``) that were the map's starts, in the map's order."""
    return [i for k in range(len(view.land.assignment)) if (i := _start_index(view, k)) is not None and i < n_digits]


def _start_index(view: MapView, k: int) -> int | None:
    shown = view.land.meta.get("test_index")
    if not isinstance(shown, list) or view.land.meta.get("starts") != "held-out MNIST test digits":
        return None
    return int(shown[k]) if k < len(shown) else None


def digit_notice(view: MapView, d: DigitDescent, threshold: float) -> list[str]:
    """Three lines for "What to notice" after a digit's descent, from its numbers."""
    land, p, e = view.land, d.placement, view.energy_label
    first = {"minimum": f"Your digit stopped {p.distance:.2f} from minimum {p.nearest}, within the map's "
                        f"{p.merge_tol:g}: the map already had this valley and this minimum.",
             "valley": f"Your digit stopped {p.valley_distance:.2f} from minimum {p.valley}, with no barrier between "
                       f"them: the same valley, but not the same point, so the map has no leaf for it.",
             "new": f"Your digit found a valley the map does not have: its lowest pass to the map, {e} = "
                    f"{p.barrier:.2f}, lies {p.climb:.2f} above where it stopped."}[p.kind]
    single = int((land.n_starts == 1).sum())
    return [first,
            f"{single} of the map's {land.n_minima} minima were reached by one start only: the map is a sample of "
            "the valleys, and a new digit often finds one of its own.",
            f"Placed by its barriers, not by distance: at the threshold {threshold:.2f} "
            f"{where_at(view, p, threshold).replace('**', '')}."]


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
