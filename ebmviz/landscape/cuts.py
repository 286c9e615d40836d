"""Cutting a map's disconnectivity graph at an energy level: the basins below the level, how well they sort the
starts by digit, every level scanned at once, and the level a page opens at (data only).

A cut at level L floods the landscape to L: each group of minima joined by barriers at or below L is one
**basin** (a lake), and a minimum above L lies in no basin yet (``Landscape.basins``). A start belongs to the basin
of the minimum its descent reached.

**Purity** says how well the basins sort the starts by digit. Per basin: the share of its starts that carry its
commonest label. For a whole cut (``CutScan.purity``, clustering purity as in Manning, Raghavan & Schütze 2008,
§16.3): the share of *all* the map's starts that lie in a basin and carry that basin's commonest label,

    purity(L) = Σ_basins (starts of its commonest label) / (starts that reached a minimum).

Starts whose minimum lies above L count as not sorted, so a low cut cannot look pure by leaving most digits out,
and a high cut pays for every digit it pours into a basin of another digit: the best cut lies in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmviz.landscape.barriers import Forest
from ebmviz.landscape.result import Landscape

WANTED = (10, 30)  # the number of basins a page opens with: few enough to read, enough to hold ten digits


@dataclass(frozen=True)
class Basins:
    """The basins at one level, with their starts and purity."""

    groups: list[np.ndarray]  # minima of each basin (``Landscape.basins``), ordered by their lowest minimum
    starts: np.ndarray  # (K,) starts that descend into each basin
    purity: np.ndarray  # (K,) share of its starts with its commonest label (NaN without labels or starts)
    commonest: list[int | None]  # (K,) that label
    dry: int  # minima above the level, in no basin
    hits: np.ndarray  # (K,) starts of each basin that carry its commonest label (0 without labels)
    total: int  # starts that reached a minimum, in a basin or not
    labelled: bool  # the map has labels

    @property
    def mean_purity(self) -> float:
        return float(np.nanmean(self.purity)) if np.isfinite(self.purity).any() else float("nan")

    @property
    def weighted_purity(self) -> float:
        """Purity weighted by starts: the share of the starts in basins that carry their basin's commonest label."""
        return float(self.hits.sum() / max(int(self.starts.sum()), 1))

    @property
    def cut_purity(self) -> float:
        """The cut's purity (module docstring): the share of all ``total`` starts that lie in a basin and carry its
        commonest label; NaN without labels."""
        return float(self.hits.sum() / self.total) if self.labelled and self.total else float("nan")


def basins_at(land: Landscape, threshold: float) -> Basins:
    """``land``'s basins at ``threshold`` with their starts and purity."""
    groups = land.basins(threshold)
    starts = np.array([int(land.n_starts[g].sum()) for g in groups], dtype=np.int64)
    total = int((land.assignment >= 0).sum())
    hits = np.zeros(len(groups), dtype=np.int64)
    if land.labels is None:
        purity, commonest = np.full(len(groups), np.nan), [None] * len(groups)
    else:
        purity = land.purity(threshold)
        labs = [land.labels[np.isin(land.assignment, g)] for g in groups]
        commonest = [int(np.bincount(lab).argmax()) if len(lab) else None for lab in labs]
        hits = np.array([int(np.bincount(lab).max()) if len(lab) else 0 for lab in labs], dtype=np.int64)
    return Basins(groups, starts, purity, commonest, land.n_minima - sum(len(g) for g in groups), hits, total,
                  land.labels is not None)


@dataclass(frozen=True)
class CutScan:
    """Every level where a map's basins change, with what a cut there gives (arrays of length L, levels ascending)."""

    levels: np.ndarray  # (L,) the minima's energies and the tree's merge levels
    basins: np.ndarray  # (L,) int, basins at each level
    wet: np.ndarray  # (L,) int, starts whose minimum lies in a basin (at or below the level)
    sorted: np.ndarray  # (L,) int, of those, the starts that carry their basin's commonest label (0 without labels)
    n_starts: int  # starts that reached a minimum: purity's denominator
    labelled: bool  # whether the map has labels (purity is NaN without)

    @property
    def purity(self) -> np.ndarray:
        """(L,) the share of all starts sorted by their basin's commonest label (module docstring); NaN without
        labels."""
        if not self.labelled or self.n_starts == 0:
            return np.full(len(self.levels), np.nan)
        return self.sorted / self.n_starts

    def at(self, level: float) -> int:
        """Index of the highest scanned level at or below ``level`` (0 below the lowest)."""
        return max(int(np.searchsorted(self.levels, level, side="right")) - 1, 0)


def scan_cuts(land: Landscape) -> CutScan:
    """Cut ``land`` at every level where its basins change, in one sweep up the levels.

    Union–find over the tree's merges (the spanning edges single linkage joined, so the groups are exactly
    ``Landscape.basins``), keeping each group's label counts: a minimum joins the water at its energy, two groups
    join at their merge's level (a merge is never below its minima). O((M + L)·labels).
    """
    m = land.n_minima
    levels = np.unique(np.concatenate([land.energy, [lvl for lvl, _ in land.merges()]]))
    ok = land.assignment >= 0
    if land.labels is not None and ok.any():
        lab = np.unique(land.labels[ok], return_inverse=True)[1]
        counts = np.zeros((m, int(lab.max()) + 1), dtype=np.int64)  # (M, labels) starts of each label per minimum
        np.add.at(counts, (land.assignment[ok], lab), 1)
    else:
        counts = np.zeros((m, 1), dtype=np.int64)
    # events in order of level; at one level, minima get wet before the merges that need them
    pairs = [d["pair"] for _, d in land.tree.nodes(data=True) if d["kind"] == "merge"]
    merge_levels = [d["energy"] for _, d in land.tree.nodes(data=True) if d["kind"] == "merge"]
    events = sorted([(float(e), 0, i, -1) for i, e in enumerate(land.energy)]
                    + [(float(e), 1, int(i), int(j)) for e, (i, j) in zip(merge_levels, pairs, strict=True)])
    forest, n_basins, wet, hits = Forest(m), 0, 0, 0
    out_basins, out_wet, out_sorted = (np.zeros(len(levels), dtype=np.int64) for _ in range(3))
    k = 0
    for li, level in enumerate(levels):
        while k < len(events) and events[k][0] <= level:
            _, kind, i, j = events[k]
            if kind == 0:  # minimum i is under water: a basin of its own
                n_basins, wet, hits = n_basins + 1, wet + int(land.n_starts[i]), hits + int(counts[i].max())
            else:  # two basins join into one
                ri, rj = forest.find(i), forest.find(j)
                hits -= int(counts[ri].max()) + int(counts[rj].max())
                forest.union(ri, rj)  # ri heads the joined group
                counts[ri] += counts[rj]
                hits += int(counts[ri].max())
                n_basins -= 1
            k += 1
        out_basins[li], out_wet[li], out_sorted[li] = n_basins, wet, hits
    return CutScan(levels, out_basins, out_wet, out_sorted, int(ok.sum()), land.labels is not None)


@dataclass(frozen=True)
class DefaultCut:
    """The level a page opens at, and why."""

    index: int  # into the scan's levels
    level: float
    wanted: tuple[int, int]  # the basin counts it chose among
    among: np.ndarray  # (C,) indices of the scanned levels it chose among
    rule: str  # "purity" (the highest among them), "most starts" (a map without labels)


def default_cut(scan: CutScan, wanted: tuple[int, int] = WANTED) -> DefaultCut:
    """Among the levels that leave ``wanted`` (low, high) basins, the one with the highest purity (the lowest such
    level on a tie); on a map without labels, the one with the most starts in basins.

    A map that never has that many basins chooses among the levels with the count nearest the range.
    """
    lo, hi = wanted
    gap = np.maximum(lo - scan.basins, 0) + np.maximum(scan.basins - hi, 0)  # 0 inside the range
    among = np.flatnonzero(gap == gap.min())
    score, rule = (scan.purity, "purity") if scan.labelled and scan.n_starts else (scan.wet, "most starts")
    best = int(among[np.argmax(score[among])])  # argmax takes the first: the lowest level on a tie
    return DefaultCut(best, float(scan.levels[best]), wanted, among, rule)
