"""The JKO particle step (Jordan, Kinderlehrer & Otto 1998): Langevin's implicit cousin, as a step generator.

The JKO scheme moves a density by ρ_{k+1} = argmin_ρ KL(ρ ‖ e^{−E}) + W₂²(ρ, ρ_k)/(2τ). For particles, ebmviz
uses the proximal (implicit) form of its reconstruction of wFRAME (the paper's own equations could not be
recovered; checkpoints/README.md, FRAME):

    y ← y − η·(∇E(y) + (y − x_k)/τ)     m times from y = x_k   (gradient steps on E(y) + ‖y − x_k‖²/(2τ))
    x_{k+1} = y + √(2τ)·ξ_k,             ξ_k ~ N(0, I)

With m = 1 and η = τ this is exactly the Langevin step x_k − τ∇E(x_k) + √(2τ)ξ; more inner steps move y toward
the proximal point argmin_y E(y) + ‖y − x_k‖²/(2τ), whose drift is the gradient at the *end* of the step (an
implicit Euler step: stable for any τ on a convex energy, where the explicit step diverges for τ > 2/λ_max).
As τ → 0 both agree to O(τ²). One update costs m energy gradients. A chain that meets a non-finite value stops
there and is reported in ``diverged_at``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ebmviz.sampling.chains import Energy, Step, energy_and_grad, per_chain, per_chain_norm
from ebmviz.settings import JsonSettings, check_box, check_count, check_positive


@dataclass(frozen=True)
class JKOConfig(JsonSettings):
    """Settings of one run of proximal (JKO) particle steps. Frozen, so it is a cache key."""

    n_steps: int = 60  # outer updates k
    tau: float = 0.01  # τ, the time step: the W₂ penalty's weight is 1/(2τ), the noise √(2τ)
    inner_steps: int = 3  # m, gradient steps toward the proximal point per update
    inner_step: float | None = None  # η of the inner steps (None: τ/2, a stable choice for any τ; τ with m = 1 is ULA)
    temperature: float = 1.0  # T: the target is exp(−E/T) (the noise is √(2τT))
    clamp: tuple[float, float] | None = None  # keep states in this box (None: off)
    record_every: int = 1  # keep a frame every k updates (the first and last are always kept)

    @property
    def grad_evals_per_step(self) -> int:
        return self.inner_steps

    @property
    def eta(self) -> float:
        return self.tau / 2 if self.inner_step is None else self.inner_step

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        check_count("n_steps", self.n_steps)
        check_positive("tau", self.tau)
        check_count("inner_steps", self.inner_steps, 1)
        check_positive("inner step η", self.eta)
        check_positive("temperature", self.temperature)
        check_box(self.clamp)
        check_count("record_every", self.record_every, 1)


def proximal_point(energy: Energy, x: torch.Tensor, config: JKOConfig) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor]:
    """m gradient steps on E(y)/T + ‖y − x‖²/(2τ) from y = x: returns (y, E(x) (B,), ‖∇E(x)‖ (B,))."""
    y, T = x, config.temperature
    e0 = gn0 = None
    for _ in range(config.inner_steps):
        e, g = energy_and_grad(energy, y)
        if e0 is None:
            e0, gn0 = e, per_chain_norm(g)
        y = y - config.eta * (g / T + (y - x) / config.tau)
    return y, e0, gn0


def jko_steps(energy: Energy, x0: torch.Tensor, config: JKOConfig, seed: int = 0) -> Iterator[Step]:
    """Yield one ``Step`` per proximal update, lazily.

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states; not modified.
        config: a validated ``JKOConfig``.
        seed: seeds the noise on x0's device.
    """
    config.validate()
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    x = x0.detach().clone() if config.clamp is None else x0.detach().clamp(*config.clamp)
    B = x.shape[0]
    alive = torch.ones(B, dtype=torch.bool, device=x.device)
    diverged_at = torch.full((B,), -1, dtype=torch.long, device=x.device)
    sigma = math.sqrt(2 * config.tau * config.temperature)
    for t in range(1, config.n_steps + 1):
        y, e, gn = proximal_point(energy, x, config)
        prop = y + sigma * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        if config.clamp is not None:
            prop = prop.clamp_(*config.clamp)
        sn = per_chain_norm(prop - x)
        ok = alive & torch.isfinite(e) & torch.isfinite(gn) & torch.isfinite(sn)
        diverged_at = torch.where(alive & ~ok, torch.full_like(diverged_at, t - 1), diverged_at)
        alive = ok
        x = torch.where(per_chain(ok, x), prop, x)
        yield Step(t=t, x=x, energy=e, grad_norm=gn, step_norm=torch.where(ok, sn, torch.zeros_like(sn)),
                   accept=None, alive=alive, diverged_at=diverged_at, temperature=config.temperature)
