"""Annealed Langevin: chains that cool down a ladder of temperatures, or follow a family of energies E(·, σ).

``annealed_steps`` (the sampler lab's "annealed Langevin") targets exp(−E/T_t) at step t, with T_t falling
geometrically from ``t_start`` to ``t_end`` over the first (1 − hold) of the steps and held at ``t_end``
for the rest. Each level is plain Langevin at its temperature, x ← x − s·∇E + √(2·s·T_k)·ξ (MALA's
accept/reject against exp(−E/T_k) when asked), run by ``langevin_steps``: a hot start crosses barriers that
trap a chain at T = 1, and the held part samples the target. Only the held part is a sample of
exp(−E/t_end); diagnostics should read that part.

``annealed_langevin`` (Song & Ermon 2019) follows a family of energies instead, E(·, σ_t) with the step
η_t = step·σ_t²; the Denoising-EBM's texture stage uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ebmviz.images import to_u8
from ebmviz.sampling.chains import Energy, Step, Trajectory, energy_and_grad, per_chain, per_chain_norm
from ebmviz.sampling.langevin_dynamics import LangevinConfig, langevin_steps
from ebmviz.settings import JsonSettings, check_count, check_positive


@dataclass(frozen=True)
class AnnealedConfig(JsonSettings):
    """Settings of one tempered-annealing run. Frozen, so it is a cache key."""

    n_steps: int = 200  # updates in all, ladder and hold together
    step_size: float = 0.05  # s, the gradient step at every temperature
    t_start: float = 10.0  # T_0, the hottest temperature (first step)
    t_end: float = 1.0  # the target's temperature, held for the last ``hold`` share of the steps
    n_levels: int = 8  # temperatures on the geometric ladder from t_start to t_end (both included)
    hold: float = 0.5  # share of the steps spent at t_end
    metropolis: bool = False  # MALA at each level instead of ULA
    grad_clip: float | None = None  # clamp each gradient entry to ±grad_clip (None: off)
    clamp: tuple[float, float] | None = None  # keep states in this box (None: off)
    record_every: int = 1  # keep a frame every k steps (the first and last are always kept)

    @property
    def grad_evals_per_step(self) -> int:
        return 1

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        check_count("n_steps", self.n_steps)
        for name in ("step_size", "t_start", "t_end"):
            check_positive(name, getattr(self, name))
        if self.t_start < self.t_end:
            raise ValueError(f"t_start ({self.t_start:g}) must be at least t_end ({self.t_end:g}): the chain cools")
        check_count("n_levels", self.n_levels, 1)
        if not 0.0 <= self.hold <= 1.0:
            raise ValueError(f"hold must be a share in [0, 1], got {self.hold!r}")
        check_count("record_every", self.record_every, 1)
        self.level(self.t_start).validate()

    def temperatures(self) -> np.ndarray:
        """(n_steps,) T_t of each step: the ladder's levels in equal runs, then t_end for the held steps (with no
        held steps, the ladder's last level is t_end itself)."""
        n_hold = round(self.hold * self.n_steps)
        n_ladder = self.n_steps - n_hold
        ladder = np.geomspace(self.t_start, self.t_end, self.n_levels)
        if n_hold > 0:
            ladder = ladder[:-1]  # t_end comes with the held steps
        if len(ladder) == 0 or n_ladder == 0:
            return np.full(self.n_steps, self.t_end)
        which = np.minimum((np.arange(n_ladder) * len(ladder)) // n_ladder, len(ladder) - 1)
        return np.concatenate([ladder[which], np.full(n_hold, self.t_end)])

    def held_from(self) -> int:
        """The first step (1-based) that targets t_end after the ladder: the start of the draws to read."""
        temps = self.temperatures()
        hot = np.nonzero(temps != self.t_end)[0]
        return int(hot[-1]) + 2 if len(hot) else 1

    def level(self, temperature: float, n_steps: int = 1) -> LangevinConfig:
        """The Langevin settings of one level: noise √(2·s·T) gives temperature T."""
        return LangevinConfig.at_temperature(self.step_size, temperature, n_steps=n_steps,
                                             metropolis=self.metropolis, grad_clip=self.grad_clip, clamp=self.clamp)


def annealed_steps(energy: Energy, x0: torch.Tensor, config: AnnealedConfig, seed: int = 0) -> Iterator[Step]:
    """Yield one ``Step`` per update, level after level (each level a ``langevin_steps`` run from where the
    last one stopped). A chain that diverges stays stopped, at its last finite state, for the rest of the run.

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states; not modified.
        config: a validated ``AnnealedConfig``.
        seed: seeds the noise; level k uses a seed derived from (seed, k).
    """
    config.validate()
    temps = config.temperatures()
    x = x0.detach().clone() if config.clamp is None else x0.detach().clamp(*config.clamp)
    alive = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    diverged_at = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
    start, level = 0, 0
    while start < len(temps):
        stop = start + 1
        while stop < len(temps) and temps[stop] == temps[start]:
            stop += 1
        cfg = config.level(float(temps[start]), stop - start)
        for st in langevin_steps(energy, x, cfg, seed=int(seed) * 7919 + level):
            died = alive & ~st.alive
            diverged_at = torch.where(died, torch.full_like(diverged_at, start + st.t - 1), diverged_at)
            alive = alive & st.alive
            new_x = torch.where(per_chain(alive, x), st.x, x)
            yield replace(st, t=start + st.t, x=new_x, alive=alive, diverged_at=diverged_at,
                          step_norm=torch.where(alive, st.step_norm, torch.zeros_like(st.step_norm)))
            x = new_x
        start, level = stop, level + 1


def annealed_langevin(
    energy_at: Callable[[torch.Tensor, float], torch.Tensor],
    x0: torch.Tensor,
    sigmas: list[float],
    step: float,
    seed: int = 0,
    *,
    record_every: int = 1,
    clamp: tuple[float, float] | None = (-1.0, 1.0),
) -> Trajectory:
    """Annealed Langevin (Song & Ermon 2019) on a family of energies E(·, σ): step t targets exp(−E(·, σ_t)),

        x_{t+1} = x_t − η_t ∇E(x_t, σ_t) + √(2η_t)·ξ_t,   η_t = step·σ_t²,

    so the step follows the energy's 1/σ² curvature. ``energy_at(x, σ)`` (B, ...) -> (B,); ``sigmas`` (T,) the
    level of each step (constant: plain Langevin at temperature 1). Records uint8 frames every ``record_every``
    steps; ``energy`` row t is E(x_t, σ_t) (the last row E(x_T, σ_T)). ``config`` holds the first step's
    settings. A chain that meets a non-finite value stops and is reported in ``diverged_at``.
    """
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be positive and finite, got {step!r}")
    T = len(sigmas)
    first = step * (sigmas[0] if T else 1.0) ** 2
    config = LangevinConfig(n_steps=T, step_size=first, noise_std=math.sqrt(2 * first), grad_clip=None,
                            clamp=clamp, record_every=record_every)
    config.validate()
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    x = x0.detach().clone() if clamp is None else x0.detach().clamp(*clamp)
    B = x.shape[0]
    alive = torch.ones(B, dtype=torch.bool, device=x.device)
    diverged_at = torch.full((B,), -1, dtype=torch.long, device=x.device)
    frames, frame_steps, rows = [to_u8(x).numpy()], [0], {"energy": [], "grad_norm": [], "step_norm": []}
    for t, sigma in enumerate(sigmas, start=1):
        e, g = energy_and_grad(lambda v, s=sigma: energy_at(v, s), x)
        gn = per_chain_norm(g)
        eta = step * sigma**2
        prop = x - eta * g + math.sqrt(2 * eta) * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        if clamp is not None:
            prop = prop.clamp_(*clamp)
        sn = per_chain_norm(prop - x)
        ok = alive & torch.isfinite(e) & torch.isfinite(gn) & torch.isfinite(sn)
        diverged_at = torch.where(alive & ~ok, torch.full_like(diverged_at, t - 1), diverged_at)
        alive = ok
        x = torch.where(per_chain(ok, x), prop, x)
        rows["energy"].append(e)
        rows["grad_norm"].append(gn)
        rows["step_norm"].append(torch.where(ok, sn, torch.zeros_like(sn)))
        if t % record_every == 0 or t == T:
            frames.append(to_u8(x).numpy())
            frame_steps.append(t)
    with torch.no_grad():
        last = energy_at(x, sigmas[-1] if T else 1.0).detach()

    def stack(key: str) -> np.ndarray:
        return torch.stack(rows[key]).float().cpu().numpy() if rows[key] else np.zeros((0, B), np.float32)

    return Trajectory(
        final=x.detach().float().cpu().numpy(), frames=np.stack(frames),
        frame_steps=np.asarray(frame_steps, dtype=np.int64),
        energy=np.concatenate([stack("energy"), last.float().cpu().numpy()[None]]),
        grad_norm=stack("grad_norm"), step_norm=stack("step_norm"), accept=None,
        diverged_at=diverged_at.cpu().numpy(), config=config)
