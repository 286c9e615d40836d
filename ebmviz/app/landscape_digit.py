"""A digit of your own on a stored map: its steepest descent with the map's settings (from its latent code in a
latent map), where it lands (``landscape.placing``: a minimum of the map, the valley of one, or a valley the map
lacks), and what happened, in words with the numbers, for the page and its "What to notice".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz.app.landscape_maps import MapView, map_model, open_version, pictures
from ebmviz.landscape import codes_for
from ebmviz.landscape.minima import descend
from ebmviz.landscape.placing import Placement, place


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
    view = open_version(name, mtime)
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
    return DigitDescent(frames=pictures(decode, d.path[keep, 0]), energy=d.path_energy[keep, 0].double().numpy(),
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
        return (f"it lies above the water ({e} = {wet:.2f}), in no basin: raise the threshold to {wet:.2f} to put it "
                "under water" + ("" if joins is None or joins <= wet else f", to {joins:.2f} to join it to the map's "
                                                                            "basins"))
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
    where = f"at the threshold {threshold:.2f} {where_at(view, p, threshold).replace('**', '')}."
    return [first,
            f"{single} of the map's {land.n_minima} minima were reached by one start only: the map is a sample of "
            "the valleys, and a new digit often finds one of its own.",
            where[:1].upper() + where[1:] if p.kind == "minimum" else "Placed by its barriers, not by distance: "
            + where]
