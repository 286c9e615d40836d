"""HMC, annealed Langevin and the lab's 2-D energies against exact answers: stationary moments, ULA's known bias,
mode weights, normalised grids."""

import math

import numpy as np
import pytest
import torch

from ebmviz.sampling import AnnealedConfig, HMCConfig, LangevinConfig, LiveRun, annealed, hmc, langevin
from ebmviz.sampling.toy2d import LAB_ENERGIES, custom, gaussian_energy

FREE = dict(clamp=None, grad_clip=None)
COV = np.array([[2.0, 1.8], [1.8, 2.0]])  # the lab's correlated Gaussian


def second_half(tr) -> np.ndarray:
    """(N, 2) the pooled states of the second half of a float32 trajectory recorded every step."""
    return tr.frames[len(tr.frames) // 2:].reshape(-1, 2)


@pytest.mark.parametrize("sampler", ["mala", "hmc"])
def test_exact_samplers_match_the_correlated_gaussian(sampler):
    energy = gaussian_energy([0.0, 0.0], COV)
    x0 = torch.randn(400, 2, generator=torch.Generator().manual_seed(0)) * 1.5
    if sampler == "mala":
        tr = langevin(energy, x0, LangevinConfig.at_temperature(0.2, 1.0, n_steps=400, metropolis=True, **FREE),
                      seed=1, frame_format="float32")
    else:
        tr = hmc(energy, x0, HMCConfig(n_steps=200, step_size=0.25, n_leapfrog=8), seed=1, frame_format="float32")
    x = second_half(tr)
    np.testing.assert_allclose(x.mean(0), [0.0, 0.0], atol=0.08)
    np.testing.assert_allclose(np.cov(x, rowvar=False), COV, rtol=0.08, atol=0.05)


def test_ula_is_biased_as_theory_predicts_and_mala_corrects_it():
    """On N(0, I), ULA with step s has stationary variance 1/(1 − s/2) (here 1.667); MALA's is 1."""
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    var = {}
    for name, mh in (("ula", False), ("mala", True)):
        tr = langevin(energy, x0, LangevinConfig.at_temperature(0.8, 1.0, n_steps=300, metropolis=mh, **FREE),
                      seed=2, frame_format="float32")
        var[name] = second_half(tr).var(0).mean()
    assert var["ula"] == pytest.approx(1 / (1 - 0.8 / 2), rel=0.05)
    assert var["mala"] == pytest.approx(1.0, rel=0.05)


def test_hmc_records_acceptance_paths_and_costs_l_gradients_per_update():
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    cfg = HMCConfig(n_steps=12, step_size=0.05, n_leapfrog=6, record_every=4, record_paths=True)
    tr = hmc(energy, torch.randn(5, 2), cfg, seed=0, frame_format="float32")
    assert tr.accept.shape == (12, 5) and tr.grad_evals == 12 * 6
    assert tr.accept.mean() > 0.95  # a small ε nearly conserves H
    assert tr.leapfrog.shape == (3, 7, 5, 2) and tr.frame_steps.tolist() == [0, 4, 8, 12]
    # an accepted update ends at its path's last point
    accepted = tr.accept[[3, 7, 11]].astype(bool)  # updates 4, 8, 12
    np.testing.assert_allclose(tr.leapfrog[:, -1][accepted], tr.frames[1:][accepted], atol=1e-6)


def test_hmc_leapfrog_path_starts_where_the_update_started():
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    cfg = HMCConfig(n_steps=3, step_size=0.1, n_leapfrog=4, record_paths=True)
    tr = hmc(energy, torch.randn(4, 2), cfg, seed=3, frame_format="float32")
    np.testing.assert_allclose(tr.leapfrog[:, 0], tr.frames[:-1], atol=1e-6)


def test_hmc_rejects_non_finite_proposals_and_leaves_a_box_alone():
    energy = lambda x: torch.where(x[:, 0] > 1.0, torch.full_like(x[:, 0], float("nan")), 0.5 * (x**2).sum(1))
    tr = hmc(energy, torch.zeros(50, 2), HMCConfig(n_steps=60, step_size=0.5, n_leapfrog=5), seed=0,
             frame_format="float32")
    assert tr.n_diverged == 0 and np.isfinite(tr.final).all() and (tr.final[:, 0] <= 1.0).all()
    boxed = hmc(lambda x: 0.5 * (x**2).sum(1), torch.zeros(50, 2),
                HMCConfig(n_steps=60, step_size=0.5, n_leapfrog=5, clamp=(-0.5, 0.5)), seed=0, frame_format="float32")
    assert np.abs(boxed.frames).max() <= 0.5


def test_annealing_finds_every_mode_where_plain_langevin_stays_in_one():
    """From a start packed into one mode of the 4-mode mixture, annealed Langevin ends with each mode's exact share
    (1/4); plain ULA at the same step and budget keeps over 90% of the chains in the first mode."""
    toy = LAB_ENERGIES["mix4"]
    x0 = torch.tensor([2.0, 2.0]) + 0.1 * torch.randn(800, 2, generator=torch.Generator().manual_seed(0))
    hot = annealed(toy.energy, x0, AnnealedConfig(n_steps=400, step_size=0.05, t_start=8.0, hold=0.5), seed=1,
                   frame_format="float32")
    cold = langevin(toy.energy, x0, LangevinConfig.at_temperature(0.05, 1.0, n_steps=400, **FREE), seed=1,
                    frame_format="float32")

    def shares(x):
        q = (x[:, 0] > 0).astype(int) * 2 + (x[:, 1] > 0).astype(int)
        return np.bincount(q, minlength=4) / len(x)

    np.testing.assert_allclose(shares(hot.final), [0.25] * 4, atol=0.06)
    assert shares(cold.final)[3] > 0.9
    assert hot.temperature[0] == pytest.approx(8.0) and hot.temperature[-1] == 1.0
    assert AnnealedConfig(n_steps=400, hold=0.5).held_from() == 201


def test_annealed_temperatures_and_validation():
    cfg = AnnealedConfig(n_steps=10, t_start=8.0, t_end=1.0, n_levels=4, hold=0.4)
    temps = cfg.temperatures()
    np.testing.assert_allclose(temps, [8.0, 8.0, 4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert cfg.held_from() == 7
    for bad, reason in ((dict(t_start=0.5), "cools"), (dict(hold=1.5), "hold"), (dict(n_levels=0), "n_levels")):
        with pytest.raises(ValueError, match=reason):
            AnnealedConfig(**bad).validate()
    with pytest.raises(ValueError, match="n_leapfrog"):
        HMCConfig(n_leapfrog=0).validate()


def test_new_samplers_run_on_image_energies():
    energy = lambda x: 0.5 * (x**2).flatten(1).sum(1)
    x0 = torch.rand(3, 1, 28, 28) * 2 - 1
    a = hmc(energy, x0, HMCConfig(n_steps=4, step_size=0.05, n_leapfrog=3, clamp=(-1.0, 1.0)), seed=0)
    b = annealed(energy, x0, AnnealedConfig(n_steps=6, step_size=0.01, t_start=4.0, clamp=(-1.0, 1.0)), seed=0)
    for tr in (a, b):
        assert tr.frames.dtype == np.uint8 and tr.frames.shape[1:] == (3, 1, 28, 28) and tr.n_diverged == 0
    again = LiveRun(energy, x0, HMCConfig(n_steps=4, step_size=0.05, n_leapfrog=3, clamp=(-1.0, 1.0)), seed=0)
    again.advance(max_steps=2)
    again.advance()
    np.testing.assert_array_equal(again.trajectory().frames, a.frames)


@pytest.mark.parametrize("name", sorted(LAB_ENERGIES))
def test_lab_grids_are_normalised_densities_with_their_mass_inside_the_box(name):
    toy = LAB_ENERGIES[name]
    g = toy.grid(200)
    assert g.prob.sum() == pytest.approx(1.0) and (g.prob >= 0).all()
    assert g.prob[0].sum() + g.prob[-1].sum() + g.prob[:, 0].sum() + g.prob[:, -1].sum() < 1e-3
    assert (g.marginal_x() * g.cell[0]).sum() == pytest.approx(1.0)
    assert toy.energy(toy.starts(7)).shape == (7,)


def test_grid_moments_of_the_correlated_gaussian_and_a_normalised_mixture():
    g = LAB_ENERGIES["correlated"].grid(300)
    X, Y = np.meshgrid(g.x, g.y)
    cov_xy = (g.prob * X * Y).sum()
    assert cov_xy == pytest.approx(1.8, rel=0.01) and (g.prob * X**2).sum() == pytest.approx(2.0, rel=0.01)
    # the mixture energy is −log of a normalised density: exp(−E) integrates to 1 over the box
    mix = custom([[0.0, 0.0, 0.5, 1.0], [2.0, 1.0, 0.3, 3.0]])
    h = mix.grid(300)
    assert (np.exp(-h.energy) * h.cell[0] * h.cell[1]).sum() == pytest.approx(1.0, rel=1e-3)
    assert h.mean() == pytest.approx([1.5, 0.75], abs=0.01)
    with pytest.raises(ValueError, match="positive"):
        custom([[0.0, 0.0, -1.0, 1.0]])


def test_muller_brown_minima_are_where_the_lab_density_peaks():
    g = LAB_ENERGIES["muller_brown"].grid(300)
    r, c = np.unravel_index(g.prob.argmax(), g.prob.shape)
    assert math.hypot(g.x[c] + 0.558, g.y[r] - 1.442) < 0.03


@pytest.mark.parametrize("name", ["ring", "banana", "double_well"])
def test_mala_and_hmc_keep_the_exact_density_where_ula_drifts_from_it(name):
    """Started from exact draws, MALA and HMC stay within a small factor of the exact-draw floor of the binned KL;
    ULA at twice the lab's step moves measurably away (its stationary density is not the target)."""
    from ebmviz.sampling.diagnostics import binned_kl

    toy = LAB_ENERGIES[name]
    grid = toy.grid(200)
    xe, ye = grid.edges
    x0 = torch.as_tensor(grid.draw(400, seed=5))

    def kl(tr):
        pooled = tr.frames[len(tr.frames) // 2:].reshape(-1, 2)
        return binned_kl(pooled[np.linspace(0, len(pooled) - 1, 20000).astype(int)], grid.prob, xe, ye)

    step = 2 * toy.step
    got = {kind: kl(langevin(toy.energy, x0, LangevinConfig.at_temperature(step, 1.0, n_steps=600, metropolis=mh,
                                                                           **FREE), seed=1, frame_format="float32"))
           for kind, mh in (("ula", False), ("mala", True))}
    got["hmc"] = kl(hmc(toy.energy, x0, HMCConfig(n_steps=300, step_size=math.sqrt(2 * toy.step) / 2, n_leapfrog=3),
                        seed=1, frame_format="float32"))
    floor = binned_kl(grid.draw(20000, seed=9), grid.prob, xe, ye)  # exact draws, the same count: ≈ 0.009
    assert got["mala"] < 2 * floor + 0.003 and got["hmc"] < 2.5 * floor + 0.003, (got, floor)
    assert got["ula"] > 1.5 * got["mala"], (got, floor)


def test_one_jko_inner_step_of_size_tau_is_the_langevin_step():
    from ebmviz.sampling import JKOConfig, LiveRun

    energy = LAB_ENERGIES["banana"].energy
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    tau = 0.01
    jko = LiveRun(energy, x0, JKOConfig(n_steps=20, tau=tau, inner_steps=1, inner_step=tau), seed=4,
                  frame_format="float32")
    ula = LiveRun(energy, x0, LangevinConfig.at_temperature(tau, 1.0, n_steps=20, **FREE), seed=4,
                  frame_format="float32")
    jko.advance()
    ula.advance()
    np.testing.assert_allclose(np.stack(jko.frames), np.stack(ula.frames), rtol=1e-5, atol=1e-6)


def test_jko_inner_steps_reach_the_proximal_point_and_agree_with_langevin_as_tau_shrinks():
    from ebmviz.sampling.jko import JKOConfig, proximal_point

    energy = gaussian_energy([0.0, 0.0], np.diag([1.0, 0.25]))  # precision diag(1, 4)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) * 2
    tau = 0.5
    y, _, _ = proximal_point(energy, x, JKOConfig(tau=tau, inner_steps=200))
    # argmin_y ½yᵀΛy + ‖y − x‖²/(2τ) = x / (1 + τΛ), coordinate-wise
    np.testing.assert_allclose(y.numpy(), (x / (1 + tau * torch.tensor([1.0, 4.0]))).numpy(), atol=1e-5)
    # the proximal drift differs from the explicit one by O(τ²): halving τ quarters the gap
    gaps = []
    for t in (0.02, 0.01, 0.005):
        y, _, _ = proximal_point(energy, x, JKOConfig(tau=t, inner_steps=50))
        explicit = x - t * (x * torch.tensor([1.0, 4.0]))
        gaps.append(float((y - explicit).norm()))
    assert gaps[0] / gaps[1] == pytest.approx(4, rel=0.15) and gaps[1] / gaps[2] == pytest.approx(4, rel=0.15)


def test_jko_steps_are_stable_where_ula_diverges():
    """On N(0, I) with τ = 3 (ULA needs τ < 2) the exact proximal step has stationary variance 2(1 + τ)²/(2 + τ)."""
    from ebmviz.sampling import JKOConfig

    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(2))
    tau = 3.0
    jko = LiveRun(energy, x0, JKOConfig(n_steps=60, tau=tau, inner_steps=60, inner_step=0.2), seed=3,
                  frame_format="float32")
    jko.advance()
    var = np.stack(jko.frames)[30:].reshape(-1, 2).var(0).mean()
    assert var == pytest.approx(2 * (1 + tau) ** 2 / (2 + tau), rel=0.06)
    ula = langevin(energy, x0, LangevinConfig.at_temperature(tau, 1.0, n_steps=60, **FREE), seed=3,
                   frame_format="float32")
    assert ula.n_diverged > 0 or np.abs(ula.final).max() > 1e6


def test_live_run_reads_one_row_and_running_means_without_joining_chunks():
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    run = LiveRun(energy, torch.zeros(5, 2), LangevinConfig.at_temperature(0.5, 1.0, n_steps=30, metropolis=True,
                                                                           **FREE), seed=0, frame_format="float32")
    for _ in range(4):
        run.advance(max_steps=7)
    acc = run.rows("accept")
    for t in (0, 6, 7, 20, 27):
        np.testing.assert_array_equal(run.row("accept", t), acc[t])
    assert run.mean("accept", 17) == pytest.approx(acc[:17].mean())
    with pytest.raises(IndexError):
        run.row("accept", 28)


def test_annealing_without_held_steps_still_ends_at_the_target_temperature():
    cfg = AnnealedConfig(n_steps=10, hold=0.0, t_start=8.0, t_end=1.0, n_levels=4)
    np.testing.assert_allclose(cfg.temperatures(), [8, 8, 8, 4, 4, 2, 2, 2, 1, 1])
    assert cfg.held_from() == 9  # the last level is the target's temperature
    assert AnnealedConfig(n_steps=6, n_levels=1, hold=0.5).temperatures().tolist() == [1.0] * 6


def test_reflected_proposal_density_integrates_to_one_and_matches_its_draws():
    """``reflected_log_q`` is the density of ``reflect(m + σξ)`` on the box: it integrates to 1 (with the Gaussian
    constant the sampler leaves out) and a histogram of reflected draws follows it, for a mean outside the box and
    a σ wide enough to fold several times."""
    from ebmviz.sampling.langevin_dynamics import reflect, reflected_log_q

    lo, hi = -1.0, 1.0
    for m, sigma in ((-1.3, 0.2), (0.4, 1.7), (1000.3, 0.2)):  # the last: a drift far past the box
        y = torch.linspace(lo, hi, 20001, dtype=torch.float64)[:, None]
        q = torch.exp(reflected_log_q(y, torch.full_like(y, m), sigma, lo, hi)) / (sigma * math.sqrt(2 * math.pi))
        mass = float(torch.trapezoid(q, y[:, 0]))
        assert mass == pytest.approx(1.0, abs=1e-4), (m, sigma, mass)
        draws = reflect(m + sigma * torch.randn(400_000, generator=torch.Generator().manual_seed(3),
                                                dtype=torch.float64), lo, hi)
        assert float(draws.min()) >= lo and float(draws.max()) <= hi
        counts, _ = np.histogram(draws.numpy(), bins=20, range=(lo, hi))
        per_bin = (q[:-1] + q[1:]).numpy() / 2 * float(y[1, 0] - y[0, 0])  # the density's mass per grid cell …
        expected = per_bin.reshape(20, -1).sum(1) * len(draws)  # … summed over each bin's 1,000 cells
        chi2 = float((((counts - expected) ** 2) / expected).sum())
        assert chi2 < 45, (m, sigma, chi2)  # χ² with 19 degrees of freedom: 45 is its 0.9993 quantile
    # σ > 2w: uniform on the box (a constant log-density), and the draws are uniform too
    y = torch.linspace(lo, hi, 101)[:, None]
    assert torch.equal(reflected_log_q(y, torch.full_like(y, 0.7), 5.0, lo, hi), torch.zeros(101))
    draws = reflect(0.7 + 5.0 * torch.randn(400_000, generator=torch.Generator().manual_seed(4)), lo, hi)
    counts, _ = np.histogram(draws.numpy(), bins=20, range=(lo, hi))
    assert float(((counts - 20_000) ** 2 / 20_000).sum()) < 45


def test_mala_reflecting_at_the_box_samples_a_truncated_gaussian_piled_against_a_wall():
    """The image case in small: 16 pixels whose target N(−1.5, 0.5²) is cut by the box [−1, 1], so its mass piles
    against the wall at −1 as digits' backgrounds do. MALA with reflection accepts most proposals and its draws
    follow the exact truncated normal (Kolmogorov–Smirnov against the exact CDF; leaving out the mirror images in q
    gives p ≈ 4e-11 and a mean off by 0.035); rejecting every proposal that
    leaves the box (the old rule, reproduced here) accepts almost none."""
    from scipy import stats

    m, sd, lo, hi, d = -1.5, 0.5, -1.0, 1.0, 16
    energy = lambda x: ((x - m) ** 2).sum(1) / (2 * sd**2)  # noqa: E731
    cfg = LangevinConfig.at_temperature(0.05, 1.0, n_steps=400, metropolis=True, grad_clip=None, clamp=(lo, hi),
                                        record_every=10)
    x0 = torch.zeros(500, d)
    tr = langevin(energy, x0, cfg, seed=4, frame_format="float32")
    assert tr.accept.mean() > 0.4, tr.accept.mean()  # 0.56 measured; the old rule accepts a few %
    pooled = tr.frames[len(tr.frames) // 2:].reshape(-1)  # steps 200 … 400, every 10th, of 500 chains × 16
    assert pooled.min() >= lo and pooled.max() <= hi
    exact = stats.truncnorm((lo - m) / sd, (hi - m) / sd, loc=m, scale=sd)
    thinned = pooled[:: 16 * 4]  # one coordinate in 16 and one recorded step in 4: near-independent draws
    assert stats.kstest(thinned, exact.cdf).pvalue > 1e-3
    assert abs(pooled.mean() - exact.mean()) < 0.01 and abs(pooled.std() - exact.std()) < 0.01

    # The rule it replaced: a proposal with any coordinate outside the box is rejected.
    x = x0.clone()
    gen, sigma, s = torch.Generator().manual_seed(0), cfg.noise_std, cfg.step_size
    inside = []
    for _ in range(50):
        prop = x - s * (x - m) / sd**2 + sigma * torch.randn(x.shape, generator=gen)
        inside.append(((prop >= lo) & (prop <= hi)).all(1).float().mean())
        x = torch.where(((prop >= lo) & (prop <= hi)).all(1, keepdim=True), prop, x)
    assert float(torch.stack(inside[10:]).mean()) < 0.25
