"""Divergence triangle: each loss term's value and sign on fixed tensors, shapes, recovery."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ebmviz import checkpoints
from ebmviz.corruption import occlusion
from ebmviz.models.triangle import (
    TriangleConfig,
    TriangleModel,
    gaussian_nll,
    interpolate,
    kl_to_prior,
    recovery_error,
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TriangleModel(TriangleConfig(nz=4, width=4, hidden=16)).eval()


def test_gaussian_nll_matches_the_normal_log_density():
    z, mu, logvar = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    exact = -Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    # the term drops the constant (d/2)·log 2π; the 1e-6 guard changes nothing at these scales
    torch.testing.assert_close(gaussian_nll(z, mu, logvar) + 2.5 * math.log(2 * math.pi), exact, rtol=1e-4, atol=1e-4)


def test_kl_to_prior_matches_torch_and_is_zero_only_at_the_prior():
    mu, logvar = torch.randn(4, 6), torch.randn(4, 6)
    exact = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_to_prior(mu, logvar), exact, rtol=1e-5, atol=1e-5)
    assert torch.all(kl_to_prior(mu, logvar) > 0)
    assert torch.equal(kl_to_prior(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_losses_compose_the_derivation(model):
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    z, eps = torch.randn(6, 4), torch.zeros(6, 4)  # ε = 0: z̃ = μ(x)
    with torch.no_grad():
        L = model.losses(x, z, eps, sleep_weight=0.1, kl_weight=0.25)
        mu, logvar = model.inference(x)
        recon = ((model.generator(mu) - x) ** 2).flatten(1).sum(1).mean()
        fake = model.generator(z)
        e_real, e_fake = model.energy_net(x).mean(), model.energy_net(fake).mean()
        mu_s, logvar_s = model.inference(fake)
        sleep = gaussian_nll(z, mu_s, logvar_s).mean()
    torch.testing.assert_close(L.recon, recon)
    torch.testing.assert_close(L.kl_z, kl_to_prior(mu, logvar).mean())
    torch.testing.assert_close(L.sleep_nll, sleep)
    torch.testing.assert_close(L.e_loss, e_real - e_fake)
    torch.testing.assert_close(L.energy_gap, e_fake - e_real)
    torch.testing.assert_close(L.i_loss, recon + 0.25 * L.kl_z + 0.1 * sleep)  # 1/d: the public code's mean
    torch.testing.assert_close(L.g_loss, recon + e_fake + 0.1 * sleep)
    # KL(Q‖P) up to constants: −log N(x; g(z̃), s²I) + KL_z, with s² = 1/2
    s = TriangleConfig.obs_std
    nll = -Normal(model.generator(mu), s).log_prob(x).flatten(1).sum(1).mean()
    const = 784 * 0.5 * math.log(2 * math.pi * s**2)
    torch.testing.assert_close(L.kl_qp, nll - const + L.kl_z, rtol=1e-4, atol=1e-3)


def test_energy_step_lowers_data_energy_relative_to_samples(model):
    """The E step's sign: a gradient step on e_loss raises the gap E(g(z)) − E(x)."""
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    fake = torch.rand(16, 1, 28, 28) * 2 - 1
    opt = torch.optim.SGD(model.energy_net.parameters(), lr=0.05)
    gap0 = (model.energy_net(fake).mean() - model.energy_net(x).mean()).item()
    for _ in range(5):
        opt.zero_grad()
        model.energy_loss(x, fake).backward()
        opt.step()
    gap1 = (model.energy_net(fake).mean() - model.energy_net(x).mean()).item()
    assert gap1 > gap0 + 1e-3
    e = model.energy_net
    with_l2 = model.energy_loss(x, fake, energy_l2=0.5)
    l2 = 0.5 * (e(x).pow(2).mean() + e(fake).pow(2).mean())
    torch.testing.assert_close(with_l2, e(x).mean() - e(fake).mean() + l2)


def test_shapes_generation_and_interpolation(model):
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert model.reconstruct(x).shape == x.shape and model(x).shape == (5,)
    assert torch.equal(model.generate(3, seed=1), model.generate(3, seed=1))
    assert not torch.equal(model.generate(3, seed=1), model.generate(3, seed=2))
    path, energy = interpolate(model, x[0], x[1], n=7)
    assert path.shape == (7, 1, 28, 28) and energy.shape == (7,)
    torch.testing.assert_close(path[0], model.reconstruct(x[:1])[0])
    torch.testing.assert_close(path[-1], model.reconstruct(x[1:2])[0])


def test_recovery_keeps_observed_pixels_and_scores_hidden_ones(model):
    clean = torch.rand(4, 1, 28, 28) * 2 - 1
    seen, hidden = occlusion("B13", clean, seed=2)
    steps = model.recover(seen, hidden, n_iter=3)
    assert len(steps) == 4
    for x in steps:
        assert torch.equal(x[~hidden], seen[~hidden])
    torch.testing.assert_close(steps[0][hidden], model.data_mean.expand_as(clean)[hidden])
    assert torch.equal(recovery_error(clean, clean, hidden), torch.zeros(4))
    # a constant error of 0.5 on the [-1, 1] scale is 0.25 of the pixel range
    torch.testing.assert_close(recovery_error(clean + 0.5 * hidden, clean, hidden), torch.full((4,), 0.25))


def test_checkpoint_round_trip(model, tmp_path):
    model.data_mean.fill_(0.25)
    path = checkpoints.save(model, tmp_path / "tri.safetensors", {})
    loaded = checkpoints.load(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))
    assert loaded.config.nz == 4 and float(loaded.data_mean.mean()) == 0.25
