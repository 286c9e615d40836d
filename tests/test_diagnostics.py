"""Chain diagnostics against exact answers: AR(1) chains, whose ESS and autocorrelation are known in closed form,
chains stuck apart (R-hat), and distances between draws of one density and of another."""

import numpy as np
import pytest

from ebmviz.sampling import diagnostics
from ebmviz.sampling.toy2d import LAB_ENERGIES


def ar1(phi: float, n: int, chains: int, seed: int) -> np.ndarray:
    """(n, chains) stationary AR(1): x_t = φ x_{t−1} + √(1 − φ²) ε_t, variance 1."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, chains))
    x[0] = rng.standard_normal(chains)
    eps = rng.standard_normal((n, chains)) * np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + eps[t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ess_of_ar1_chains_matches_the_closed_form(phi):
    n, chains = 4000, 8
    expected = n * chains * (1 - phi) / (1 + phi)
    got = np.mean([diagnostics.ess(ar1(phi, n, chains, seed)) for seed in range(4)])
    assert got == pytest.approx(expected, rel=0.08)


def test_autocorrelation_of_ar1_is_phi_to_the_lag():
    rho = diagnostics.autocorrelation(ar1(0.8, 20000, 4, seed=1), max_lag=5)
    np.testing.assert_allclose(rho, 0.8 ** np.arange(6), atol=0.03)


def test_rhat_is_one_for_mixed_chains_and_large_for_chains_stuck_apart():
    mixed = ar1(0.5, 2000, 4, seed=2)
    assert diagnostics.rhat(mixed) == pytest.approx(1.0, abs=0.01)
    stuck = mixed + np.array([0.0, 0.0, 3.0, 3.0])  # two chains in another mode
    assert diagnostics.rhat(stuck) > 1.5
    assert np.isnan(diagnostics.rhat(mixed[:3])) and np.isnan(diagnostics.ess(mixed[:3]))


def test_summary_counts_gradients_and_reads_from_burn_in():
    states = np.stack([ar1(0.5, 101, 6, seed=s) for s in (3, 4)], -1)  # (101, 6, 2)
    energy = 0.5 * (states**2).sum(-1)
    accept = np.ones((100, 6))
    accept[:50] = 0
    s = diagnostics.summarize(states, energy, accept, burn_in=51, grad_evals_per_step=3)
    assert s.n_draws == 50 and s.n_chains == 6 and s.grad_evals == 49 * 6 * 3
    assert s.acceptance == 1.0  # only the kept steps count
    assert set(s.ess) == {"x", "y", "energy"} and s.ess_per_grad == pytest.approx(s.min_ess / s.grad_evals)
    assert diagnostics.acceptance(None) is None


def test_distances_are_near_zero_for_exact_draws_and_large_for_a_shifted_density():
    grid = LAB_ENERGIES["mix8"].grid(200)
    exact = grid.draw(2000, seed=1)
    reference = grid.draw(1000, seed=2)
    shifted = exact + np.array([0.7, 0.0], np.float32)
    assert abs(diagnostics.mmd(exact, reference, 1.0)) < 2e-3
    assert diagnostics.mmd(shifted, reference, 1.0) > 0.02
    xe, ye = grid.edges
    kl_exact = diagnostics.binned_kl(exact, grid.prob, xe, ye)
    assert kl_exact < 0.15  # the finite-sample floor, (400 − 1)/(2·2000) ≈ 0.1
    assert diagnostics.binned_kl(shifted, grid.prob, xe, ye) > 1.0


def test_chains_that_never_move_are_not_counted_as_mixed():
    moving = ar1(0.5, 500, 4, seed=6)
    frozen = moving.copy()
    frozen[:, 2] = 0.3  # one chain stuck at one value
    assert np.isnan(diagnostics.ess(frozen)) and diagnostics.rhat(frozen) == np.inf
    all_frozen = np.tile(np.arange(4.0), (500, 1))  # every chain stuck, each at its own value
    assert np.isnan(diagnostics.ess(all_frozen)) and diagnostics.rhat(all_frozen) == np.inf
    rho = diagnostics.autocorrelation(all_frozen, max_lag=5)
    np.testing.assert_allclose(rho, 1.0)  # as correlated as draws can be, not "independent"
