"""Where a new descent ends up on a stored map (data only).

A digit that was not among the map's starts descends with the map's settings and stops somewhere. The map's own
test for "the same minimum" is distance: end points within ``merge_tol`` of each other are one minimum. A new
digit usually fails it: on a map where nearly every start found a minimum of its own, a new start does too. To say
where it is, we measure what the map measures between its minima, the linear barrier (the highest energy on the
straight segment, ``barriers.segment_energies``), from the end point to its ``k`` nearest minima, as ADELM places
a new minimum by the barrier to the basins already found (Hill, Nijkamp & Zhu 2019):

- the end point joins the map's graph through the minimum ``via`` with the lowest barrier, at that level (single
  linkage, as the map's own tree);
- a minimum whose barrier rises no higher than the higher of the two ends (under ``FLAT`` of the map's energy
  range above it) shares the end point's valley: nothing separates them, one runs downhill into the other. A
  descent stops where its steps shrink below the stopping length, which on a flat floor can be short of the
  lowest point, so two descents into one valley can stop apart (the map's own graph has many such joins);
- with no such minimum, the end point sits in a valley the map does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.landscape.barriers import segment_energies
from ebmviz.landscape.result import Landscape
from ebmviz.sampling import Energy

FLAT = 1e-3  # a climb under this share of the map's energy range is none (float noise, a flat floor)


@dataclass(frozen=True)
class Placement:
    """A descent's end point on a map."""

    energy: float  # E where the descent stopped
    nearest: int  # the map's minimum closest to the end point (L2 in the mapped space)
    distance: float  # how far that minimum is
    merge_tol: float  # the map's distance for "the same minimum"
    via: int  # the minimum with the lowest barrier from the end point (among the ``checked`` nearest)
    barrier: float  # that barrier B_via: the level at which the end point joins the map's graph
    valley: int  # the nearest minimum with no barrier between it and the end point, −1 when none
    valley_energy: float  # its energy (NaN when none)
    valley_distance: float  # its distance from the end point (NaN when none)
    valley_rise: float  # how far the segment to it rises above the higher end (NaN when none; ≤ ``flat``)
    flat: float  # the rise below which there is no barrier (``FLAT`` × the map's energy range)
    checked: int  # how many of the nearest minima were measured

    @property
    def same_minimum(self) -> bool:
        """Within the map's merge distance of a minimum: the map would have counted it as that minimum."""
        return self.distance <= self.merge_tol

    @property
    def climb(self) -> float:
        """How far above its stopping point the lowest barrier rises (≥ 0)."""
        return max(self.barrier - self.energy, 0.0)

    @property
    def same_valley(self) -> bool:
        """Some minimum of the map shares the end point's valley (``valley``)."""
        return self.valley >= 0

    @property
    def kind(self) -> str:
        """"minimum" (reached a minimum of the map), "valley" (stopped in the valley of one), "new" (in a valley
        the map does not have)."""
        return "minimum" if self.same_minimum else "valley" if self.same_valley else "new"

    def joins_at(self, land: Landscape) -> float:
        """The level at which the end point is in one basin with the map's minima: its own minimum's energy when
        it reached one, else the barrier."""
        return float(land.energy[self.nearest]) if self.same_minimum else self.barrier

    def basin(self, land: Landscape, threshold: float, basin_of: np.ndarray) -> int | None:
        """Index of the map's basin at ``threshold`` (``basin_of`` (M,): each minimum's basin, −1 for none) the end
        point lies in, or None: above the threshold, or below it in a lake of its own."""
        k = self.nearest if self.same_minimum else self.via
        return int(basin_of[k]) if self.joins_at(land) <= threshold and basin_of[k] >= 0 else None


@torch.no_grad()
def place(energy: Energy, land: Landscape, end: torch.Tensor, end_energy: float, k: int | None = None) -> Placement:
    """Place the end point ``end`` (1, ...) of a descent, at energy ``end_energy``, on ``land``: its nearest minimum
    and the lowest linear barrier to its ``k`` nearest minima (default: the map's ``k_nearest``), each segment
    sampled at the map's ``n_path`` points."""
    c = land.config
    minima = torch.from_numpy(land.minima).to(end.dtype)
    dist = (minima.flatten(1) - end.flatten(1)).norm(dim=1).double().numpy()  # (M,)
    k = min(k or c.k_nearest, land.n_minima)
    near = np.argsort(dist, kind="stable")[:k]
    e = segment_energies(energy, end.expand(k, *end.shape[1:]), minima[near], c.n_path, c.batch_size)  # (k, n_path)
    b = e.max(dim=1).values.double().numpy()
    higher = np.maximum(land.energy[near], end_energy)  # (k,) the higher end of each segment
    b = np.maximum(b, higher)  # a segment holds its ends, so B ≥ both (up to float noise)
    j = int(np.lexsort((dist[near], b))[0])  # lowest barrier, the nearer on a tie
    spread = float(land.energy.max() - land.energy.min()) if land.n_minima > 1 else 1.0
    flat = FLAT * max(spread, 1e-12)
    rise = b - higher
    same = np.flatnonzero(rise <= flat)  # in distance order: the first is the nearest
    v = int(near[same[0]]) if len(same) else -1
    nan = float("nan")
    return Placement(energy=float(end_energy), nearest=int(near[0]), distance=float(dist[near[0]]),
                     merge_tol=float(c.merge_tol), via=int(near[j]), barrier=float(b[j]), valley=v,
                     valley_energy=float(land.energy[v]) if v >= 0 else nan,
                     valley_distance=float(dist[v]) if v >= 0 else nan,
                     valley_rise=float(rise[same[0]]) if v >= 0 else nan, flat=flat, checked=k)
