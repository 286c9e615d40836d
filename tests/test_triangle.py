"""Divergence triangle: each loss term's value and sign on fixed tensors, shapes, recovery."""

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ebmviz import checkpoints
from ebmviz.models.triangle import (
    TriangleConfig,
    TriangleModel,
    TriangleWeights,
    gaussian_nll,
    interpolate,
    kl_to_prior,
    recovery_error,
)
from ebmviz.transforms import occlusion
from training.triangle import OPTIMIZERS, update


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
        L = model.losses(x, z, eps, TriangleWeights(sleep_weight=0.1, kl_weight=0.25))
        mu, logvar = model.inference(x)
        recon = ((model.generator(mu) - x) ** 2).flatten(1).sum(1).mean()
        fake = model.generator(z)
        e_real, e_fake = model.energy_net(x).mean(), model.energy_net(fake).mean()
        mu_s, logvar_s = model.inference(fake)
        sleep = gaussian_nll(z, mu_s, logvar_s).mean()
    inf, gen = L.inference, L.generator
    torch.testing.assert_close(inf.recon, recon)
    torch.testing.assert_close(gen.recon, recon)
    torch.testing.assert_close(inf.kl_z, kl_to_prior(mu, logvar).mean())
    torch.testing.assert_close(inf.sleep_nll, sleep)
    torch.testing.assert_close(gen.sleep_nll, sleep)
    torch.testing.assert_close(L.energy.loss, e_real - e_fake)
    torch.testing.assert_close(L.energy_gap, e_fake - e_real)
    torch.testing.assert_close(inf.loss, recon + 0.25 * inf.kl_z + 0.1 * sleep)  # 1/d: the public code's mean
    torch.testing.assert_close(gen.loss, recon + e_fake + 0.1 * sleep)
    # KL(Q‖P) up to constants: −log N(x; g(z̃), s²I) + KL_z, with s² = 1/2
    s = TriangleConfig.obs_std
    nll = -Normal(model.generator(mu), s).log_prob(x).flatten(1).sum(1).mean()
    const = 784 * 0.5 * math.log(2 * math.pi * s**2)
    torch.testing.assert_close(L.kl_qp, nll - const + inf.kl_z, rtol=1e-4, atol=1e-3)


def test_kl_qp_uses_the_models_own_observation_noise():
    """A model with s² = 2 weighs the reconstruction by 1/(2s²) = 1/4, not the default's 1."""
    torch.manual_seed(0)
    wide = TriangleModel(TriangleConfig(nz=4, width=4, hidden=16, obs_std=math.sqrt(2.0))).eval()
    x, z, eps = torch.rand(3, 1, 28, 28) * 2 - 1, torch.randn(3, 4), torch.zeros(3, 4)
    with torch.no_grad():
        L = wide.losses(x, z, eps)
    torch.testing.assert_close(L.kl_qp, L.inference.recon / 4 + L.inference.kl_z)


def test_the_trainer_takes_its_steps_on_the_models_losses(model):
    """One training iteration equals three SGD steps on ``model.losses`` re-evaluated before each step."""
    model.train()
    twin = copy.deepcopy(model)
    x, z, eps = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 4), torch.randn(8, 4)
    w = TriangleWeights(sleep_weight=0.3, kl_weight=0.5, energy_l2=0.2)
    nets = lambda m: {"energy": m.energy_net, "inference": m.inference, "generator": m.generator}  # noqa: E731
    sgd = lambda m: {k: torch.optim.SGD(n.parameters(), lr=0.01) for k, n in nets(m).items()}  # noqa: E731
    update(model, sgd(model), x, z, eps, w, clip=1e9)
    opts = sgd(twin)
    for k in OPTIMIZERS:
        terms = twin.losses(x, z, eps, w)
        loss = {"energy": terms.energy.loss, "inference": terms.inference.loss, "generator": terms.generator.loss}[k]
        opts[k].zero_grad()
        loss.backward()
        opts[k].step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    # and the check can fail: a trainer that left out the sleep term would have moved elsewhere
    drift = copy.deepcopy(twin)
    update(drift, sgd(drift), x, z, eps, TriangleWeights(sleep_weight=0.0, kl_weight=0.5, energy_l2=0.2), clip=1e9)
    update(twin, sgd(twin), x, z, eps, w, clip=1e9)
    assert (drift.inference.head.weight - twin.inference.head.weight).abs().max() > 1e-6


def test_energy_step_lowers_data_energy_relative_to_samples(model):
    """The E step's sign: a gradient step on e_loss raises the gap E(g(z)) − E(x)."""
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    fake = torch.rand(16, 1, 28, 28) * 2 - 1
    opt = torch.optim.SGD(model.energy_net.parameters(), lr=0.05)
    gap0 = (model.energy_net(fake).mean() - model.energy_net(x).mean()).item()
    for _ in range(5):
        opt.zero_grad()
        model.energy_step(x, fake).loss.backward()
        opt.step()
    gap1 = (model.energy_net(fake).mean() - model.energy_net(x).mean()).item()
    assert gap1 > gap0 + 1e-3
    e = model.energy_net
    with_l2 = model.energy_step(x, fake, TriangleWeights(energy_l2=0.5)).loss
    l2 = 0.5 * (e(x).pow(2).mean() + e(fake).pow(2).mean())
    torch.testing.assert_close(with_l2, e(x).mean() - e(fake).mean() + l2)


def test_shapes_generation_and_interpolation(model):
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert model.reconstruct(x).shape == x.shape and model(x).shape == (5,)
    assert torch.equal(model.generate(3, seed=1), model.generate(3, seed=1))
    assert not torch.equal(model.generate(3, seed=1), model.generate(3, seed=2))
    drawn = model.draw(3, seed=1)  # generator samples, then the shipped refinement on E
    np.testing.assert_array_equal(drawn.generated, model.generate(3, seed=1).detach().numpy())
    assert drawn.final.shape == (3, 1, 28, 28) and drawn.grad_evals == model.draw_config().n_steps
    unrefined = model.draw(3, seed=1, config=replace(model.draw_config(), n_steps=0))
    np.testing.assert_allclose(unrefined.final, unrefined.generated, atol=1e-6)
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


class _Linear(torch.nn.Module):
    """g(z) = W z + b as (B, 1, 28, 28) images."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, z):
        return (z @ self.w.T + self.b).view(-1, 1, 28, 28)


class _ExactPosterior(torch.nn.Module):
    """q(z|x) = p(z|x) of the linear Gaussian model z ~ N(m, diag c), x = Wz + b + N(0, s²I), WᵀW diagonal;
    ``widen`` multiplies the posterior variance (a proposal that is not the posterior)."""

    def __init__(self, w, b, s2, m=None, c=None, widen: float = 1.0):
        super().__init__()
        self.w, self.b, self.s2, self.widen = w, b, s2, widen
        self.m = torch.zeros(w.shape[1], dtype=w.dtype) if m is None else m
        self.c = torch.ones(w.shape[1], dtype=w.dtype) if c is None else c
        self.precision = 1 / self.c + (w * w).sum(0) / s2  # diagonal of C⁻¹ + WᵀW/s²

    def forward(self, x):
        mu = (self.m / self.c + (x.flatten(1) - self.b) @ self.w / self.s2) / self.precision
        return mu, (self.widen / self.precision).log().expand_as(mu)


def test_free_energy_is_the_exact_marginal_when_the_proposal_is_the_posterior():
    """With the true posterior as proposal every importance weight equals p(x), so −log p(x) comes out exactly,
    whatever the number of draws: here p(x) = N(x; b, WWᵀ + s²I)."""
    torch.manual_seed(0)
    model = TriangleModel(TriangleConfig(nz=2, width=4, hidden=16)).eval()
    q, _ = torch.linalg.qr(torch.randn(784, 2, dtype=torch.float64))
    w, b = q * torch.tensor([3.0, 1.5], dtype=torch.float64), 0.1 * torch.randn(784, dtype=torch.float64)
    s2 = model.config.obs_std**2
    model.generator, model.inference = _Linear(w, b), _ExactPosterior(w, b, s2)
    x = (torch.randn(5, 2, dtype=torch.float64) @ w.T + b + math.sqrt(s2) * torch.randn(5, 784, dtype=torch.float64))
    x = x.view(5, 1, 28, 28)
    exact = -torch.distributions.MultivariateNormal(b, w @ w.T + s2 * torch.eye(784, dtype=torch.float64)).log_prob(
        x.flatten(1))
    for draws in (1, 7):
        torch.testing.assert_close(model.free_energy(x, draws=draws), exact, atol=1e-6, rtol=0)
    assert model.named_energy("generator −log p(x)")(x).shape == (5,) and model.named_energy() is model
    with pytest.raises(ValueError, match="has no energy"):
        model.named_energy("nonsense")


def _linear_model(m=None, c=None, widen=1.0):
    """A triangle whose generator is linear and whose inference is the exact posterior (widened by ``widen``), with
    a one-component learned prior N(m, diag c) when m is given; 40 observations x from that model; the exact −log p(x).
    """
    torch.manual_seed(0)
    k = 0 if m is None else 1
    model = TriangleModel(TriangleConfig(nz=2, width=4, hidden=16, prior_components=k)).eval()
    q, _ = torch.linalg.qr(torch.randn(784, 2, dtype=torch.float64))
    w, b = q * torch.tensor([3.0, 1.5], dtype=torch.float64), 0.1 * torch.randn(784, dtype=torch.float64)
    s2 = model.config.obs_std**2
    model.generator, model.inference = _Linear(w, b), _ExactPosterior(w, b, s2, m, c, widen)
    mean, cov_z = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    if m is not None:
        model.prior = model.prior.double()
        model.prior.means.copy_(m[None])
        model.prior.scale_tril.copy_(torch.diag(c.sqrt())[None])
        mean, cov_z = m, torch.diag(c)
    z = mean + torch.randn(40, 2, dtype=torch.float64) @ cov_z.sqrt()
    x = (z @ w.T + b + math.sqrt(s2) * torch.randn(40, 784, dtype=torch.float64)).view(40, 1, 28, 28)
    marginal = torch.distributions.MultivariateNormal(w @ mean + b, w @ cov_z @ w.T + s2 * torch.eye(784,
                                                                                                    dtype=torch.float64))
    return model, x, -marginal.log_prob(x.flatten(1))


def test_free_energy_with_a_learned_prior_is_the_exact_marginal_under_that_prior():
    m, c = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.3, 2.0], dtype=torch.float64)
    model, x, exact = _linear_model(m, c)
    torch.testing.assert_close(model.free_energy(x, draws=3), exact, atol=1e-6, rtol=0)
    plain, _, _ = _linear_model()
    assert (plain.free_energy(x, draws=3) - exact).abs().mean() > 0.5  # N(0, I) would give another marginal


@pytest.mark.slow
def test_free_energy_with_an_inexact_proposal_is_an_upper_bound_that_tightens_with_draws():
    """Burda et al.: E[F_K] ≥ −log p(x), falling with K towards it. With one draw the excess is exactly
    KL(q‖p(z|x)); for a proposal with the posterior's mean and w times its variance in d dimensions that is
    (d/2)(w − 1 − ln w), 1.614 nats for w = 4, d = 2. Each seed's draws are shared by the images, so the
    expectations are averaged over seeds (standard errors: about 0.07, 0.03 and 0.01 nats)."""
    model, x, exact = _linear_model(widen=4.0)
    x, exact = x[:4], exact[:4]

    def excess(draws: int, seeds: int) -> float:
        return torch.stack([model.free_energy(x, draws=draws, seed=s) - exact for s in range(seeds)]).mean().item()

    one, sixteen, many = excess(1, 1000), excess(16, 100), excess(256, 20)
    assert one == pytest.approx(0.5 * 2 * (4 - 1 - math.log(4)), abs=0.25)
    assert one - 1.0 > sixteen > -0.1 and abs(many) < 0.06 and sixteen > many - 0.05, (one, sixteen, many)
