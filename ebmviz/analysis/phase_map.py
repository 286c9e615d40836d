"""A phase map of a Langevin sampler: short runs over a grid of step sizes s × noises σ, one verdict per cell.

Every cell runs the same ``n_chains`` start images for ``n_steps`` unadjusted Langevin steps
x ← clamp(x − s·clip(∇E(x)) + σ·ξ) at its own (s, σ); the cells' chains are batched together, many cells per
forward and backward pass (``langevin_steps`` with per-chain settings), ``batch_chains`` chains at a time, so a map
fills in batch by batch. The grid's diagonals are the lines of constant effective temperature T = σ²/(2s).

A cell's verdict, the first that holds:
- **diverged**: a chain met a non-finite energy or gradient;
- **saturated**: at least ``SATURATED_FRACTION`` of the pixels that the reference images keep off the box's walls
  went to the walls (|x| ≥ 0.99): the share at the walls is ≥ r + ½(1 − r) for the reference's share r. The
  reference is the model's own images (MNIST's black background sits exactly at −1: r = 0.83, so a fixed threshold
  would call real digits saturated), 0 without images;
- **stalled**: the images barely left their starts (RMS pixel change below ``STALLED_MOVE``);
- **mixing**: the energies of the run's second half look stationary across chains (split R-hat below
  ``MIXING_RHAT`` and at least one effective draw per chain);
- **travelling**: none of these — the chains are moving and have not settled (what short-run EBMs do by design).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ebmviz.analysis.chain_health import diversity, saturation_share
from ebmviz.images import to_u8
from ebmviz.sampling import LangevinConfig, diagnostics
from ebmviz.sampling.chains import Energy
from ebmviz.sampling.langevin_dynamics import langevin_steps

VERDICTS = ("diverged", "saturated", "stalled", "mixing", "travelling")
SATURATED_FRACTION = 0.5  # saturated: this share of the reference's pixels off the walls went to the walls
STALLED_MOVE = 0.05  # stalled: RMS pixel change from start to end below this (2.5% of the [−1, 1] box)
MIXING_RHAT = 1.1  # mixing: split R-hat of the second half's energies below this …
BATCH_CHAINS = 192  # chains per forward pass: one thread sampled shortrun-mnist fastest at 192 (of 96, 192, 576)


def log_grid(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` log-spaced values from ``low`` to ``high`` (both > 0), rounded to 3 significant digits."""
    if not (0 < low < high and math.isfinite(high)) or n < 2:
        raise ValueError(f"a grid needs 0 < low < high and at least 2 values, got {low!r} … {high!r} ({n})")
    return tuple(float(f"{v:.3g}") for v in np.geomspace(low, high, n))


@dataclass(frozen=True)
class PhaseSpec:
    """What a phase map runs. ``base`` gives everything but s and σ (clip, clamp); its s and σ are the model's
    shipped setting, which the map marks."""

    base: LangevinConfig
    step_sizes: tuple[float, ...]  # s of the columns, increasing
    noises: tuple[float, ...]  # σ of the rows, increasing
    n_chains: int = 16  # chains per cell, the same starts in every cell
    n_steps: int = 200  # steps per chain
    batch_chains: int = BATCH_CHAINS

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(i, j) of every cell, column i (s) by row j (σ), in the order they run."""
        return [(i, j) for j in range(len(self.noises)) for i in range(len(self.step_sizes))]

    def config(self) -> LangevinConfig:
        """The sampler of every cell (ULA), with the per-cell s and σ given to it as vectors."""
        return replace(self.base, n_steps=self.n_steps, metropolis=False, record_every=self.n_steps)


@dataclass(frozen=True)
class Cell:
    """What the ``n_chains`` chains of one (s, σ) did."""

    i: int  # column: step_sizes[i]
    j: int  # row: noises[j]
    step_size: float
    noise_std: float
    verdict: str  # one of VERDICTS
    diverged: float  # share of chains that met a non-finite value
    saturation: float  # share of pixels with |x| ≥ 0.99 at the end
    moved: float  # RMS pixel change from start to end
    energy_start: float  # median E(x_0)
    energy_end: float  # median E(x_T) of the finite chains
    ess: float  # bulk ESS of the second half's energies (NaN when not estimable)
    rhat: float  # split R-hat of the same
    diversity: float  # mean RMS distance between chains in the fixed 8×8 feature space
    duplicates: int  # near-duplicate chains
    quality: float | None  # the judge's score of the final images (share the evaluator reads as digits), or None
    images: np.ndarray  # (n_chains, C, H, W) uint8, the final states

    @property
    def temperature(self) -> float:
        return self.noise_std**2 / (2 * self.step_size)


def verdict(diverged: float, saturation: float, reference: float, moved: float, rhat: float, ess: float,
            chains: int) -> str:
    """The first of ``VERDICTS`` that the numbers of a cell meet (see the module's docstring)."""
    if diverged > 0:
        return "diverged"
    if saturation >= reference + SATURATED_FRACTION * (1 - reference):
        return "saturated"
    if moved < STALLED_MOVE:
        return "stalled"
    if math.isfinite(rhat) and rhat < MIXING_RHAT and ess >= chains:
        return "mixing"
    return "travelling"


def _cell(spec: PhaseSpec, i: int, j: int, x0: np.ndarray, x: np.ndarray, energy: np.ndarray,
          diverged_at: np.ndarray, reference: float, judge: Callable[[np.ndarray], float | None] | None) -> Cell:
    """One cell's numbers from its chains: x0, x (n, C, H, W) float in [−1, 1], energy (T+1, n), diverged_at (n,)."""
    finite = diverged_at < 0
    u8 = to_u8(torch.from_numpy(x)).numpy()
    kept = energy[len(energy) // 2:][:, finite]
    ess = diagnostics.ess(kept) if finite.sum() >= 2 else float("nan")
    rhat = diagnostics.rhat(kept) if finite.sum() >= 2 else float("nan")
    sat = float(saturation_share(x).mean())
    moved = float(np.sqrt(np.mean((x.astype(np.float64) - x0) ** 2)))  # a diverged chain's last state may be huge
    div = diversity(u8)
    end = energy[-1][finite]
    return Cell(i, j, spec.step_sizes[i], spec.noises[j],
                verdict(float(1 - finite.mean()), sat, reference, moved, rhat, ess, spec.n_chains),
                float(1 - finite.mean()), sat, moved, float(np.median(energy[0])),
                float(np.median(end)) if len(end) else float("nan"), ess, rhat, div.mean_distance,
                div.near_duplicates, None if judge is None else judge(u8), u8)


def phase_map(energy: Energy, x0: torch.Tensor, spec: PhaseSpec, seed: int = 0, *, reference: float = 0.0,
              judge: Callable[[np.ndarray], float | None] | None = None) -> Iterator[list[Cell]]:
    """Run the map batch by batch; yield each batch's finished cells (in ``spec.cells`` order).

    Args:
        energy: callable (B, C, H, W) -> (B,), p ∝ exp(−E).
        x0: (n_chains, C, H, W) the start states every cell shares, on the sampling device.
        spec: the grid and the run.
        seed: seeds the noise; batch k uses seed + k (the same spec and seed give the same map).
        reference: the share of pixels at the walls in the model's own images (0 without images).
        judge: (n, C, H, W) uint8 -> a quality score of a cell's final images, or None (e.g. no evaluator).
    """
    cfg, n = spec.config(), spec.n_chains
    cells = spec.cells
    per_batch = max(1, spec.batch_chains // n)
    start = x0.detach().float().cpu().numpy()
    for k, first in enumerate(range(0, len(cells), per_batch)):
        batch = cells[first:first + per_batch]
        s = torch.tensor([spec.step_sizes[i] for i, _ in batch], dtype=x0.dtype).repeat_interleave(n)
        sigma = torch.tensor([spec.noises[j] for _, j in batch], dtype=x0.dtype).repeat_interleave(n)
        xb = x0.repeat(len(batch), *([1] * (x0.dim() - 1)))
        energies, last = [], None
        for last in langevin_steps(energy, xb, cfg, seed + k, step_size=s.to(x0.device), noise_std=sigma.to(x0.device)):
            energies.append(last.energy)
        with torch.no_grad():
            e_end = energy(last.x).detach()
        e = torch.stack([*energies, e_end]).float().cpu().numpy()  # (T+1, len(batch)·n)
        x = last.x.detach().float().cpu().numpy()
        dead = last.diverged_at.cpu().numpy()
        yield [_cell(spec, i, j, start, x[c * n:(c + 1) * n], e[:, c * n:(c + 1) * n], dead[c * n:(c + 1) * n],
                     reference, judge) for c, (i, j) in enumerate(batch)]


def shipped_cell(spec: PhaseSpec) -> tuple[float, float]:
    """(s, σ) of the model's own setting, which the figure marks (it may fall between or outside the cells)."""
    return spec.base.step_size, spec.base.noise_std
