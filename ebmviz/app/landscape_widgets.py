"""Widgets of the energy-landscape page: the map picker, the basin threshold, the two selected minima.

Session keys start with ``P``. The selection (minima A and B) lives in plain keys that outlive the views' widgets:
a click on the graph or the UMAP, or a typed number, changes it; the number inputs are set from it on each run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ebmviz.app import landscape as lc
from ebmviz.landscape import LandscapeError

P = "ls"
SEL = (f"{P}_sel_a", f"{P}_sel_b")  # the two selected minima
INPUTS = (f"{P}_a", f"{P}_b")  # the number inputs that show and change them


def pick_map(maps: dict[str, str], label: str, key: str, default: int = 0) -> lc.MapView | None:
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
        return lc.open_map(maps[label])
    except LandscapeError as exc:
        st.error(f"Cannot open this map — {exc.reason}. Pick another; the page keeps working.")
        return None


def describe(view: lc.MapView) -> str:
    """Which energy, space, starts and barriers a map uses, in a sentence."""
    m = view.land.meta
    space = (f"latent space of **{m.get('checkpoint')}**'s generator, U(z) = E(g(z))/T + ‖z‖²/2 at T = "
             f"**{m.get('temperature', 1):g}**, starting codes: {m.get('codes_from', 'fitted')}"
             if view.latent else f"image space of **{m.get('checkpoint')}**, E(x) on pixels in [−1, 1]")
    used = "elastic-band (refined) barriers on the tree's edges, linear elsewhere" if np.isfinite(
        view.land.barrier_refined[~np.eye(view.land.n_minima, dtype=bool)]).any() else "linear barriers"
    return f"{space}; {len(view.land.assignment)} starts ({m.get('starts', 'digits')}); the graph uses {used}."


def selected(view: lc.MapView) -> tuple[int, int]:
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


def threshold_slider(view: lc.MapView) -> float:
    """The basin threshold: a slider, and a box to type an exact level (a level outside the map's range is a
    message and is clamped to it). Its default leaves about 20 basins."""
    levels = view.levels()
    lo, hi = float(levels[0]), float(levels[-1])
    stem = Path(view.name).stem
    level, slide, typed, note = (f"{P}_{k}_{stem}" for k in ("level", "thr", "thr_typed", "thr_note"))
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


def minimum_caption(view: lc.MapView, k: int) -> str:
    """Minimum k's energy, starts and the evaluator's reading."""
    d = "" if view.digit is None else f", evaluator {view.digit[k]} ({100 * view.confidence[k]:.0f}%)"
    return f"minimum {k}: {view.energy_label} = {view.land.energy[k]:.2f}, {view.land.n_starts[k]} starts{d}"


def pair_inputs(view: lc.MapView) -> tuple[int, int]:
    """Number inputs showing A and B; typing a number selects that minimum."""
    m = view.land.n_minima
    for key, value in zip(INPUTS, selected(view), strict=True):
        st.session_state[key] = value
    c = st.columns(2)
    for col, label, key, sel in zip(c, ("Minimum A", "Minimum B"), INPUTS, SEL, strict=True):
        col.number_input(label, 0, m - 1, key=key, on_change=lambda k=key, s=sel: st.session_state.update({s: int(
            st.session_state[k])}), help="Or click a leaf in the graph: it becomes A, and A becomes B")
    return selected(view)
