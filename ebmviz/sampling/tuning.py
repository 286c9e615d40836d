"""Step-size tuning for MALA on a given energy and start: a short pilot per rung of a ladder of step sizes.

MALA is exact for exp(−E/T) at any step, but it only moves when its proposals are accepted. The settings that
image EBMs ship for ULA (e.g. s = 10, σ = 0.005, so T ≈ 10⁻⁶) make an exact target so sharp that MALA rejects
nearly every move from a real digit. ``MALA_START`` is the Langevin page's first MALA setting (accepting most
moves from noise and from digits on the short-run energy); ``tune_mala`` keeps a proposal's noise σ and walks down
the step sizes until a pilot run from the page's own start accepts at least ``target`` of its moves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ebmviz.sampling.chains import Energy
from ebmviz.sampling.langevin_dynamics import LangevinConfig, langevin_steps

MALA_START = (0.03, 0.01)  # (s, σ) a MALA run starts from on the Langevin page: T = σ²/(2s) ≈ 1.7·10⁻³
STEP_LADDER = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)  # s tried, largest first
PILOT_STEPS = 20  # MALA updates per rung
PILOT_CHAINS = 8  # chains of the pilot (the first of the start states)


@dataclass(frozen=True)
class MalaTuning:
    """The step a pilot chose and what each rung accepted."""

    step_size: float  # the largest s on the ladder whose pilot acceptance reached the target (else the smallest)
    noise_std: float  # σ, kept from the base config
    acceptance: float  # the chosen rung's mean acceptance over the pilot's steps and chains
    tried: tuple[tuple[float, float], ...]  # (s, acceptance) of each rung run, in order

    def config(self, base: LangevinConfig) -> LangevinConfig:
        """``base`` as MALA with the tuned step and noise (its K, clip, box and recording kept)."""
        return replace(base, metropolis=True, step_size=self.step_size, noise_std=self.noise_std)


def tune_mala(energy: Energy, x0: torch.Tensor, base: LangevinConfig, target: float = 0.5,
              seed: int = 0) -> MalaTuning:
    """Pilot MALA runs of ``PILOT_STEPS`` from the first ``PILOT_CHAINS`` of ``x0`` (B, …) down ``STEP_LADDER``,
    with ``base``'s noise σ, clip and box; stops at the first rung accepting ≥ ``target``."""
    noise_std, tried = base.noise_std, []
    for s in STEP_LADDER:
        cfg = replace(base, metropolis=True, step_size=s, noise_std=noise_std, n_steps=PILOT_STEPS,
                      record_every=PILOT_STEPS)
        accepted = [step.accept for step in langevin_steps(energy, x0[:PILOT_CHAINS], cfg, seed=seed)]
        rate = float(torch.stack(accepted).mean())
        tried.append((s, rate))
        if rate >= target:
            break
    s, rate = tried[-1]
    return MalaTuning(s, noise_std, rate, tuple(tried))
