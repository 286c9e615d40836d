"""The sampler lab's settings and judgement: one sampler's choice as a config, and how far its draws are from exact.

A lab run is B particles on a 2-D energy of ``ebmviz.sampling.toy2d``, every step recorded (float32 frames), run by the
same samplers as the MNIST pages. ``SamplerChoice`` holds what the page's form sets for one sampler (ULA, MALA,
HMC, annealed Langevin or proximal JKO steps) and turns into that sampler's config; ``judge`` reads a run's
draws from its burn-in on: acceptance, ESS and split R-hat of x, y and the energy (``ebmviz.sampling.diagnostics``), ESS
per gradient evaluation, and the distance of the pooled draws to the exact grid density (MMD² and binned KL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ebmviz.sampling import AnnealedConfig, HMCConfig, JKOConfig, LangevinConfig, SamplerConfig
from ebmviz.sampling.diagnostics import ChainSummary, binned_kl, mmd, summarize
from ebmviz.sampling.toy2d import DensityGrid, Toy
from ebmviz.settings import JsonSettings

KINDS = ("ULA", "MALA", "HMC", "Annealed", "JKO")
POOL = 3000  # pooled draws kept for the distances (evenly thinned)
REFERENCE = 1500  # exact draws from the grid for MMD²


@dataclass(frozen=True)
class SamplerChoice(JsonSettings):
    """One sampler of the lab, as its form sets it. Frozen: a cache key and a link's content."""

    kind: str = "ULA"  # one of KINDS
    step_size: float = 0.1  # s for the Langevin kinds; ε for HMC
    temperature: float = 1.0  # T: the target is exp(−E/T); the Langevin noise is √(2·s·T)
    n_leapfrog: int = 10  # L, HMC only
    t_start: float = 10.0  # the annealing ladder's first temperature, Annealed only
    inner_steps: int = 3  # m, gradient steps toward the proximal point per update, JKO only

    def config(self, n_steps: int, record_paths: bool = False) -> SamplerConfig:
        """The sampler's config for ``n_steps`` updates, recording every step (the lab reads them all)."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown sampler {self.kind!r}; the lab has {', '.join(KINDS)}")
        if self.kind == "HMC":
            return HMCConfig(n_steps=n_steps, step_size=self.step_size, n_leapfrog=int(self.n_leapfrog),
                             temperature=self.temperature, record_paths=record_paths)
        if self.kind == "JKO":
            return JKOConfig(n_steps=n_steps, tau=self.step_size, inner_steps=int(self.inner_steps),
                             temperature=self.temperature)
        if self.kind == "Annealed":
            return AnnealedConfig(n_steps=n_steps, step_size=self.step_size,
                                  t_start=max(self.t_start, self.temperature), t_end=self.temperature)
        return LangevinConfig.at_temperature(self.step_size, self.temperature, n_steps=n_steps,
                                             metropolis=self.kind == "MALA", grad_clip=None, clamp=None)

    @classmethod
    def default(cls, kind: str, toy: Toy) -> SamplerChoice:
        """The lab's defaults on ``toy``: its step s for the Langevin kinds (τ = s for JKO); for HMC half the ε of
        a Langevin step (one leapfrog step of size √(2s) is a Langevin step of size s) with L = 3. On the
        8-Gaussian mixture, L = 10 carried a particle once around its mode and back: the energy's ESS fell from
        56,890 to 1,911."""
        if kind == "HMC":
            return cls(kind=kind, step_size=round(math.sqrt(2 * toy.step) / 2, 4), n_leapfrog=3)
        return cls(kind=kind, step_size=toy.step)


def burn_in(config: SamplerConfig, steps_done: int) -> int:
    """The first state the diagnostics read: half of the steps so far, and never a state of the annealing ladder."""
    first = steps_done // 2
    if isinstance(config, AnnealedConfig):
        first = max(first, min(config.held_from(), steps_done))
    return first


def judge(states: np.ndarray, energy: np.ndarray, accept: np.ndarray | None, config: SamplerConfig, toy: Toy,
          *, diverged_at: np.ndarray | None = None, grid: DensityGrid | None = None, max_draws: int | None = None,
          reference_seed: int = 0) -> ChainSummary:
    """Diagnostics of a lab run so far, with its distance to the exact density.

    Args:
        states: (t+1, B, 2) the particles at steps 0 … t. energy: (t+1, B). accept: (t, B) or None.
        config: the run's sampler config (its temperature sets the exact density the draws are held to).
        toy: the energy. grid: its grid at the target's temperature (made here when None).
        diverged_at: (B,) the step where each chain stopped (−1: never). Stopped chains are left out of ESS and
            R-hat (``n_stopped`` counts them) but stay in the distances: the mass they lost is missing there.
        max_draws: thin the kept draws to at most this many per chain for ESS and R-hat (a live page).
    """
    t = states.shape[0] - 1
    first = burn_in(config, t)
    moving = np.ones(states.shape[1], bool) if diverged_at is None else ~((diverged_at >= 0) & (diverged_at <= t))
    kept = t + 1 - first
    thin = max(1, -(-kept // max_draws)) if max_draws else 1
    summary = summarize(states[:, moving], energy[:, moving], None if accept is None else accept[:, moving],
                        burn_in=first, grad_evals_per_step=getattr(config, "grad_evals_per_step", 1), thin=thin)
    pooled = states[first:].reshape(-1, states.shape[-1])
    pooled = pooled[np.isfinite(pooled).all(1)]
    if len(pooled) > POOL:
        pooled = pooled[np.linspace(0, len(pooled) - 1, POOL).round().astype(int)]
    grid = grid if grid is not None else toy.grid(temperature=target_temperature(config))
    ref = grid.draw(REFERENCE, seed=reference_seed)
    xe, ye = grid.edges
    width = min(toy.box[1] - toy.box[0], toy.box[3] - toy.box[2])
    distance = {"MMD²": mmd(pooled, ref, bandwidth=width / 20), "binned KL": binned_kl(pooled, grid.prob, xe, ye)}
    return ChainSummary(**{**summary.__dict__, "distance": distance, "n_stopped": int((~moving).sum())})


def target_temperature(config: SamplerConfig) -> float:
    """The T whose exp(−E/T) the sampler is meant to draw (the held temperature for annealing)."""
    if isinstance(config, AnnealedConfig):
        return config.t_end
    return float(config.temperature) if config.temperature > 0 else 1.0
