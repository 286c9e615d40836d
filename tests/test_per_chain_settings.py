"""Langevin with per-chain step sizes and noises: chains with different settings share one batch, and each one is
the sampler its own settings make (exact answers on a Gaussian energy)."""

import math

import pytest
import torch

from ebmviz.sampling import LangevinConfig
from ebmviz.sampling.langevin_dynamics import langevin_steps, reflected_log_q


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """E(x) = ‖x‖²/2 per chain: exp(−E/T) is N(0, T·I)."""
    return 0.5 * (x**2).flatten(1).sum(1)


def final(steps):
    x = None
    for st in steps:
        x = st
    return x


def test_equal_per_chain_settings_give_exactly_the_scalar_run():
    x0 = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for metropolis in (False, True):
        cfg = LangevinConfig(n_steps=15, step_size=0.05, noise_std=0.2, metropolis=metropolis)
        a = final(langevin_steps(quadratic, x0, cfg, seed=3))
        b = final(langevin_steps(quadratic, x0, cfg, seed=3, step_size=torch.full((6,), 0.05),
                                 noise_std=torch.full((6,), 0.2)))
        # the same operations on the same numbers, only broadcast from a tensor: equal to float rounding
        torch.testing.assert_close(b.x, a.x, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(b.energy, a.energy, rtol=1e-6, atol=1e-6)
        assert b.temperature.shape == (6,) and math.isclose(float(b.temperature[0]), cfg.temperature, rel_tol=1e-6)


def stationary_variance(metropolis: bool, s: list[float], sigma: list[float], chains: int = 400, steps: int = 600):
    """Per-setting variance of the second half of ``chains`` chains per setting, all run in one batch."""
    k = len(s)
    cfg = LangevinConfig(n_steps=steps, metropolis=metropolis, grad_clip=None, clamp=None)
    x0 = torch.zeros(k * chains, 2, dtype=torch.float64)
    s_b = torch.tensor(s, dtype=torch.float64).repeat_interleave(chains)
    sig_b = torch.tensor(sigma, dtype=torch.float64).repeat_interleave(chains)
    kept = [st.x.clone() for st in langevin_steps(quadratic, x0, cfg, seed=0, step_size=s_b, noise_std=sig_b)
            if st.t > steps // 2]
    xs = torch.stack(kept).view(len(kept), k, chains, 2)
    return xs.pow(2).mean(dim=(0, 2, 3))  # (k,) E[x²] per setting (the mean is 0 by symmetry)


def test_each_ula_chain_has_the_stationary_variance_of_its_own_setting():
    # ULA on E = x²/2 is x' = (1 − s)x + σξ: stationary variance σ² / (1 − (1 − s)²) = σ² / (s(2 − s)), not T.
    s, sigma = [0.1, 0.5, 0.02], [0.3, 0.2, 0.05]
    var = stationary_variance(False, s, sigma)
    for v, si, sg in zip(var.tolist(), s, sigma, strict=True):
        exact = sg**2 / (si * (2 - si))
        # 400 chains × 300 kept steps × 2 coordinates, autocorrelated: ~4% standard error at s = 0.02 (its
        # autocorrelation time is about 1/(2s) = 25 steps), less elsewhere; 15% is over three standard errors
        assert abs(v - exact) / exact < 0.15, (si, sg, v, exact)


def test_each_mala_chain_samples_its_own_temperature_exactly():
    # MALA is exact for exp(−E/T_b) with T_b = σ_b²/(2 s_b): variance T_b, whatever the step size
    s, sigma = [0.4, 0.6, 0.3], [0.4, math.sqrt(2 * 0.6 * 2.0), math.sqrt(2 * 0.3 * 0.25)]
    var = stationary_variance(True, s, sigma)
    for v, si, sg in zip(var.tolist(), s, sigma, strict=True):
        T = sg**2 / (2 * si)
        assert abs(v - T) / T < 0.1, (si, sg, v, T)


def test_reflected_density_per_chain_matches_one_chain_at_a_time():
    g = torch.Generator().manual_seed(0)
    y, mean = torch.rand(4, 3, 3, generator=g) * 2 - 1, torch.rand(4, 3, 3, generator=g) * 4 - 2
    sigma = torch.tensor([0.01, 0.3, 1.5, 5.0])  # the last one is uniform on the box (σ > 2w)
    together = reflected_log_q(y, mean, sigma, -1.0, 1.0)
    alone = torch.cat([reflected_log_q(y[i:i + 1], mean[i:i + 1], float(sigma[i]), -1.0, 1.0) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("s,sigma,message", [
    (torch.ones(3), torch.ones(4), "3 values for 4 chains"),
    (torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.ones(4), "positive"),
    (torch.ones(4), torch.tensor([1.0, float("nan"), 1.0, 1.0]), "finite"),
])
def test_bad_per_chain_settings_are_named(s, sigma, message):
    with pytest.raises(ValueError, match=message):
        next(langevin_steps(quadratic, torch.zeros(4, 2), LangevinConfig(n_steps=2), step_size=s, noise_std=sigma))
    with pytest.raises(ValueError, match="together"):
        next(langevin_steps(quadratic, torch.zeros(4, 2), LangevinConfig(n_steps=2), step_size=torch.ones(4)))
