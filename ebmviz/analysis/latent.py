"""An image energy seen through a generator: U(z) = E(g(z))/T − log p(z) on latent codes z, and Langevin on it.

Through a generator every state is a picture it can draw, and the prior's energy −log p(z) (‖z‖²/2 for N(0, I), or
a learned prior's) keeps the codes where it was trained. ADELM maps an energy landscape this way (Hill, Nijkamp &
Zhu 2019; ``ebmviz.landscape`` uses it, with N(0, I)), and Langevin on U is discriminator-driven latent sampling
(DDLS: Che et al. 2020, "Your GAN is secretly an energy-based model"): the energy corrects the generator's samples
without leaving its manifold. At T = 1 and E = −log D it is their sampler for a GAN; here E is the model's own
energy and T sets how much it counts against the prior.

Works for every model with a ``generator`` (z (B, nz) -> (B, 1, 28, 28)) and ``latents(n, seed)``: EBGAN (E = D,
the autoencoder's reconstruction error) and the divergence triangle (E = its energy net).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.images import to_u8
from ebmviz.sampling import Energy, LangevinConfig, Trajectory, langevin

Generator = Callable[[torch.Tensor], torch.Tensor]  # z (B, nz) -> images (B, 1, 28, 28)


@dataclass(frozen=True)
class LatentEnergy:
    """U(z) = E(g(z)) / T − log p(z) for z (B, nz): the image energy E seen through the generator g at temperature T,
    plus the energy of the prior (‖z‖²/2 for N(0, I) unless ``prior`` gives a learned prior's −log p(z)). T sets how
    much E counts against the prior (EBGAN's D is about 0.02–0.2 on its samples, so T of 0.003–0.01 lets it shape U;
    the triangle's energy is in the hundreds)."""

    energy: Energy
    generator: Generator
    temperature: float = 1.0
    prior: Energy | None = None  # −log p(z) up to a constant (B,) of a learned prior; None: ‖z‖²/2, N(0, I)

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be positive and finite, got {self.temperature!r}")

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        prior = 0.5 * z.pow(2).sum(1) if self.prior is None else self.prior(z)
        return self.energy(self.generator(z)) / self.temperature + prior


# (K, η, T): the latent panel's defaults per model kind, the settings its stored measurement is made at
# (benchmarks/latent_langevin.py --store; T chosen there: higher T keeps more of G's variety and gains less)
PAGE_DEFAULTS = {"ebgan": (40, 0.003, 0.003), "triangle": (50, 0.01, 0.3)}


def latent_config(n_steps: int, step_size: float, record_every: int = 1) -> LangevinConfig:
    """Langevin on U at unit temperature (U already holds T): z ← z − η∇U(z) + √(2η)·ξ, no clipping, no box."""
    return LangevinConfig.at_temperature(step_size, 1.0, n_steps=n_steps, grad_clip=None, clamp=None,
                                         record_every=record_every)


@dataclass(frozen=True)
class LatentRun:
    """Langevin on U(z) from z₀ ~ N(0, I), with the recorded codes decoded to pictures."""

    run: Trajectory  # frames (F, B, nz) float32 codes, energy (T+1, B) = U(z_t)
    images: np.ndarray  # (F, B, 1, 28, 28) uint8: g(z) at each recorded frame (the first is the generator's sample)
    image_energy: np.ndarray  # (F, B) E(g(z)) at each recorded frame
    temperature: float

    @property
    def start(self) -> np.ndarray:
        return self.images[0]

    @property
    def final(self) -> np.ndarray:
        return self.images[-1]


def noise_seed(seed: int) -> int:
    """The seed of the latent chains' noise: not ``seed``, whose stream gave the start codes."""
    return (int(seed) + 0x5EED_1A7E) % 2**63


@torch.no_grad()
def _decode(model: torch.nn.Module, codes: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Codes (..., nz) -> (pictures (..., 1, 28, 28) uint8, E of each picture (...))."""
    flat = torch.from_numpy(codes.reshape(-1, codes.shape[-1])).to(next(model.parameters()).device)
    pics, energies = [], []
    for chunk in flat.split(batch):
        x = model.generator(chunk)
        pics.append(to_u8(x).numpy())
        energies.append(model(x).float().cpu().numpy())
    lead = codes.shape[:-1]
    return np.concatenate(pics).reshape(*lead, 1, 28, 28), np.concatenate(energies).reshape(lead)


def latent_langevin(model: torch.nn.Module, n: int, seed: int, temperature: float, config: LangevinConfig,
                    z0: torch.Tensor | None = None) -> LatentRun:
    """``config`` (see ``latent_config``) on U(z) = E(g(z))/T + ‖z‖²/2 from ``z0`` (default: ``model.latents(n,
    seed)``, the generator's own draws, so step 0 is ``model.generate(n, seed)``). Noise is seeded by
    ``noise_seed(seed)``. A model with a learned prior (``prior_energy(z)``, −log p(z)) has it in U instead of
    ‖z‖²/2, the prior its codes are drawn from.
    Raises ``ValueError`` for a model without a generator or a non-positive temperature."""
    if not (hasattr(model, "generator") and hasattr(model, "latents")):
        raise ValueError(f"a {type(model).__name__} has no generator, so no latent space to sample in")
    energy = LatentEnergy(model, model.generator, temperature, getattr(model, "prior_energy", None))
    z0 = model.latents(n, seed) if z0 is None else z0
    # latents(n, seed) and the sampler's noise would both draw randn(n, nz) from a generator seeded with ``seed``:
    # the first noise draw would then be z₀ itself. The noise gets a stream of its own.
    run = langevin(energy, z0, config, seed=noise_seed(seed), frame_format="float32")
    images, image_energy = _decode(model, run.frames)
    return LatentRun(run=run, images=images, image_energy=image_energy, temperature=temperature)
