"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011, "MCMC using Hamiltonian dynamics") as a step generator.

Each update draws a momentum p ~ N(0, I), follows the Hamiltonian H(x, p) = E(x)/T + ½‖p‖² for L leapfrog
steps of size ε,

    p ← p − ε/2·∇E(x)/T,   x ← x + ε·p,   p ← p − ε/2·∇E(x)/T     (L times; the half steps in between merge),

and accepts the end point with probability min(1, exp(H(x, p) − H(x', p'))). The chain is exact for exp(−E/T)
at any ε; ε and L trade acceptance against how far one update moves. One update costs L energy gradients
(the gradient at the current state is kept from the previous update). A proposal with a non-finite energy,
or one that leaves ``clamp``'s box, is rejected, so HMC never diverges; a start with a non-finite energy is
reported in ``diverged_at`` and stays where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ebmviz.sampling.chains import Energy, Step, energy_and_grad, per_chain, per_chain_norm
from ebmviz.settings import JsonSettings, check_box, check_count, check_positive


@dataclass(frozen=True)
class HMCConfig(JsonSettings):
    """Settings of one HMC run. Frozen, so it is a cache key."""

    n_steps: int = 100  # updates (each one a full leapfrog trajectory and an accept/reject)
    step_size: float = 0.1  # ε, the leapfrog step
    n_leapfrog: int = 10  # L, leapfrog steps per update (L gradient evaluations)
    record_every: int = 1  # keep a frame every k updates (the first and last are always kept)
    temperature: float = 1.0  # T: the chain targets exp(−E/T)
    clamp: tuple[float, float] | None = None  # reject proposals that leave this box (None: no box)
    record_paths: bool = False  # keep the leapfrog path of every recorded update (small state spaces only)

    @property
    def grad_evals_per_step(self) -> int:
        return self.n_leapfrog

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        check_count("n_steps", self.n_steps)
        check_positive("step_size ε", self.step_size)
        check_count("n_leapfrog L", self.n_leapfrog, 1)
        check_positive("temperature", self.temperature)
        check_box(self.clamp)
        check_count("record_every", self.record_every, 1)


def hmc_steps(energy: Energy, x0: torch.Tensor, config: HMCConfig, seed: int = 0,
              record_path: Callable[[int], bool] | None = None) -> Iterator[Step]:
    """Yield one ``Step`` per HMC update, lazily.

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states; not modified.
        config: a validated ``HMCConfig``.
        seed: seeds the momenta and the uniforms on x0's device.
        record_path: ``t -> bool``, whether update t keeps its leapfrog path (``Step.path``, (L+1, B, ...));
            None keeps none.
    """
    config.validate()
    eps, L, T = config.step_size, config.n_leapfrog, config.temperature
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    x = x0.detach().clone()
    B = x.shape[0]
    e, g = energy_and_grad(energy, x)
    gn = per_chain_norm(g)
    alive = torch.isfinite(e) & torch.isfinite(gn)  # a start that cannot be evaluated never moves
    diverged_at = torch.where(alive, -1, 0).to(torch.long)

    def inside(v: torch.Tensor) -> torch.Tensor:
        if config.clamp is None:
            return torch.ones(B, dtype=torch.bool, device=v.device)
        lo, hi = config.clamp
        return ((v >= lo) & (v <= hi)).flatten(1).all(dim=1)

    for t in range(1, config.n_steps + 1):
        p = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        h0 = e / T + 0.5 * (p**2).flatten(1).sum(1)  # H(x, p), (B,)
        keep = record_path is not None and record_path(t)
        path = [x] if keep else None
        xn, gn_ = x, g
        pn = p - 0.5 * eps * gn_ / T
        for i in range(L):
            xn = xn + eps * pn
            en, gn_ = energy_and_grad(energy, xn)
            if i < L - 1:
                pn = pn - eps * gn_ / T
            if keep:
                path.append(xn)
        pn = pn - 0.5 * eps * gn_ / T
        h1 = en / T + 0.5 * (pn**2).flatten(1).sum(1)
        log_alpha = h0 - h1
        u = torch.rand(B, generator=gen, device=x.device, dtype=x.dtype)
        gnorm_new = per_chain_norm(gn_)
        ok_prop = torch.isfinite(en) & torch.isfinite(gnorm_new) & torch.isfinite(log_alpha) & inside(xn)
        acc = alive & ok_prop & (torch.log(u) < log_alpha)
        new_x = torch.where(per_chain(acc, x), xn, x)
        e_cur, gn_cur = e, gn
        e = torch.where(acc, en, e)
        g = torch.where(per_chain(acc, x), gn_, g)
        gn = torch.where(acc, gnorm_new, gn)
        step_norm = per_chain_norm(new_x - x)
        x = new_x
        yield Step(t=t, x=x, energy=e_cur, grad_norm=gn_cur, step_norm=step_norm, accept=acc.to(x.dtype),
                   alive=alive, diverged_at=diverged_at,
                   path=torch.stack(path) if keep else None, temperature=T)
