"""Debug a sampler: the phase map's settings, its run batch by batch into session state, and the rows its figure and
table show; the link that opens a cell's setting on the Langevin page."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ebmviz.analysis.chain_health import saturation_share
from ebmviz.analysis.metrics import CONFIDENT
from ebmviz.analysis.phase_map import (
    SATURATED_FRACTION as SATURATED_FRACTION,
    STALLED_MOVE as STALLED_MOVE,
    VERDICTS as VERDICTS,
    Cell as Cell,
    PhaseSpec as PhaseSpec,
    log_grid as log_grid,
    phase_map,
)
from ebmviz.app import cache
from ebmviz.app.state import PageState, Slot
from ebmviz.models import Model
from ebmviz.sampling import LangevinConfig

MAX_CELLS = 64  # most cells of one map (8 × 8)
MAX_MAP_WORK = 2_000_000  # most chain-steps of one map: cells × chains × steps (6 × 6 × 16 × 200 is 115,200)
COLOUR_BY = {  # what colours a moving cell: name -> (Cell field, the colour bar's title, fixed range or None)
    "quality": ("quality", "share read as digits", (0.0, 1.0)),
    "diversity": ("diversity", "mean distance between chains", None),
    "saturation": ("saturation", "share of pixels at the walls", (0.0, 1.0)),
    "energy at the end": ("energy_end", "median final energy", None),
    "R-hat": ("rhat", "split R-hat of the energy", None),
}


@dataclass(frozen=True)
class MapKey:
    """Everything that determines a map: a new key means a new map."""

    model: str
    device: str
    spec: PhaseSpec
    start: str
    seed: int


class DebugState(PageState):
    key_ = Slot(None)  # the MapKey of ``cells``
    cells = Slot(None)  # the finished Cells of that map, in run order
    selected = Slot(None)  # (i, j) of the cell on show


def spec_for(model: Model, s_range: tuple[float, float], s_count: int, sigma_range: tuple[float, float],
             sigma_count: int, chains: int, steps: int) -> PhaseSpec:
    """The map of ``model`` over these ranges: its own clip and clamp, its own (s, σ) marked."""
    base = LangevinConfig.from_dict(model.meta.get("sampler", {}))
    return PhaseSpec(base, log_grid(*s_range, s_count), log_grid(*sigma_range, sigma_count), chains, steps)


def default_ranges(model: Model) -> tuple[tuple[float, float], tuple[float, float]]:
    """s from a hundredth of the model's own to ten times it; σ from a tenth of its own to a hundred times it."""
    base = LangevinConfig.from_dict(model.meta.get("sampler", {}))
    s, sigma = base.step_size, base.noise_std if base.noise_std > 0 else 1e-3
    return (float(f"{s / 100:.3g}"), float(f"{s * 10:.3g}")), (float(f"{sigma / 10:.3g}"), float(f"{sigma * 100:.3g}"))


def work_message(spec: PhaseSpec) -> str | None:
    """A message when the map is over the page's caps (cells, chain-steps), else None."""
    cells = len(spec.step_sizes) * len(spec.noises)
    work = cells * spec.n_chains * spec.n_steps
    if cells > MAX_CELLS:
        return f"{cells} cells is over the page's cap of {MAX_CELLS}: use fewer values of s or σ."
    if work > MAX_MAP_WORK:
        return (f"{cells} cells × {spec.n_chains} chains × {spec.n_steps} steps = {work:,} chain-steps is over the "
                f"page's cap of {MAX_MAP_WORK:,}: lower the chains or the steps.")
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def reference_share(name: str, device: str) -> float:
    """The share of pixels at the walls in the model's own images (at most 1,000 of them); 0 without images."""
    found = cache.model_data(cache.load_model(name, device))
    return 0.0 if found is None else float(saturation_share(found[0][:1000]).mean())


def judge_for(model: Model) -> Callable[[np.ndarray], float | None] | None:
    """For a 28×28 digit model with the evaluator: the share of a cell's final images read as a digit with at least
    90% confidence. None elsewhere (the map is then coloured by diversity)."""
    if not cache.is_digit_model(model) or cache.load_evaluator() is None:
        return None

    def judge(images_u8: np.ndarray) -> float | None:
        pred = cache.evaluate_frames(images_u8)
        return None if pred is None else float((pred.confidence >= CONFIDENT).mean())

    return judge


def run_map(state: DebugState, key: MapKey, model: Model, on_batch: Callable[[list[Cell]], None]) -> None:
    """Run the map of ``key`` into ``state``, calling ``on_batch(cells so far)`` after each batch. Raises ValueError
    when the start cannot be served (the page shows it)."""
    x0 = cache.starts(key.start, key.spec.n_chains, key.seed, key.model, key.device).to(key.device)
    state.key_, state.cells, state.selected = key, [], None
    judge = judge_for(model)
    for batch in phase_map(model, x0, key.spec, key.seed, reference=reference_share(key.model, key.device),
                           judge=judge):
        state.cells = [*state.cells, *batch]
        on_batch(state.cells)


def _number(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def hover(c: Cell) -> str:
    """One cell's numbers, for the map's hover box."""
    quality = "" if c.quality is None else f"<br>read as digits: {100 * c.quality:.0f}%"
    return (f"<b>{c.verdict}</b> · s = {c.step_size:g}, σ = {c.noise_std:g}, T = {c.temperature:.2g}"
            f"<br>diverged: {100 * c.diverged:.0f}% of chains · at the walls: {100 * c.saturation:.0f}% of pixels"
            f"<br>moved (RMS pixel change): {c.moved:.3f} · energy {_number(c.energy_start)} → {_number(c.energy_end)}"
            f"<br>R-hat {_number(c.rhat)} · ESS {_number(c.ess, '.0f')}{quality}"
            f"<br>diversity {_number(c.diversity)} · near-duplicates {c.duplicates}")


def figure_cells(cells: list[Cell], colour_by: str) -> list[dict]:
    """The rows ``phase_map_figure`` draws: each cell's place, verdict, colour value and hover text."""
    field = COLOUR_BY[colour_by][0]
    rows = []
    for c in cells:
        v = getattr(c, field)
        rows.append(dict(i=c.i, j=c.j, verdict=c.verdict, hover=hover(c),
                         value=float("nan") if v is None else float(v)))
    return rows


def colour_choices(cells: list[Cell] | None, digits: bool) -> list[str]:
    """What can colour the moving cells: quality only where the evaluator judged the cells."""
    judged = digits and (not cells or cells[0].quality is not None)
    return [k for k in COLOUR_BY if k != "quality" or judged]


def verdict_counts(cells: list[Cell]) -> str:
    """"3 diverged · 10 saturated · …": how many cells got each verdict."""
    counts = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    return " · ".join(f"{n} {v}" for v, n in counts.items() if n)


def langevin_link(name: str, cell: Cell, spec: PhaseSpec, start: str) -> dict[str, str]:
    """The query string of the Langevin page with this cell's setting: the same model, start, chains and steps, ULA
    with the cell's s and σ and the map's clip and clamp (the names of that page's link)."""
    base = spec.base
    return {"model": name, "start": start, "chains": str(spec.n_chains), "sampler": "ULA",
            "steps": str(spec.n_steps), "record": str(max(1, spec.n_steps // 50)), "step": f"{cell.step_size:g}",
            "noise": f"{cell.noise_std:g}", "clip_on": "1" if base.grad_clip is not None else "0",
            "clip": f"{base.grad_clip or 0.03:g}", "clamp": "1" if base.clamp is not None else "0"}


def shipped_position(spec: PhaseSpec) -> str:
    """Where the model's own setting falls on the map, in words."""
    s, sigma = spec.base.step_size, spec.base.noise_std
    inside = spec.step_sizes[0] <= s <= spec.step_sizes[-1] and spec.noises[0] <= sigma <= spec.noises[-1]
    i = int(np.argmin([abs(math.log(v / s)) for v in spec.step_sizes]))
    j = int(np.argmin([abs(math.log(v / sigma)) for v in spec.noises])) if sigma > 0 else 0
    where = "inside the map" if inside else "outside the map's ranges"
    return (f"The ★ is the model's own setting, s = {s:g}, σ = {sigma:g} (T = {spec.base.temperature:.2g}), "
            f"{where}; the nearest cell is s = {spec.step_sizes[i]:g}, σ = {spec.noises[j]:g}.")


def pick_square(state: DebugState) -> None:
    """A click on the map selects that square (runs before the rerun, so the map outlines it at once)."""
    points = st.session_state[state.key("map")].selection.get("points", [])
    picked = [p.get("customdata") for p in points]
    picked = [p for p in picked if isinstance(p, list) and len(p) == 2]
    if picked:
        state.selected = (int(picked[0][0]), int(picked[0][1]))


def nearest(cells: list[Cell], i: int, j: int) -> Cell | None:
    return next((c for c in cells if c.i == i and c.j == j), None)
