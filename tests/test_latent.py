"""Langevin in a generator's latent space (ebmviz.analysis.latent): the exact Gaussian of a linear generator and a
quadratic energy, the hand-off from the generator's own draws, and refusals."""

import numpy as np
import pytest
import torch
from torch import nn

from ebmviz.analysis.latent import LatentEnergy, latent_config, latent_langevin, noise_seed
from ebmviz.images import to_u8


class LinearGenerated(nn.Module):
    """g(z) = tanh-free linear map to 28×28, E(x) = c·‖x‖²/2: U(z) = c‖Wz‖²/(2T) + ‖z‖²/2 is an exact Gaussian with
    precision (c/T)·WᵀW + I."""

    def __init__(self, nz: int = 2, c: float = 1.0):
        super().__init__()
        self.nz, self.c = nz, c
        g = torch.Generator().manual_seed(3)
        scale = torch.linspace(0.05, 0.02, nz)  # unequal columns: an elongated Gaussian
        self.weight = nn.Parameter(torch.randn(784, nz, generator=g) * scale, requires_grad=False)

    def generator(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight.T).view(-1, 1, 28, 28)

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        return torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.c * x.pow(2).flatten(1).sum(1)


def test_latent_langevin_reaches_the_exact_gaussian_of_a_linear_generator():
    """With precision P, unadjusted Langevin z ← z − ηPz + √(2η)ξ is stationary at exactly (P − ηP²/2)⁻¹: the
    target P⁻¹ up to the step's O(η) bias, which this test includes rather than tolerates."""
    model, temperature, eta = LinearGenerated(), 0.5, 0.02
    w = model.weight.double()
    precision = (model.c / temperature) * w.T @ w + torch.eye(2, dtype=torch.float64)  # eigenvalues about 1.4 and 5
    exact = torch.linalg.inv(precision - eta * precision @ precision / 2).numpy()
    run = latent_langevin(model, 2000, 0, temperature, latent_config(300, eta, record_every=300)).run
    z = run.final.astype(np.float64)
    assert np.abs(z.mean(0)).max() < 0.07  # the mean is 0; 2,000 chains give a standard error of about 0.02
    cov = np.cov(z.T)
    np.testing.assert_allclose(np.diag(cov), np.diag(exact), rtol=0.12)  # 4 standard errors: √(2/2000) = 3.2% each
    assert abs(cov[0, 1] - exact[0, 1]) < 0.03


def test_step_zero_is_the_generators_own_sample_and_the_energy_is_u():
    model = LinearGenerated()
    result = latent_langevin(model, 6, 4, 0.1, latent_config(3, 0.01))
    np.testing.assert_array_equal(result.start, to_u8(model.generator(model.latents(6, 4))).numpy())
    assert result.images.shape == (4, 6, 1, 28, 28) and result.run.frames.shape == (4, 6, 2)
    z = torch.from_numpy(result.run.frames[-1])
    u = LatentEnergy(model, model.generator, 0.1)(z)
    np.testing.assert_allclose(result.run.energy[-1], u.numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.image_energy[-1], model(model.generator(z)).numpy(), rtol=1e-5)


def test_a_model_without_a_generator_or_a_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="no generator"):
        latent_langevin(nn.Identity(), 2, 0, 1.0, latent_config(1, 0.01))
    with pytest.raises(ValueError, match="temperature"):
        latent_langevin(LinearGenerated(), 2, 0, 0.0, latent_config(1, 0.01))


def test_the_first_noise_draw_is_not_the_start_code():
    """With no energy and no prior pull worth speaking of, z₁ − z₀ is the first noise draw: it must not be z₀ (the
    start codes and the noise once came from one stream)."""
    model = LinearGenerated(c=0.0)
    eta = 0.01
    run = latent_langevin(model, 500, 3, 1.0, latent_config(1, eta)).run
    z0, z1 = run.frames[0].astype(np.float64), run.frames[1].astype(np.float64)
    xi = (z1 - z0 * (1 - eta)) / np.sqrt(2 * eta)  # U = ‖z‖²/2: z₁ = z₀ − η·z₀ + √(2η)·ξ
    corr = np.corrcoef(xi.ravel(), z0.ravel())[0, 1]
    assert abs(corr) < 0.1, corr  # 1,000 values: independent draws give |r| below 0.1 nearly always
    assert noise_seed(3) != 3
