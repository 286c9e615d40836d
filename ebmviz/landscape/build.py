"""``map_landscape``: descent to minima, barriers between them, the tree — reporting a drawable partial map."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from ebmviz.landscape import barriers
from ebmviz.landscape.minima import descend, merge_minima
from ebmviz.landscape.result import Cost, Landscape, LandscapeConfig, PhaseCost
from ebmviz.sampling import Energy

PROGRESS_TOTAL = 1000  # progress(done, total, …) counts in thousandths of the whole map
SHARE = {"descent": 0.6, "linear": 0.25, "refine": 0.15}  # rough shares of the work, for progress only


class _Counted:
    """Wraps an energy and counts evaluated states; a call whose input tracks gradients counts as gradient."""

    def __init__(self, energy: Energy):
        self.energy, self.forward, self.gradient = energy, 0, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.gradient += len(x)
        else:
            self.forward += len(x)
        return self.energy(x)


class _Builder:
    """The growing map: holds the tensors of each stage and reports drawable partial maps."""

    def __init__(self, energy, starts, config, labels, progress, decode):
        self.energy, self.config, self.progress, self.decode = _Counted(energy), config, progress, decode
        self.starts = starts.detach()
        self.labels = None if labels is None else np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
        self.phases: dict[str, PhaseCost] = {}
        self.phase, self.done = "descent", 0
        self._mark = (0, 0, time.perf_counter())

    def close_phase(self, name: str) -> None:
        f, g, t = self._mark
        now = (self.energy.forward, self.energy.gradient, time.perf_counter())
        self.phases[name] = PhaseCost(now[0] - f, now[1] - g, now[2] - t)
        self._mark = now

    def images(self, minima: torch.Tensor) -> np.ndarray | None:
        if self.decode is not None:
            with torch.no_grad():
                parts = [self.decode(minima[i:i + self.config.batch_size]) for i in range(0, len(minima),
                                                                                         self.config.batch_size)]
            return torch.cat(parts).detach().float().cpu().numpy() if parts else np.zeros((0, 1, 28, 28), "f4")
        return minima.float().cpu().numpy() if tuple(minima.shape[1:]) == (1, 28, 28) else None

    def landscape(self, minima, energy, assignment, converged, linear, refined, step, images=None) -> Landscape:
        return Landscape(
            minima=minima.detach().float().cpu().numpy(),
            images=self.images(minima) if images is None else images,
            energy=energy.double().cpu().numpy(),
            assignment=assignment.cpu().numpy().astype(np.int64),
            converged=converged.cpu().numpy().astype(bool),
            barrier_linear=linear.copy(), barrier_refined=refined.copy(),
            step_size=step.double().cpu().numpy(), labels=self.labels, config=self.config,
            cost=Cost(**self.phases))

    def report(self, phase_start: float, share: float, make: Callable[[], Landscape]) -> None:
        """Call progress(done, total, partial) when ``done`` has grown (``share`` of the phase in [0, 1])."""
        done = min(PROGRESS_TOTAL - 1, int(PROGRESS_TOTAL * (phase_start + share * SHARE[self.phase])))
        if self.progress is not None and done > self.done:
            self.done = done
            self.progress(done, PROGRESS_TOTAL, make())


def _inf_matrix(energy: torch.Tensor) -> np.ndarray:
    b = np.full((len(energy), len(energy)), np.inf)
    np.fill_diagonal(b, energy.double().cpu().numpy())
    return b


def _descend_all(b: _Builder):
    """Steps 1–2: descend every start in chunks of batch_size, then merge duplicate minima."""
    c, n = b.config, len(b.starts)
    x, e = torch.empty_like(b.starts), torch.full((n,), math.nan, device=b.starts.device, dtype=b.starts.dtype)
    step, conv = torch.ones(n, device=b.starts.device), torch.zeros(n, dtype=torch.bool, device=b.starts.device)
    ok = torch.zeros(n, dtype=torch.bool, device=b.starts.device)
    for lo in range(0, n, c.batch_size):
        hi = min(n, lo + c.batch_size)
        d = descend(b.energy, b.starts[lo:hi], n_steps=c.n_steps, first_move=c.first_move, move_tol=c.move_tol,
                    grad_tol=c.grad_tol, temperature=c.temperature, clamp=c.clamp, batch_size=c.batch_size,
                    seed=c.seed + lo)
        x[lo:hi], e[lo:hi], step[lo:hi], conv[lo:hi], ok[lo:hi] = d.x, d.energy.to(e.dtype), d.step_size, \
            d.converged, d.ok
        b.report(0.0, hi / n, lambda: _descent_partial(b, x, e, ok, conv, step))
    rep, assignment = merge_minima(x, e, ok, c.merge_tol)
    b.close_phase("descent")
    return x[rep], e[rep], _step_scale(step, assignment, len(rep)), assignment, conv


def _descent_partial(b: _Builder, x, e, ok, conv, step) -> Landscape:
    """The map so far during descent: the minima of the starts run so far, no barriers yet."""
    rep, assignment = merge_minima(x, e, ok, b.config.merge_tol)
    return b.landscape(x[rep], e[rep], assignment, conv, _inf_matrix(e[rep]), _inf_matrix(e[rep]), step[rep])


def _step_scale(step: torch.Tensor, assignment: torch.Tensor, m: int) -> torch.Tensor:
    """(M,) median last descent step over the starts of each minimum; a start that began at its minimum has an
    unreliable η (its gradient was ~0), the median of several is not. Non-finite values take the map's median."""
    out = torch.stack([step[assignment == i].median() for i in range(m)]) if m else step[:0]
    good = torch.isfinite(out) & (out > 0)
    return torch.where(good, out, out[good].median() if good.any() else torch.ones_like(out))


def _linear_all(b: _Builder, minima, energy, partial) -> tuple[np.ndarray, np.ndarray]:
    """Steps 3–4: candidate pairs and their linear barriers, in chunks of about batch_size path points."""
    c, m = b.config, len(minima)
    b.phase = "linear"
    mode = c.pairs if c.pairs != "auto" else ("all" if m <= c.all_max else "knn")
    pairs = barriers.candidate_pairs(minima, mode, c.k_nearest)
    linear = _inf_matrix(energy)
    chunk = max(1, c.batch_size // max(1, c.n_path - 2))
    for lo in range(0, len(pairs), chunk):
        p = pairs[lo:lo + chunk]
        linear[p[:, 0], p[:, 1]] = linear[p[:, 1], p[:, 0]] = (
            barriers.linear_barriers(b.energy, minima, energy, p, c.n_path, c.batch_size).double().cpu().numpy())
        b.report(SHARE["descent"], (lo + len(p)) / len(pairs), lambda: partial(linear, _inf_matrix(energy)))
    b.close_phase("linear")
    return pairs, linear


def _refine_all(b: _Builder, minima, energy, step, pairs, linear, partial) -> np.ndarray:
    """Step 5: elastic bands on the spanning-tree edges (or all candidate pairs), to a fixed point."""
    c, m = b.config, len(minima)
    b.phase = "refine"
    refined = _inf_matrix(energy)
    e_np = energy.double().cpu().numpy()
    # a straight segment no higher than its ends is already the lowest possible barrier: keep it as refined
    exact = linear[pairs[:, 0], pairs[:, 1]] <= np.maximum(e_np[pairs[:, 0]], e_np[pairs[:, 1]])
    refined[pairs[exact, 0], pairs[exact, 1]] = refined[pairs[exact, 1], pairs[exact, 0]] = \
        linear[pairs[exact, 0], pairs[exact, 1]]
    eta = c.neb_step * torch.minimum(step[pairs[:, 0]], step[pairs[:, 1]]) if len(pairs) else step[:0]
    chunk = max(1, c.batch_size // (c.n_images - 2))
    rounds = 1 if c.refine == "all" else c.refine_rounds
    for r in range(rounds):
        used = np.where(np.isfinite(refined), refined, linear)
        w = used[pairs[:, 0], pairs[:, 1]]
        todo = np.arange(len(pairs)) if c.refine == "all" else barriers.spanning_edges(pairs, w, m)
        todo = todo[~np.isfinite(refined[pairs[todo, 0], pairs[todo, 1]]) & np.isfinite(w[todo])]
        if len(todo) == 0:
            break
        for lo in range(0, len(todo), chunk):
            k = todo[lo:lo + chunk]
            i, j = torch.as_tensor(pairs[k, 0]), torch.as_tensor(pairs[k, 1])
            bands = barriers.relax_bands(
                b.energy, minima[i], minima[j], energy[i], energy[j], eta[k], n_images=c.n_images,
                n_steps=c.neb_steps, spring=c.spring, climb_after=c.climb_after, max_move=c.max_move,
                move_tol=c.move_tol, n_path=c.n_path, clamp=c.clamp, batch_size=c.batch_size)
            val = np.minimum(bands.barrier.double().cpu().numpy(), linear[pairs[k, 0], pairs[k, 1]])
            refined[pairs[k, 0], pairs[k, 1]] = refined[pairs[k, 1], pairs[k, 0]] = val
            share = (r + (lo + len(k)) / len(todo)) / rounds
            b.report(SHARE["descent"] + SHARE["linear"], share, lambda: partial(linear, refined))
    b.close_phase("refine")
    return refined


def map_landscape(energy: Energy, starts: torch.Tensor, config: LandscapeConfig = LandscapeConfig(),
                  labels: np.ndarray | torch.Tensor | None = None,
                  progress: Callable[[int, int, Landscape], None] | None = None,
                  decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Landscape:
    """Map the landscape of ``energy`` reached from ``starts`` (steps 1–6 of the module docstring).

    Args:
        energy: callable x (B, ...) -> (B,), p ∝ exp(−E); evaluated on the starts' device.
        starts: (N, ...) float states: images (N, 1, 28, 28), latent codes (N, d), 2-D points (N, 2), …
        config: ``LandscapeConfig``.
        labels: optional (N,) integer labels of the starts (for ``Landscape.purity``).
        progress: optional ``progress(done, total, partial)`` called as the map grows (after each descent
            chunk, linear-barrier chunk and elastic-band chunk); ``done`` increases, ``total`` is fixed
            (thousandths of the estimated work) and ``partial`` is a drawable ``Landscape`` of what is known.
        decode: optional callable minima (M, ...) -> images (M, 1, 28, 28), e.g. a generator for a latent map.

    Returns:
        The ``Landscape``: images are ``decode(minima)``, or the minima themselves when they are 28×28 images,
        else None. ``cost`` counts every evaluated state (``decode`` calls are not counted).
    """
    config.validate()
    b = _Builder(energy, starts, config, labels, progress, decode)
    minima, e, step, assignment, conv = _descend_all(b)
    images = b.images(minima)

    def partial(linear, refined):
        return b.landscape(minima, e, assignment, conv, linear, refined, step, images)

    pairs, linear = _linear_all(b, minima, e, partial)
    refined = _inf_matrix(e)
    if config.refine != "none" and len(pairs):
        refined = _refine_all(b, minima, e, step, pairs, linear, partial)
    else:
        b.close_phase("refine")
    result = partial(linear, refined)
    if progress is not None:
        progress(PROGRESS_TOTAL, PROGRESS_TOTAL, result)
    return result
