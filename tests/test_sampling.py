"""Langevin sampler: contract, determinism, divergence handling, and statistics against exact answers."""

import math

import numpy as np
import pytest
import torch

from ebmviz.sampling import LangevinConfig, LiveRun, langevin, sample
from ebmviz.sampling.toy2d import gaussian_energy, mixture_energy

FREE = dict(clamp=None, grad_clip=None)  # exact Langevin: no clipping, no box


def _cov(x):
    return np.cov(x, rowvar=False)


# --- contract ------------------------------------------------------------------------------------

def test_trajectory_shapes_and_recording():
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    cfg = LangevinConfig.at_temperature(0.05, 1.0, n_steps=23, record_every=5, **FREE)
    tr = langevin(energy, torch.zeros(7, 2), cfg, seed=1, frame_format="float32")
    assert tr.final.shape == (7, 2)
    assert list(tr.frame_steps) == [0, 5, 10, 15, 20, 23]
    assert tr.frames.shape == (6, 7, 2)
    assert tr.energy.shape == (24, 7) and tr.grad_norm.shape == (23, 7) and tr.step_norm.shape == (23, 7)
    assert tr.accept is None and list(tr.diverged_at) == [-1] * 7
    np.testing.assert_allclose(tr.frames[-1], tr.final)
    # energy rows are E(x_t) of the recorded states
    np.testing.assert_allclose(tr.energy[-1], 0.5 * (tr.final**2).sum(1), rtol=1e-5)


def test_image_frames_are_uint8_and_match_final():
    energy = lambda x: (x**2).flatten(1).sum(1)
    tr = langevin(energy, torch.rand(3, 1, 28, 28) * 2 - 1, LangevinConfig(n_steps=4), seed=0)
    assert tr.frames.dtype == np.uint8 and tr.frames.shape == (5, 3, 1, 28, 28)
    np.testing.assert_array_equal(tr.frames[-1], np.round((tr.final + 1) * 127.5).astype(np.uint8))


def test_same_seed_same_frames_and_chunked_equals_one_shot():
    energy = mixture_energy()
    cfg = LangevinConfig.at_temperature(0.05, 1.0, n_steps=40, metropolis=True, **FREE)
    x0 = torch.randn(16, 2)
    a = langevin(energy, x0, cfg, seed=3, frame_format="float32")
    b = langevin(energy, x0, cfg, seed=3, frame_format="float32")
    c = langevin(energy, x0, cfg, seed=4, frame_format="float32")
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.allclose(a.final, c.final)
    run = LiveRun(energy, x0, cfg, seed=3, frame_format="float32")
    while not run.done:
        run.advance(max_steps=7)
    chunked = run.trajectory()
    np.testing.assert_array_equal(chunked.frames, a.frames)
    np.testing.assert_allclose(chunked.energy, a.energy)
    np.testing.assert_array_equal(chunked.accept, a.accept)


def test_sampling_leaves_parameters_alone_and_works_under_no_grad():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    energy = lambda x: net(x).squeeze(-1)
    with torch.no_grad():
        out = sample(energy, torch.zeros(5, 4), LangevinConfig(n_steps=3, **FREE), seed=0)
    assert out.shape == (5, 4) and torch.isfinite(out).all()
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


def test_clamp_and_gradient_clip_bound_each_step():
    energy = lambda x: -10.0 * x.flatten(1).sum(1)  # pushes every coordinate up, hard
    cfg = LangevinConfig(n_steps=30, step_size=1.0, noise_std=0.0, grad_clip=0.03, clamp=(-1.0, 1.0))
    tr = langevin(energy, torch.zeros(4, 10), cfg, frame_format="float32")
    assert tr.frames.max() <= 1.0 and tr.frames.min() >= -1.0
    assert tr.step_norm.max() <= 0.03 * math.sqrt(10) + 1e-6  # s·clip per coordinate


def test_at_temperature_and_validation():
    cfg = LangevinConfig.at_temperature(0.5, 2.0)
    assert cfg.noise_std == pytest.approx(math.sqrt(2 * 0.5 * 2.0)) and cfg.temperature == pytest.approx(2.0)
    assert LangevinConfig.from_dict(cfg.to_dict()) == cfg
    for bad in (dict(step_size=-1.0), dict(step_size=float("nan")), dict(noise_std=-0.1),
                dict(n_steps=-3), dict(record_every=0), dict(clamp=(1.0, -1.0)),
                dict(metropolis=True, noise_std=0.0)):
        with pytest.raises(ValueError):
            LangevinConfig(**bad).validate()


# --- divergence: reported, never raised ------------------------------------------------------------

def test_divergent_chains_stop_with_last_finite_state():
    energy = lambda x: -(x**2).flatten(1).sum(1)  # unbounded below: plain gradient steps blow up
    cfg = LangevinConfig(n_steps=200, step_size=1e6, noise_std=0.0, **FREE)
    tr = langevin(energy, torch.full((3, 2), 0.5), cfg, frame_format="float32")
    assert (tr.diverged_at >= 0).all() and tr.n_diverged == 3
    assert np.isfinite(tr.final).all() and np.isfinite(tr.frames).all()


def test_nan_energy_stops_only_the_chains_that_meet_it():
    energy = lambda x: torch.where(x[:, 0] > 1.0, torch.nan, 0.5 * (x**2).sum(1) - 3.0 * x[:, 0])
    x0 = torch.tensor([[0.0, 0.0], [-5.0, 0.0]])
    tr = langevin(energy, x0, LangevinConfig(n_steps=100, step_size=0.5, noise_std=0.0, **FREE),
                  frame_format="float32")
    assert tr.diverged_at[0] >= 0 and np.isfinite(tr.final).all()
    assert tr.final[0, 0] > 0.0  # it moved towards the NaN region before stopping there


def test_huge_step_with_clamp_saturates_without_error():
    energy = lambda x: (x**2).flatten(1).sum(1) - x.flatten(1).sum(1)
    tr = langevin(energy, torch.zeros(2, 1, 28, 28), LangevinConfig(n_steps=5, step_size=1e6))
    assert tr.n_diverged == 0 and np.isfinite(tr.energy).all()


# --- statistics against exact answers ---------------------------------------------------------------

MU = np.array([1.0, -2.0])
SIGMAS = {"isotropic": 0.7 * np.eye(2), "anisotropic": np.array([[1.0, 0.8], [0.8, 2.0]])}


@pytest.mark.parametrize("shape", list(SIGMAS))
@pytest.mark.parametrize("method", ["mala", "ula"])
def test_gaussian_mean_and_covariance(shape, method):
    cov = SIGMAS[shape]
    energy = gaussian_energy(MU, cov)
    n = 4000
    if method == "mala":
        cfg = LangevinConfig.at_temperature(0.3, 1.0, n_steps=400, metropolis=True, **FREE)
    else:  # small step: ULA's O(step) bias on the covariance stays below 1%
        cfg = LangevinConfig.at_temperature(0.01, 1.0, n_steps=2000, **FREE)
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0)) * 3.0
    tr = langevin(energy, x0, cfg, seed=7, frame_format="float32")
    x = tr.final.astype(np.float64)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - MU) < 5 * se), (x.mean(0), MU)
    # sampling std of a covariance entry ≈ sqrt((Σ_ii Σ_jj + Σ_ij²)/n) ≈ 0.03 here; allow 5% + 4 SE
    err = np.abs(_cov(x) - cov)
    tol = 0.05 * np.abs(cov).max() + 4 * np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(err < tol), (_cov(x), cov)


def test_mala_acceptance_tends_to_one_as_step_shrinks():
    energy = gaussian_energy(MU, SIGMAS["anisotropic"])
    x0 = torch.tensor(MU, dtype=torch.float32).repeat(2000, 1) + torch.randn(2000, 2)
    rates = []
    for s in (1.0, 0.3, 0.03, 0.001):
        cfg = LangevinConfig.at_temperature(s, 1.0, n_steps=50, metropolis=True, **FREE)
        rates.append(float(langevin(energy, x0, cfg, seed=0, frame_format="float32").accept.mean()))
    assert rates == sorted(rates) and rates[-1] > 0.99 and rates[0] < 0.9, rates


def test_mala_with_clamp_samples_the_truncated_gaussian():
    # N(0, 1) restricted to [-1, 1]: variance 1 − 2φ(1)/(2Φ(1) − 1) = 0.29113 exactly
    energy = gaussian_energy([0.0], np.eye(1))
    cfg = LangevinConfig.at_temperature(0.5, 1.0, n_steps=300, metropolis=True, grad_clip=None)
    x = langevin(energy, torch.zeros(8000, 1), cfg, seed=2, frame_format="float32").final[:, 0]
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    exact = 1 - 2 * phi1 / math.erf(1 / math.sqrt(2))
    assert abs(x.var() - exact) < 0.02 and np.abs(x).max() <= 1.0
    assert abs(x.mean()) < 5 * math.sqrt(exact / 8000)


def test_high_temperature_chains_cross_between_modes():
    energy = mixture_energy(separation=3.0, std=0.5)  # modes at (±3, 0)
    x0 = torch.tensor([[-3.0, 0.0]]).repeat(1000, 1)

    def right_share_and_crossings(T):
        cfg = LangevinConfig.at_temperature(0.02 * T, T, n_steps=1500, record_every=10,
                                            metropolis=True, **FREE)
        tr = langevin(energy, x0, cfg, seed=5, frame_format="float32")
        side = np.sign(tr.frames[:, :, 0])
        return (tr.final[:, 0] > 0).mean(), (np.diff(side, axis=0) != 0).sum(0).mean()

    cold_share, cold_cross = right_share_and_crossings(1.0)
    hot_share, hot_cross = right_share_and_crossings(8.0)
    assert cold_share < 0.02 and cold_cross < 0.05  # barrier of ~18 nats: nobody crosses
    assert abs(hot_share - 0.5) < 0.06  # by symmetry the exact answer is 1/2
    assert hot_cross > 2  # chains go back and forth
