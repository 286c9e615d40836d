"""Local minima of an energy: batched steepest descent from many starts, then merging of duplicates.

Each start follows x ← clamp(x − η·∇E(x)) (the steepest-descent path of the divergence triangle's landscape
map, Han et al. 2019, §3), with a step size η per start that adapts: a step that lowers E is taken and η
grows by ``GROW``; a step that raises E (or meets a non-finite value) is refused and η shrinks by ``SHRINK``.
Every taken step lowers E, so each start ends in the basin its descent path enters, whatever the scale of E.
The first step has length ``first_move`` (η₀ = first_move / ‖∇E(x₀)‖). With a temperature T > 0 the proposal
adds Langevin noise √(2ηT)·ξ (a low-temperature Langevin move that can leave saddles and flat ridges), still
taken only when E drops.

A start has converged when a proposed move is at most ``move_tol`` long, or its gradient norm falls to
``grad_tol``. The last η of a start, ≈ 1/(largest curvature) at its minimum, is kept: the elastic-band
refinement uses it as its own step scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ebmviz.landscape.barriers import grad_batched
from ebmviz.sampling import Energy
from ebmviz.sampling.chains import per_chain, per_chain_norm

GROW = 1.25  # η multiplier after a taken step
SHRINK = 0.5  # η multiplier after a refused step


@dataclass(frozen=True)
class Descent:
    """Where B descents ended (tensors on the starts' device)."""

    x: torch.Tensor  # (B, ...) final states
    energy: torch.Tensor  # (B,) E(x), NaN where the start itself was not finite
    step_size: torch.Tensor  # (B,) last η of each start
    converged: torch.Tensor  # (B,) bool, met the convergence test within n_steps
    ok: torch.Tensor  # (B,) bool, False where E or ∇E at the start was non-finite (no descent)
    path: torch.Tensor | None = None  # (F, B, ...) states every ``record_every`` iterations and the last, if asked
    path_energy: torch.Tensor | None = None  # (F, B) their energies



def descend(energy: Energy, starts: torch.Tensor, *, n_steps: int, first_move: float, move_tol: float,
            grad_tol: float = 0.0, temperature: float = 0.0, clamp: tuple[float, float] | None = None,
            batch_size: int = 256, seed: int = 0, record_every: int = 0) -> Descent:
    """Adaptive steepest descent from every start; only unconverged starts are evaluated each iteration.

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        starts: (B, ...) initial states (not modified).
        n_steps: most iterations; each costs one E and ∇E per unconverged start.
        first_move: length of the first proposed step of each start (state units).
        move_tol: converged when a proposed move is at most this long (state units).
        grad_tol: or when ‖∇E‖ ≤ grad_tol after a taken step (0: off).
        temperature: T of the optional Langevin noise in proposals (0: pure descent).
        clamp: (low, high) box the states stay in, or None.
        seed: seeds the noise.
        record_every: keep the states every this many iterations (and the last) in ``path`` (0: don't).
    """
    x = starts.detach().clone()
    if clamp is not None:
        x = x.clamp(*clamp)
    e, g = grad_batched(energy, x, batch_size)
    gn = per_chain_norm(g)
    ok = torch.isfinite(e) & torch.isfinite(gn)
    e = torch.where(ok, e, torch.full_like(e, math.nan))
    eta = first_move / gn.clamp_min(1e-30)
    converged = ok & (gn <= grad_tol)
    active = ok & ~converged
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    path, path_e = ([x.clone()], [e.clone()]) if record_every > 0 else (None, None)
    for it in range(n_steps):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        if path is not None and it > 0 and it % record_every == 0:
            path.append(x.clone())
            path_e.append(e.clone())
        xa, ga, ea, eta_a = x[idx], g[idx], e[idx], eta[idx]
        prop = xa - per_chain(eta_a, xa) * ga
        if temperature > 0:
            noise = torch.randn(xa.shape, generator=gen, device=x.device, dtype=x.dtype)
            prop = prop + per_chain(torch.sqrt(2 * eta_a * temperature), xa) * noise
        if clamp is not None:
            prop = prop.clamp(*clamp)
        e_p, g_p = grad_batched(energy, prop, batch_size)
        gn_p = per_chain_norm(g_p)
        take = torch.isfinite(e_p) & torch.isfinite(gn_p) & (e_p <= ea)
        t = idx[take]
        x[t], e[t], g[t] = prop[take], e_p[take], g_p[take]
        eta[idx] = torch.where(take, eta_a * GROW, eta_a * SHRINK)
        done = (per_chain_norm(prop - xa) <= move_tol) | (take & (gn_p <= grad_tol))
        converged[idx[done]] = True
        active[idx[done]] = False
    if path is not None:
        path.append(x.clone())
        path_e.append(e.clone())
    return Descent(x=x, energy=e, step_size=eta, converged=converged, ok=ok,
                   path=None if path is None else torch.stack(path),
                   path_energy=None if path_e is None else torch.stack(path_e))


def merge_minima(x: torch.Tensor, energy: torch.Tensor, ok: torch.Tensor,
                 tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge end states that are the same minimum; the lowest of each group represents it.

    States are taken in ascending energy; one within L2 distance ``tol`` of an existing representative joins
    it, otherwise it becomes a new one. Representatives therefore come out sorted by energy (index 0 lowest).

    Args:
        x: (N, ...) end states; energy: (N,); ok: (N,) bool, False for states to leave out.

    Returns:
        rep: (M,) indices into x of the representatives (the minima), in ascending energy;
        assignment: (N,) int64, the minimum index of each state, −1 where ``ok`` is False.
    """
    flat = x.flatten(1)
    assignment = [-1] * len(x)
    order = torch.argsort(torch.where(ok, energy, torch.full_like(energy, math.inf))).tolist()
    reps: list[int] = []
    rep_x = torch.empty_like(flat)  # (≤N, D) representatives so far
    ok_list = ok.tolist()
    for i in order:
        if not ok_list[i]:
            continue
        if reps:
            d = (rep_x[:len(reps)] - flat[i]).norm(dim=1)
            j = int(torch.argmin(d))
            if float(d[j]) <= tol:
                assignment[i] = j
                continue
        rep_x[len(reps)] = flat[i]
        assignment[i] = len(reps)
        reps.append(i)
    return (torch.tensor(reps, dtype=torch.long, device=x.device),
            torch.tensor(assignment, dtype=torch.long, device=x.device))
