"""Chain diagnostics: acceptance, autocorrelation, effective sample size, split R-hat, distance to an exact density.

The standard estimators come from ArviZ (``arviz_stats.base.array_stats``, numpy in and out): rank-normalised
bulk ESS and split R-hat (Vehtari et al. 2021, "Rank-normalization, folding, and localization"), and the FFT
autocorrelation. ArviZ is imported on first use, so pages that never ask pay nothing.

Draws are arrays (T, B): T draws of B chains, one quantity (a coordinate, or the energy). What they say:
- ESS: how many independent draws the T·B correlated ones are worth for the mean of that quantity; an AR(1)
  chain with coefficient φ gives T·B·(1 − φ)/(1 + φ).
- R-hat: ≈ 1 when every half-chain agrees with the others; above ~1.01 the chains have not mixed (for
  example, each stuck in its own mode).
- ``mmd`` and ``binned_kl``: how far the draws are from the exact density (for the 2-D lab energies, whose
  density ``ebmviz.sampling.toy2d`` normalises on a grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_DRAWS = 4  # fewer draws per chain than this: ESS and R-hat are not defined (NaN)


def _stats():
    from arviz_stats.base import array_stats  # ~0.7 s on first import (scipy)

    return array_stats


def acceptance(accept: np.ndarray | None, burn_in: int = 0) -> float | None:
    """Mean acceptance of the steps from ``burn_in`` on; ``accept`` (T, B) 0/1 or None (an unadjusted sampler)."""
    if accept is None or accept[burn_in:].size == 0:
        return None
    return float(accept[burn_in:].mean())


def autocorrelation(draws: np.ndarray, max_lag: int = 50) -> np.ndarray:
    """(L,) autocorrelation at lags 0 … L−1 (L ≤ max_lag + 1), averaged over chains; draws (T, B)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[:, np.isfinite(draws).all(0)]  # a chain that diverged has no autocorrelation to speak of
    if draws.shape[0] < 2 or draws.shape[1] == 0:
        return np.ones(1)
    with np.errstate(all="ignore"):
        rho = _stats().autocorr(draws.T, axis=-1)  # (B, T) per chain
    rho = np.where(np.isfinite(rho), rho, 1.0)  # a chain that never moved is as correlated as a chain can be
    return rho.mean(0)[: max_lag + 1]


def _across_chains(draws: np.ndarray, stat: str, method: str) -> float:
    """One ArviZ statistic of draws (T, B) across the B chains; NaN below ``MIN_DRAWS`` draws or with a non-finite
    draw. A chain that never moved (all its draws equal) is a sampler that is not sampling: ESS is then NaN (not
    defined: ArviZ would count the frozen draws as independent) and R-hat inf (the chains cannot agree)."""
    draws = np.asarray(draws, dtype=np.float64)
    if draws.shape[0] < MIN_DRAWS or not np.isfinite(draws).all():
        return float("nan")
    if (draws.max(0) == draws.min(0)).any():
        return float("inf") if stat == "rhat" else float("nan")
    with np.errstate(all="ignore"):
        return float(getattr(_stats(), stat)(draws.T, chain_axis=0, draw_axis=1, method=method))


def ess(draws: np.ndarray) -> float:
    """Bulk effective sample size of all chains together; draws (T, B). NaN below ``MIN_DRAWS`` draws."""
    return _across_chains(draws, "ess", "bulk")


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat over the B chains; draws (T, B). NaN below ``MIN_DRAWS`` draws."""
    return _across_chains(draws, "rhat", "rank")


def mmd(samples: np.ndarray, reference: np.ndarray, bandwidth: float) -> float:
    """Unbiased squared maximum mean discrepancy with the kernel exp(−‖a − b‖²/(2h²)); samples (N, D),
    reference (M, D), h = ``bandwidth``. 0 in expectation when both come from one density (so it can come
    out slightly negative); larger is farther."""
    a, b = np.asarray(samples, np.float64), np.asarray(reference, np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")

    def k(u, v):
        d2 = (u**2).sum(1)[:, None] + (v**2).sum(1)[None] - 2 * u @ v.T
        return np.exp(-np.maximum(d2, 0) / (2 * bandwidth**2))

    kaa, kbb = k(a, a), k(b, b)
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                 - 2 * k(a, b).mean())


def binned_kl(samples: np.ndarray, prob: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray,
              bins: int = 20, pseudo: float = 0.5) -> float:
    """KL(p ‖ q̂) in nats between the exact density and the draws, on a ``bins`` × ``bins`` grid of the box.

    ``prob`` (n, n) holds the exact cell probabilities on the fine grid with the given (n+1,) edges (n a multiple
    of ``bins``); q̂ is the draws' histogram with ``pseudo`` added to every bin, and draws outside the box count
    in N (so mass the sampler puts outside is missing inside). 0 only when the histogram matches p exactly; a
    finite sample leaves a floor of about (bins² − 1)/(2N).
    """
    n = prob.shape[0]
    if n % bins:
        raise ValueError(f"the fine grid ({n}) must be a multiple of bins ({bins})")
    f = n // bins
    p = prob.reshape(bins, f, bins, f).sum((1, 3))  # (bins, bins), rows y
    xe, ye = x_edges[::f], y_edges[::f]
    s = np.asarray(samples, np.float64)
    counts, _, _ = np.histogram2d(s[:, 1], s[:, 0], bins=[ye, xe])  # rows y, columns x: only draws inside
    q = (counts + pseudo) / (len(s) + pseudo * bins * bins)
    keep = p > 0
    return float((p[keep] * np.log(p[keep] / q[keep])).sum())


@dataclass(frozen=True)
class ChainSummary:
    """Diagnostics of B chains over the kept draws (steps ``burn_in`` … T)."""

    n_chains: int
    n_draws: int  # draws per chain that were read
    acceptance: float | None
    ess: dict[str, float]  # bulk ESS per quantity ("x", "y", …, "energy")
    rhat: dict[str, float]  # split R-hat per quantity
    grad_evals: int  # energy gradients spent on the kept draws, all chains
    distance: dict[str, float] = field(default_factory=dict)  # e.g. {"MMD²": …, "binned KL": …}
    n_stopped: int = 0  # chains left out because they stopped at a non-finite value

    @property
    def min_ess(self) -> float:
        vals = [v for v in self.ess.values() if np.isfinite(v)]
        return min(vals) if vals else float("nan")

    @property
    def max_rhat(self) -> float:
        vals = [v for v in self.rhat.values() if np.isfinite(v)]
        return max(vals) if vals else float("nan")

    @property
    def ess_per_grad(self) -> float:
        """The smallest ESS per energy-gradient evaluation: what a draw of the worst quantity costs."""
        return self.min_ess / self.grad_evals if self.grad_evals else float("nan")


def summarize(states: np.ndarray, energy: np.ndarray, accept: np.ndarray | None = None, *, burn_in: int = 0,
              grad_evals_per_step: int = 1, names: tuple[str, ...] = ("x", "y"), thin: int = 1) -> ChainSummary:
    """Diagnostics of a run from step ``burn_in`` on.

    Args:
        states: (T+1, B, D) the states x_0 … x_T (a float32 ``Trajectory.frames`` recorded every step).
        energy: (T+1, B) E(x_0) … E(x_T).
        accept: (T, B) accept indicators of steps 1 … T, or None.
        burn_in: the first state read (0 reads them all).
        grad_evals_per_step: energy gradients per step (HMC: L).
        names: a name per coordinate; extra coordinates are named by index.
        thin: read every ``thin``-th kept draw for ESS and R-hat (a live page keeps its cost flat; ESS then counts
            thinned draws, a lower bound on the full run's); gradients still count every step.
    """
    kept = states[burn_in:]
    steps = max(0, kept.shape[0] - 1)
    grads = int(steps * kept.shape[1] * grad_evals_per_step)
    kept, energy = kept[::thin], energy[burn_in:][::thin]
    d = kept.shape[-1] if kept.ndim == 3 else 0
    quantities = {(names[i] if i < len(names) else str(i)): kept[:, :, i] for i in range(d)}
    quantities["energy"] = energy
    return ChainSummary(
        n_chains=int(kept.shape[1]), n_draws=int(kept.shape[0]),
        acceptance=acceptance(accept, max(0, burn_in)),
        ess={k: ess(v) for k, v in quantities.items()}, rhat={k: rhat(v) for k, v in quantities.items()},
        grad_evals=grads)


@dataclass(frozen=True)
class Diagnostics:
    """Mixing numbers of the energy traces' second half (the first half is burn-in)."""

    steps: int  # energies per chain that were read
    chains: int
    ess: float  # ArviZ bulk ESS of the energy (NaN when it cannot be estimated)
    rhat: float  # split R-hat across chains
    ess_per_grad: float  # ESS per gradient evaluation of the read steps
    acceptance: float | None  # MALA's mean acceptance over the same steps; None for ULA
    autocorrelation: np.ndarray  # (L ≤ 41,) of the energy, lags 0 … L − 1


def second_half_diagnostics(energy: np.ndarray, accept: np.ndarray | None) -> Diagnostics:
    """``energy`` (T+1, B) and ``accept`` (T, B) or None of a run: ESS, R-hat, acceptance and autocorrelation of
    its second half."""
    kept = energy[len(energy) // 2:]  # (t/2, B)
    n_eff = ess(kept)
    evals = max(1, (kept.shape[0] - 1) * kept.shape[1])
    return Diagnostics(kept.shape[0], kept.shape[1], n_eff, rhat(kept), n_eff / evals,
                       acceptance(accept, len(energy) // 2), autocorrelation(kept, max_lag=40))
