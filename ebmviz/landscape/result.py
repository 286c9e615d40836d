"""What a landscape map is: its settings (``LandscapeConfig``), its cost and the ``Landscape`` it returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np

from ebmviz.landscape import barriers
from ebmviz.settings import JsonSettings


@dataclass(frozen=True)
class LandscapeConfig(JsonSettings):
    """Settings of one map. Frozen, so it is a cache key; distances are L2 in the mapped space."""

    n_steps: int = 500  # most descent iterations per start (one E and ∇E each)
    first_move: float = 0.05  # length of each start's first descent step; η then adapts per start
    temperature: float = 0.0  # T of Langevin noise √(2ηT)ξ in descent proposals (still downhill only); 0: off
    move_tol: float = 1e-3  # a descent (or band) has converged when no proposed move exceeds this length
    grad_tol: float = 0.0  # a descent also stops when ‖∇E‖ ≤ grad_tol (0: off, movement test only)
    clamp: tuple[float, float] | None = None  # box the states stay in, e.g. (−1, 1) for images
    seed: int = 0  # seeds the descent noise
    merge_tol: float = 0.5  # end states closer than this are one minimum (1.0 suits 28×28 images in [−1, 1])
    pairs: str = "knn"  # candidate pairs: "knn", "all", or "auto" = all when M ≤ all_max, else knn
    all_max: int = 64  # largest M for which "auto" estimates every pair
    k_nearest: int = 32  # neighbours per minimum in "knn" mode (plus a Euclidean spanning tree); in EBGAN's 32-d
    # latent space (100 minima) k = 8 overestimated the tree's barriers by 2.8 on average, k = 32 by 0.5
    n_path: int = 32  # points on each straight segment, ends included (band pieces are scanned as finely)
    batch_size: int = 256  # states per energy evaluation
    refine: str = "tree"  # elastic bands for "tree" (spanning-tree edges), "all" candidate pairs, or "none"
    refine_rounds: int = 4  # most rounds of "refine the spanning tree, recompute it" in "tree" mode
    n_images: int = 16  # images per elastic band, ends included
    neb_steps: int = 300  # most band iterations (one E and ∇E per interior image each)
    neb_step: float = 0.5  # band step η as a share of the smaller descent step at the pair's two minima
    spring: float = 0.2  # spring constant κ in units of 1/η (κη; keeps the images evenly spaced)
    climb_after: int = 30  # band iterations before the highest image starts climbing to the saddle
    max_move: float = 0.1  # largest move of a band image per iteration, as a share of the initial spacing

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        positive = ("first_move", "move_tol", "merge_tol", "neb_step", "max_move")
        for name in positive:
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be positive and finite, got {getattr(self, name)!r}")
        counts = {"n_steps": 0, "all_max": 1, "k_nearest": 1, "n_path": 2, "batch_size": 1, "refine_rounds": 1,
                  "n_images": 3, "neb_steps": 0, "climb_after": 0}
        for name, low in counts.items():
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {getattr(self, name)!r}")
        if self.temperature < 0 or self.grad_tol < 0:
            raise ValueError("temperature and grad_tol must be ≥ 0")
        if not 0 < self.spring <= 0.5:
            raise ValueError(f"spring must be in (0, 0.5], got {self.spring!r}")
        if self.pairs not in ("auto", "all", "knn"):
            raise ValueError(f"pairs must be 'auto', 'all' or 'knn', got {self.pairs!r}")
        if self.refine not in ("tree", "all", "none"):
            raise ValueError(f"refine must be 'tree', 'all' or 'none', got {self.refine!r}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise ValueError(f"clamp must be (low, high) with low < high, got {self.clamp!r}")


@dataclass(frozen=True)
class PhaseCost:
    """Work of one phase. A gradient evaluation is one state's E and ∇E (forward + backward)."""

    forward: int = 0  # states evaluated without gradient
    gradient: int = 0  # states evaluated with gradient
    seconds: float = 0.0


@dataclass(frozen=True)
class Cost:
    """Work of a map by phase: descent (with merging), linear barriers (with pairing), refinement."""

    descent: PhaseCost = PhaseCost()
    linear: PhaseCost = PhaseCost()
    refine: PhaseCost = PhaseCost()

    @property
    def evaluations(self) -> int:
        """All energy evaluations, per state: forward-only plus gradient ones."""
        return sum(p.forward + p.gradient for p in (self.descent, self.linear, self.refine))

    @property
    def seconds(self) -> float:
        return self.descent.seconds + self.linear.seconds + self.refine.seconds

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Cost:
        return cls(**{k: PhaseCost(**v) for k, v in d.items() if k in ("descent", "linear", "refine")})


@dataclass(frozen=True, eq=False)
class Landscape:
    """A map of M local minima reached from N starts (numpy arrays; a partial map is drawable as well).

    ``barrier`` (M, M) is what the tree uses: the refined barrier where one was computed, else the linear one;
    +inf where neither was estimated; the diagonal holds the minimum's own energy. ``tree`` is the merge tree
    of ``barriers.merge_tree`` (leaves 0..M−1 are the minima).
    """

    minima: np.ndarray  # (M, ...) float32 states in the mapped space
    images: np.ndarray | None  # (M, 1, 28, 28) float32: the minima when they are images, decode(minima), or None
    energy: np.ndarray  # (M,) float64 E of each minimum, ascending
    assignment: np.ndarray  # (N,) int64 minimum of each start, −1 for a non-finite start (or one not yet run)
    converged: np.ndarray  # (N,) bool, the start's descent met the convergence test within n_steps
    barrier_linear: np.ndarray  # (M, M) float64 max of E on the straight segment, +inf where not estimated
    barrier_refined: np.ndarray  # (M, M) float64 elastic-band barrier (≤ linear), +inf where not refined
    step_size: np.ndarray  # (M,) float64 last descent step η at each minimum (≈ 1 / largest curvature)
    labels: np.ndarray | None  # (N,) int64 labels of the starts, or None
    config: LandscapeConfig
    cost: Cost = Cost()
    meta: dict = field(default_factory=dict)  # what the caller saved with the map (checkpoint, starts, …)
    start_images: np.ndarray | None = None  # (N, 1, 28, 28) uint8: the starts as pictures (the digits), or None
    layout: np.ndarray | None = None  # (N + M, 2) float32: a 2-D map of the starts' then the minima's images

    @property
    def n_minima(self) -> int:
        return len(self.energy)

    @cached_property
    def barrier(self) -> np.ndarray:
        """(M, M) barriers the tree uses: refined where finite, else linear; diagonal = E_i."""
        b = np.where(np.isfinite(self.barrier_refined), self.barrier_refined, self.barrier_linear)
        np.fill_diagonal(b, self.energy)
        return b

    @cached_property
    def n_starts(self) -> np.ndarray:
        """(M,) number of starts that descended to each minimum."""
        a = self.assignment[self.assignment >= 0]
        return np.bincount(a, minlength=self.n_minima).astype(np.int64)

    @cached_property
    def tree(self) -> nx.DiGraph:
        """Single-linkage merge tree over ``barrier`` (see ``barriers.merge_tree``)."""
        return barriers.merge_tree(self.energy, self.barrier, self.n_starts)

    def merges(self) -> list[tuple[float, frozenset]]:
        """The merge tree as (level, the minima below that merge), in merge order (level, then size)."""
        t = self.tree
        out = [(d["energy"], frozenset(x for x in nx.descendants(t, n) if x < self.n_minima))
               for n, d in t.nodes(data=True) if d["kind"] == "merge"]
        return sorted(out, key=lambda m: (m[0], len(m[1])))

    def basins(self, threshold: float) -> list[np.ndarray]:
        """The basins at an energy level: minima at or below ``threshold`` joined by barriers ≤ threshold
        (connected components), each sorted.

        As in a disconnectivity graph cut at that level (the branches the level crosses), or a landscape flooded
        to it (its lakes): a minimum above the threshold is in no basin. Basins come ordered by their lowest
        minimum, so basin 0 holds the lowest minimum and each basin's first index is its lowest.
        """
        pairs, w = barriers.finite_pairs(self.barrier)
        groups = barriers.components(self.n_minima, pairs[w <= threshold])
        return [g for g in groups if self.energy[g[0]] <= threshold]  # minima ascend: g[0] is the lowest

    def basin_counts(self, levels: np.ndarray) -> np.ndarray:
        """(L,) how many basins each level has: minima at or below it, less the tree's merges at or below it."""
        levels = np.asarray(levels, dtype=np.float64)
        merged = np.sort([lvl for lvl, _ in self.merges()])
        return (np.searchsorted(np.sort(self.energy), levels, side="right")
                - np.searchsorted(merged, levels, side="right"))

    def purity(self, threshold: float) -> np.ndarray:
        """(K,) per basin of ``basins(threshold)``: share of its starts carrying the basin's commonest label.
        Starts whose minimum lies above the threshold are in no basin and do not count.

        NaN for a basin no labelled start reached. Raises ``ValueError`` when the map has no labels.
        """
        if self.labels is None:
            raise ValueError("this map has no labels; pass labels= to map_landscape")
        out = []
        for group in self.basins(threshold):
            lab = self.labels[np.isin(self.assignment, group)]
            out.append(np.bincount(lab - lab.min()).max() / len(lab) if len(lab) else np.nan)
        return np.asarray(out, dtype=np.float64)
