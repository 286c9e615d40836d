"""The learned prior p_ψ(z): EM against exact answers, the prior module, the triangle with a prior, fit-prior."""

import math

import pytest
import torch

from ebmviz import checkpoints
from ebmviz.analysis.latent import LatentEnergy, latent_config, latent_langevin
from ebmviz.models.prior import MixturePrior, fit_mixture
from ebmviz.models.triangle import TriangleConfig, TriangleModel
from training.__main__ import main as training_main

MEANS = torch.tensor([[-3.0, 0.0], [3.0, 1.0]])
TRILS = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.7, 0.0], [0.0, 1.2]]])
WEIGHTS = torch.tensor([0.3, 0.7])


def mixture_draws(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(WEIGHTS, n, replacement=True, generator=g)
    return MEANS[k] + (TRILS[k] @ torch.randn(n, 2, 1, generator=g)).squeeze(-1)


def test_em_recovers_a_known_mixture_and_never_loses_likelihood():
    fit = fit_mixture(mixture_draws(20_000, 0), 2, reg=0.0)
    order = fit.means[:, 0].argsort()  # EM's component order is arbitrary
    # 20,000 draws: standard errors are about 0.003 (weights), 0.01 (means), 0.015 (covariances)
    torch.testing.assert_close(fit.weights[order].float(), WEIGHTS, atol=0.015, rtol=0)
    torch.testing.assert_close(fit.means[order].float(), MEANS, atol=0.05, rtol=0)
    torch.testing.assert_close(fit.covariances[order].float(), TRILS @ TRILS.transpose(1, 2), atol=0.07, rtol=0)
    ll = fit.log_likelihood
    assert all(b >= a - 1e-9 for a, b in zip(ll, ll[1:], strict=False)), ll  # EM's monotonicity (no ridge)
    assert ll[-1] - ll[0] > 0.3


def test_one_component_is_the_sample_mean_and_covariance():
    z = torch.randn(500, 3, generator=torch.Generator().manual_seed(1)) * torch.tensor([1.0, 2.0, 0.5]) + 4
    fit = fit_mixture(z, 1, reg=0.0)
    zd = z.double()
    torch.testing.assert_close(fit.means[0], zd.mean(0))
    torch.testing.assert_close(fit.covariances[0], torch.cov(zd.T, correction=0))
    exact = torch.distributions.MultivariateNormal(zd.mean(0), torch.cov(zd.T, correction=0)).log_prob(zd).mean()
    assert fit.log_likelihood[-1] == pytest.approx(float(exact), abs=1e-9)


def test_an_unfitted_prior_is_the_standard_normal_and_a_fitted_one_samples_its_mixture():
    z = torch.randn(7, 5)
    exact = -0.5 * z.pow(2).sum(1) - 2.5 * math.log(2 * math.pi)
    torch.testing.assert_close(MixturePrior(3, 5).log_prob(z), exact)
    prior = MixturePrior(2, 2).load_fit(fit_mixture(mixture_draws(20_000, 0), 2, reg=0.0))
    s = prior.sample(40_000, torch.Generator().manual_seed(2))
    want_mean = (WEIGHTS[:, None] * MEANS).sum(0)  # (0.3·(−3) + 0.7·3, 0.7) = (1.2, 0.7)
    torch.testing.assert_close(s.mean(0), want_mean, atol=0.06, rtol=0)
    assert (s[:, 0] < 0).float().mean().item() == pytest.approx(0.3, abs=0.01)  # the components barely overlap
    a = prior.sample(5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, prior.sample(5, torch.Generator().manual_seed(3)))


def test_refusals():
    with pytest.raises(ValueError, match="1 <= K <= N"):
        fit_mixture(torch.randn(3, 2), 4)
    with pytest.raises(ValueError, match="NaN"):
        fit_mixture(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="does not fit"):
        MixturePrior(2, 3).load_fit(fit_mixture(torch.randn(50, 2), 2))
    with pytest.raises(ValueError, match="K >= 1"):
        MixturePrior(0, 3)


@pytest.fixture
def with_prior():
    torch.manual_seed(0)
    model = TriangleModel(TriangleConfig(nz=2, width=4, hidden=16, prior_components=2)).eval()
    model.prior.load_fit(fit_mixture(mixture_draws(4_000, 0), 2))
    return model


def test_a_triangle_draws_its_codes_from_its_learned_prior(with_prior, tmp_path):
    z = with_prior.latents(2_000, seed=5)
    assert (z[:, 0] < 0).float().mean().item() == pytest.approx(0.3, abs=0.04)  # the mixture, not N(0, I)
    torch.testing.assert_close(z, with_prior.latents(2_000, seed=5))
    plain = TriangleModel(TriangleConfig(nz=2, width=4, hidden=16))
    torch.testing.assert_close(with_prior.latents(4, 5, learned=False), plain.latents(4, 5))
    torch.testing.assert_close(with_prior.prior_energy(z[:3]), -with_prior.prior.log_prob(z[:3]))
    torch.testing.assert_close(plain.prior_energy(z[:3]), 0.5 * z[:3].pow(2).sum(1))
    loaded = checkpoints.load(checkpoints.save(with_prior, tmp_path / "tri.safetensors", {}))
    torch.testing.assert_close(loaded.latents(6, 1), with_prior.latents(6, 1))
    assert loaded.config.prior_components == 2


def test_the_latent_sampler_uses_the_learned_prior(with_prior):
    z = torch.randn(3, 2)
    u = LatentEnergy(with_prior, with_prior.generator, 0.5, with_prior.prior_energy)
    torch.testing.assert_close(u(z), with_prior(with_prior.generator(z)) / 0.5 - with_prior.prior.log_prob(z))
    torch.testing.assert_close(LatentEnergy(with_prior, with_prior.generator, 0.5)(z),
                               with_prior(with_prior.generator(z)) / 0.5 + 0.5 * z.pow(2).sum(1))
    run = latent_langevin(with_prior, 4, 3, 1.0, latent_config(2, 0.01))
    torch.testing.assert_close(torch.from_numpy(run.run.frames[0]), with_prior.latents(4, 3))
    z0 = with_prior.latents(4, 3)
    e0 = u.energy(with_prior.generator(z0)) / 1.0 + with_prior.prior_energy(z0)
    torch.testing.assert_close(torch.from_numpy(run.run.energy[0]).float(), e0.float(), atol=1e-4, rtol=1e-5)


@pytest.mark.slow
def test_fit_prior_writes_a_prior_chosen_on_held_out_codes(tmp_path):
    out, fitted = tmp_path / "tri.safetensors", tmp_path / "tri-prior.safetensors"
    assert training_main(["triangle", "--out", str(out), "--run-dir", str(tmp_path / "run"), "--nz", "3",
                          "--width", "4", "--hidden", "8", "--epochs", "1", "--batch-size", "400",
                          "--minutes", "0", "--log-every", "1"]) == 0
    assert training_main(["fit-prior", str(out), "--components", "1,3", "--draws", "1", "--iters", "20",
                          "--out", str(fitted)]) == 0
    before, after = checkpoints.load(out), checkpoints.load(fitted)
    record = after.meta["prior"]
    scores = {row["components"]: row["held_out_log_likelihood"] for row in record["choice"]}
    assert record["components"] == max(scores, key=scores.get) == after.config.prior_components
    assert after.meta["arch"]["prior_components"] == record["components"] and record["codes"] == 4_000
    for key, value in before.state_dict().items():  # every other tensor as it was
        torch.testing.assert_close(after.state_dict()[key], value)
    assert not torch.equal(after.prior.means, torch.zeros_like(after.prior.means))
    with pytest.raises(SystemExit):  # no inference network: nothing to fit a prior to
        training_main(["fit-prior", "evaluator-mnist", "--out", str(tmp_path / "no.safetensors")])
    with pytest.raises(SystemExit):
        training_main(["fit-prior", str(out), "--components", "0"])
