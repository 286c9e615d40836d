"""Denoising-EBM (Zeng 2023, "How to Construct Energy for Images? Denoising Autoencoder Can Be Energy Based Model").

For x (B, 1, 28, 28) in [-1, 1], a noise level σ and x̃ = x + σε, ε ~ N(0, I):

    DAE             r_φ(x̃, σ) = g_β(f_α(x̃, σ)), a σ-conditioned U-net (``nets.SigmaUNet``), φ = (α, β);
                    z = f_α(x̃, σ) (B, nz) is its latent code
    semantic dec.   h_γ(z) (B, 1, 28, 28), a deconvolutional net trained on the DAE's codes
    texture energy  U_c(x, σ) = ‖x − r_φ(x̃, σ)‖² / (2σ²)                             (eq. 7)
    semantic energy U_s(z, σ) = ‖h_γ(z) − r_φ(h̃_γ(z), σ)‖² / (2σ²),  h̃ = h + σε       (eq. 8)
    two-stage MCMC  z⁰ ~ N(0, I), K steps  z ← z − η₁∇_z U_s + √(2η₁)·ξ               (eq. 15)
                    x⁰ = h_γ(z_K),   T steps  x ← x − η₂∇_x U_c + √(2η₂)·ξ              (eq. 16)

The per-pixel residual (x − r)²/(2σ²) (``energy_map``) is the paper's "vector output"; U_c is its sum.

Where the paper is silent, this port decides (and the page says so):
- r is written as r = x̃ − σ·ε̂(x̃, σ): the net predicts the noise. This is a parameterisation of the same
  r, so eq. 7 holds as written, and U_c(x, σ) = ½‖ε̂ − ε‖².
- The code z is normalised onto the sphere of radius √nz (``nets.SigmaUNet``), where z ~ N(0, I) concentrates:
  the paper starts its latent chains from N(0, I) and does not say how the codes are kept at that scale.
- σ enters the net as log σ (a continuous embedding), not as the index of one of the S = 128 ladder levels, so
  any σ in [σ_S, σ_1] = [0.01, 1] can be asked for; outside that range the net was never trained.
- The DAE loss (eq. 1) is weighted by 1/σ² across the ladder, ‖r − x‖²/σ² = 2·U_c(x, σ), so every level counts
  (unweighted, the σ = 0.01 levels would weigh 10⁴ times less than σ = 1).
- ``model(x)`` — the energy every sampler and page uses — is U_c(x, σ₀) at the model's σ₀ (0.05, the paper's
  OOD σ) with one fixed draw of ε stored in the checkpoint, so that E(x) is a function of x. The two-stage
  sampler, as the paper, draws a fresh ε at every step.
- Pixel steps are η₂ = ε₂·σ²: U_c has curvature up to 1/σ² (the 1/(2σ²) scale: 5,000 at σ = 0.01), so a
  fixed η₂ would overshoot at small σ; ε₂ < 2 keeps the drift inside the quadratic well.
- The texture stage may anneal σ_t geometrically from σ down to σ_end over its T steps (annealed Langevin, as
  score models sample): at one σ, samples of exp(−U_c(·, σ)) keep noise of about that σ. σ_end = σ is eq. 16
  at one level, as written. Training chains use one σ_i per chain (Algorithm 1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.images import to_u8
from ebmviz.models.base import Model
from ebmviz.models.nets import DeconvGenerator, SigmaUNet
from ebmviz.sampling import LangevinConfig, Trajectory, annealed_langevin, energy_and_grad, langevin
from ebmviz.settings import JsonSettings


@dataclass(frozen=True)
class DenoisingConfig:
    nz: int = 16  # dimension of the DAE's latent z = f_α(x̃, σ)
    width: int = 16  # c: U-net channels c (28×28) and 2c (14×14, 7×7); h_γ's channels
    hidden: int = 256  # h_γ's fully connected units
    sigma_max: float = 1.0  # σ_1, the ladder's top (the paper's)
    sigma_min: float = 0.01  # σ_S, its bottom
    n_sigmas: int = 128  # S, levels of the geometric ladder
    sigma: float = 0.05  # σ₀ of model(x) = U_c(x, σ₀): the paper's OOD σ
    project_codes: bool = False  # h_γ first puts z where the codes live (the same parameter-free layer norm)


@dataclass(frozen=True)
class TwoStageConfig(JsonSettings):
    """Settings of the two-stage sampler; frozen, so it is a cache key and a checkpoint field."""

    sigma: float = 0.1  # σ of both energies while sampling
    k_steps: int = 20  # K, latent Langevin steps on U_s (the paper's 20)
    latent_step: float = 0.1  # η₁ (the paper's 0.1); noise √(2η₁)
    t_steps: int = 30  # T, pixel Langevin steps on U_c (the paper's 90)
    texture_step: float = 0.5  # ε₂: η₂ = ε₂·σ_t², noise √(2η₂)
    sigma_end: float = 0.01  # the texture stage's σ_t falls geometrically from σ to this (= σ: one level throughout)
    record_every: int = 1  # keep a frame every k steps of each stage

    def validate(self, sigma_range: tuple[float, float] | None = None) -> None:
        """Raise ``ValueError`` with a readable reason when a setting is out of range."""
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"σ must be a positive number, got {self.sigma!r}")
        if sigma_range is not None and not sigma_range[0] <= self.sigma <= sigma_range[1]:
            raise ValueError(f"σ = {self.sigma:g} is outside the trained noise ladder "
                             f"[{sigma_range[0]:g}, {sigma_range[1]:g}]: the denoiser never saw that noise level")
        if not (isinstance(self.sigma_end, (int, float)) and math.isfinite(self.sigma_end)
                and 0 < self.sigma_end <= self.sigma):
            raise ValueError(f"σ_end must be positive and at most σ = {self.sigma:g}, got {self.sigma_end!r}")
        if sigma_range is not None and self.sigma_end < sigma_range[0]:
            raise ValueError(f"σ_end = {self.sigma_end:g} is below the trained noise ladder's bottom "
                             f"{sigma_range[0]:g}")
        if not isinstance(self.k_steps, int) or self.k_steps < 1:
            raise ValueError(f"K must be at least 1 (K = 0 leaves z⁰ ~ N(0, I) unsampled), got {self.k_steps!r}")
        if not isinstance(self.t_steps, int) or self.t_steps < 0:
            raise ValueError(f"T must be a non-negative integer, got {self.t_steps!r}")
        if not (math.isfinite(self.latent_step) and 0 < self.latent_step <= 1):
            raise ValueError(f"η₁ must be in (0, 1], got {self.latent_step!r}: above 1 each step adds noise of "
                             "std √(2η₁) > 1.4 to z, more than the spread of the prior N(0, I) it starts from")
        if not (math.isfinite(self.texture_step) and 0 < self.texture_step < 2):
            raise ValueError(f"ε₂ must be in (0, 2), got {self.texture_step!r}: η₂ = ε₂·σ² ≥ 2σ² overshoots the "
                             "well of U_c (curvature up to 1/σ²) and the chain oscillates away")
        if not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"record_every must be an integer ≥ 1, got {self.record_every!r}")

    def semantic(self) -> LangevinConfig:
        """Eq. 15 as a ``LangevinConfig`` on z: step η₁, noise √(2η₁) (temperature 1), no clipping, no box."""
        return LangevinConfig(n_steps=self.k_steps, step_size=self.latent_step,
                              noise_std=math.sqrt(2 * self.latent_step), grad_clip=None, clamp=None,
                              record_every=self.record_every)

    def texture_sigmas(self) -> list[float]:
        """σ_t of the T pixel steps: geometric from σ to σ_end (all σ when they are equal)."""
        if self.t_steps == 0:
            return []
        return np.geomspace(self.sigma, self.sigma_end, self.t_steps).tolist()


@dataclass(frozen=True)
class TwoStage:
    """A two-stage run of n chains: the semantic stage on z, then the texture stage on x from h(z_K)."""

    semantic: Trajectory  # frames h(z_t) uint8 (F, n, 1, 28, 28), energy U_s(z_t, σ) (K+1, n), final h(z_K)
    texture: Trajectory  # from x⁰ = h(z_K): frames x_t, energy U_c(x_t, σ_t) (T+1, n), final x_T
    latents: np.ndarray  # (F, n, nz) z_t at the semantic frames

    @property
    def final(self) -> np.ndarray:
        return self.texture.final

    @property
    def grad_evals(self) -> int:
        return self.semantic.grad_evals + self.texture.grad_evals


class FreshNoise:
    """ε ~ N(0, I) of shape (n, 1, 28, 28), a new draw at every call, from its own seeded generator."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.gen = torch.Generator(device=device).manual_seed(int(seed))
        self.device = device

    def __call__(self, n: int) -> torch.Tensor:
        return torch.randn(n, 1, 28, 28, generator=self.gen, device=self.device)


class DenoisingEBM(Model):
    """The DAE r_φ, the semantic decoder h_γ and the two energies; ``model(x)`` is U_c(x, σ₀), ``draw`` two-stage."""

    kind = "denoising"
    Config = DenoisingConfig
    title = "Denoising-EBM: a semantic energy on the DAE's latent space, a texture energy on pixels"
    Draws = TwoStage
    DrawConfig = TwoStageConfig
    draw_key = "two_stage"
    draw_default = TwoStageConfig()

    def __init__(self, config: DenoisingConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        c = self.config
        self.dae = SigmaUNet(c.nz, c.width)
        self.decoder = DeconvGenerator(c.nz, c.width, c.hidden, batch_norm=False)  # h_γ
        g = torch.Generator().manual_seed(0)
        self.register_buffer("eps", torch.randn(1, 1, 28, 28, generator=g))  # the fixed ε of model(x)

    # ----------------------------------------------------------------- noise levels
    @property
    def sigma_range(self) -> tuple[float, float]:
        return self.config.sigma_min, self.config.sigma_max

    def sigmas(self) -> torch.Tensor:
        """The ladder σ_1 > … > σ_S (S,), geometric from sigma_max to sigma_min."""
        c = self.config
        return torch.logspace(math.log10(c.sigma_max), math.log10(c.sigma_min), c.n_sigmas)

    def _sigma(self, sigma: float | torch.Tensor, n: int) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=torch.float32, device=self.device)
        return s.expand(n) if s.dim() == 0 else s

    # ----------------------------------------------------------------- DAE and decoder
    def encode(self, x_tilde: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """z = f_α(x̃, σ): (B, 1, 28, 28) -> (B, nz)."""
        return self.dae.encode(x_tilde, self.dae.sigma_embedding(self._sigma(sigma, len(x_tilde))))[0]

    def denoise(self, x_tilde: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """r_φ(x̃, σ) = x̃ − σ·ε̂(x̃, σ): (B, 1, 28, 28) -> (B, 1, 28, 28); σ a float or (B,)."""
        s = self._sigma(sigma, len(x_tilde))
        emb = self.dae.sigma_embedding(s)
        z, skips = self.dae.encode(x_tilde, emb)
        return x_tilde - s.view(-1, 1, 1, 1) * self.dae.decode(z, skips, emb)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """h_γ(z): (B, nz) -> (B, 1, 28, 28) in (−1, 1). With ``project_codes`` any z is first normalised as the
        encoder normalises its codes (zero mean, radius √nz), so a draw from N(0, I) is decoded from where codes are."""
        if self.config.project_codes:
            z = torch.nn.functional.layer_norm(z, (z.shape[-1],))
        return self.decoder(z)

    # ----------------------------------------------------------------- the two energies
    def energy_map(self, x: torch.Tensor, sigma: float | torch.Tensor, noise: torch.Tensor | None = None
                   ) -> torch.Tensor:
        """(x − r_φ(x + σε, σ))² / (2σ²) per pixel (B, 1, 28, 28): the vector output; ε = ``noise`` or the fixed ε."""
        s = self._sigma(sigma, len(x)).view(-1, 1, 1, 1)
        eps = self.eps if noise is None else noise
        return (x - self.denoise(x + s * eps, s.flatten())).pow(2) / (2 * s**2)

    def texture_energy(self, x: torch.Tensor, sigma: float | torch.Tensor, noise: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """U_c(x, σ) (B,) of eq. 7 for x (B, 1, 28, 28)."""
        return self.energy_map(x, sigma, noise).flatten(1).sum(1)

    def semantic_energy(self, z: torch.Tensor, sigma: float | torch.Tensor, noise: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """U_s(z, σ) (B,) of eq. 8 for z (B, nz): the texture energy of the decoded image h_γ(z)."""
        return self.texture_energy(self.decode(z), sigma, noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) = U_c(x, σ₀) (B,) with the fixed ε: the model's image energy."""
        return self.texture_energy(x, self.config.sigma)

    # ----------------------------------------------------------------- training terms (Algorithm 1)
    def dae_loss(self, x: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Line 4, φ: mean ‖r_φ(x̃, σ) − x‖²/σ² = mean 2·U_c(x, σ) over the batch (σ (B,), noise (B, 1, 28, 28))."""
        return 2 * self.texture_energy(x, sigma, noise).mean()

    def decoder_loss(self, x: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Line 4, γ: eq. 13, mean ‖h_γ(f_α(x̃, σ)) − x‖² summed over pixels; z detached, so only γ learns."""
        with torch.no_grad():
            z = self.encode(x + sigma.view(-1, 1, 1, 1) * noise, sigma)
        return (self.decode(z) - x).pow(2).flatten(1).sum(1).mean()

    def code_losses(self, x: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 13 with the gradient reaching the encoder f_α too, and ``code_uniformity`` of the codes: the two
        terms of ebmviz's ``--codes`` update (see the training module), each a scalar."""
        z = self.encode(x + sigma.view(-1, 1, 1, 1) * noise, sigma)
        return (self.decode(z) - x).pow(2).flatten(1).sum(1).mean(), code_uniformity(z)

    # ----------------------------------------------------------------- sampling
    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """z⁰ (n, nz) ~ N(0, I) drawn from ``seed``."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, self.config.nz, generator=g).to(self.device)

    def draw(self, n: int, seed: int = 0, config: TwoStageConfig | None = None) -> TwoStage:
        return two_stage(self, n, seed, self.draw_config() if config is None else config)


def code_uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{i≠j} exp(−t‖u_i − u_j‖²) over the directions u = z/‖z‖ of a batch z (B, nz), B ≥ 2 (Wang & Isola
    2020): lowest when the codes spread evenly over the sphere, so that directions drawn at random decode to digits."""
    u = torch.nn.functional.normalize(z, dim=1)
    d2 = torch.cdist(u, u).pow(2)
    off = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    return torch.logsumexp(-t * d2[off], dim=0) - math.log(int(off.sum()))


def two_stage(model: DenoisingEBM, n: int, seed: int = 0, config: TwoStageConfig | None = None) -> TwoStage:
    """n two-stage samples (eqs. 15–16): K Langevin steps on U_s from z⁰ ~ N(0, I), then T on U_c from h(z_K).

    Each step draws a fresh ε for x̃ (as the paper); the same seed gives the same chains.
    Raises ``ValueError`` (a readable reason) for settings outside ``TwoStageConfig.validate``.
    """
    config = model.draw_default if config is None else config
    config.validate(model.sigma_range)
    noise = FreshNoise(seed, model.device)
    semantic = langevin(lambda z: model.semantic_energy(z, config.sigma, noise(len(z))),
                        model.latents(n, seed), config.semantic(), seed=seed, frame_format="float32")
    z_frames = semantic.frames  # (F, n, nz)
    with torch.no_grad():
        images = model.decode(torch.from_numpy(z_frames).flatten(0, 1).to(model.device))
    images = images.view(len(z_frames), n, 1, 28, 28)
    x0 = images[-1]
    semantic = dataclasses.replace(semantic, frames=to_u8(images).numpy(), final=x0.cpu().numpy())
    texture = _texture_stage(model, x0, config, noise, seed)
    return TwoStage(semantic=semantic, texture=texture, latents=z_frames)


def texture_only(model: DenoisingEBM, n: int, seed: int = 0, config: TwoStageConfig | None = None) -> Trajectory:
    """The texture stage alone from Gaussian noise x⁰ ~ N(0, I) (kept in [-1, 1]), T steps as in ``two_stage``:
    the paper's Figure 5 (right), sampling without a semantic start."""
    config = model.draw_default if config is None else config
    config.validate(model.sigma_range)
    noise = FreshNoise(seed, model.device)
    g = torch.Generator().manual_seed(int(seed))
    x0 = torch.randn(n, 1, 28, 28, generator=g).clamp(-1, 1).to(model.device)
    return _texture_stage(model, x0, config, noise, seed)


def _texture_stage(model: DenoisingEBM, x0: torch.Tensor, config: TwoStageConfig, noise: FreshNoise,
                   seed: int) -> Trajectory:
    """Eq. 16 from x0 for T steps, σ_t from ``config.texture_sigmas()``, η₂ = ε₂·σ_t², a fresh ε per step."""
    return annealed_langevin(lambda x, s: model.texture_energy(x, s, noise(len(x))), x0, config.texture_sigmas(),
                             config.texture_step, seed=seed + 1, record_every=config.record_every)


def training_chains(model: DenoisingEBM, n: int, sigma: torch.Tensor, k_steps: int, latent_step: float,
                    t_steps: int, texture_step: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1, lines 7–13, with a noise level per chain: z_K (n, nz) and x_T (n, 1, 28, 28), detached.

    σ (n,); η₁ for every chain, η₂ = ε₂·σ_i² per chain. Records nothing (for the training loop).
    """
    dev = model.device
    s4 = sigma.view(-1, 1, 1, 1)

    def eps() -> torch.Tensor:
        return torch.randn(n, 1, 28, 28, generator=gen).to(dev)

    z = torch.randn(n, model.config.nz, generator=gen).to(dev)
    for _ in range(k_steps):
        _, g = energy_and_grad(lambda v: model.semantic_energy(v, sigma, eps()), z)
        z = z - latent_step * g + math.sqrt(2 * latent_step) * torch.randn(z.shape, generator=gen).to(dev)
    with torch.no_grad():
        x = model.decode(z)
    eta = texture_step * s4**2
    for _ in range(t_steps):
        _, g = energy_and_grad(lambda v: model.texture_energy(v, sigma, eps()), x)
        x = (x - eta * g + (2 * eta).sqrt() * torch.randn(x.shape, generator=gen).to(dev)).clamp(-1, 1)
    return z.detach(), x.detach()
