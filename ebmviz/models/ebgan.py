"""EBGAN (Zhao, Mathieu & LeCun, ICLR 2017): an autoencoder discriminator whose reconstruction error is the energy.

For x (B, 1, 28, 28) in [-1, 1]:

    energy      D(x) = mean over the 784 pixels of ((Dec(Enc(x)) − x) / 2)²
                — the per-pixel squared reconstruction error on the [0, 1] pixel scale (0 ≤ D, unbounded
                above since the decoder has no output squashing), so p(x) ∝ exp(−D(x)) is low on data
    generator   G(z), z ~ N(0, I_nz), a deconvolutional net with tanh output
    D loss      L_D = D(x) + [m − D(G(z))]⁺                        (minimised over D; [a]⁺ = max(0, a))
    G loss      L_G = D(G(z)) + λ_PT·f_PT(S)                       (minimised over G)
    PT          f_PT(S) = 1/(N(N−1)) Σ_{i≠j} (S_iᵀS_j / (‖S_i‖‖S_j‖))²  over the encoder's codes S (N, code)
                of a generated batch: squared cosine similarities, as the paper (the public ports drop the square)

Choices the paper leaves open or this port makes for a CPU (see checkpoints/README.md):
- the energy is a mean over pixels on the [0, 1] scale, so the margin m is in those units: m = 0.1 (the
  public MNIST port's m = 1 let D's energy of real digits rise to 0.63, worse than a black reconstruction);
- z ~ N(0, I) rather than uniform noise, so that the latent energy U(z) = D(G(z)) + ‖z‖²/2 has a proper prior;
- D has no batch normalisation: D(x) of one image never depends on the rest of its batch, in training or not.

The module also stores generator samples at a fixed latent batch through training (``snapshots``), so
the app can show how G learned; the slots are thinned evenly as training runs longer.
``draw`` gives generator samples, optionally refined by Langevin on exp(−D) (``Refined``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ebmviz.models.base import Model, Refined
from ebmviz.models.nets import DeconvGenerator
from ebmviz.models.snapshots import SnapshotSlots
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.transforms import translate


@dataclass(frozen=True)
class EBGANConfig:
    nz: int = 32  # latent dimension of G
    width: int = 32  # c: conv channels c and 2c in G and D
    hidden: int = 256  # G's fully connected units
    code: int = 32  # dimension of the encoder's code S (the PT's representation)
    n_snapshots: int = 24  # slots for generator samples over training
    snapshot_size: int = 32  # images per snapshot (a fixed latent batch)


class AutoEncoder(nn.Module):
    """The discriminator: Enc (B, 1, 28, 28) -> S (B, code), Dec S -> (B, 1, 28, 28), no output squashing."""

    def __init__(self, c: int, code: int):
        super().__init__()
        self.c = c
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, 2c, 7, 7)
            nn.Flatten(), nn.Linear(2 * c * 49, code),  # S: no activation
        )
        self.fc = nn.Sequential(nn.Linear(code, 2 * c * 49), nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (B, 1, 28, 28), code S (B, code))."""
        s = self.encoder(x)
        return self.decoder(self.fc(s).view(-1, 2 * self.c, 7, 7)), s


def reconstruction_energy(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """D(x) (B,): per-pixel mean of ((recon − x)/2)², the squared error on the [0, 1] pixel scale."""
    return ((recon - x) / 2).pow(2).flatten(1).mean(1)


def pulling_away(s: torch.Tensor) -> torch.Tensor:
    """f_PT(S) = 1/(N(N−1)) Σ_{i≠j} cos²(S_i, S_j) for codes S (N, k), N ≥ 2: 0 when pairwise orthogonal, 1 when
    all parallel."""
    n = len(s)
    if n < 2:
        raise ValueError("the pulling-away term needs at least two codes")
    unit = s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos2 = (unit @ unit.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


@dataclass(frozen=True)
class DiscriminatorTerms:
    """L_D on one batch; ``loss`` is what D's optimiser minimises."""

    loss: torch.Tensor  # mean D(x) + mean [m − D(G(z))]⁺
    d_real: torch.Tensor  # (B,) D(x) on data
    d_fake: torch.Tensor  # (B',) D(G(z)) on the (detached) generator samples
    margin: float  # m

    @property
    def above_margin(self) -> float:
        """Share of fakes with D(G(z)) ≥ m: they give D no gradient through the hinge."""
        return float((self.d_fake >= self.margin).float().mean())


@dataclass(frozen=True)
class GeneratorTerms:
    """L_G on one batch; ``loss`` is what G's optimiser minimises."""

    loss: torch.Tensor  # mean D(G(z)) + λ_PT·f_PT
    d_fake: torch.Tensor  # (B,) D(G(z)), gradients through G
    pt: torch.Tensor  # f_PT over the codes of G(z) (computed, and logged, even when λ_PT = 0)


class EBGAN(SnapshotSlots, Model):
    """Generator G and autoencoder discriminator; ``model(x)`` is the energy D(x) and ``draw`` gives ``Refined``."""

    kind = "ebgan"
    Config = EBGANConfig
    title = "EBGAN: an autoencoder's reconstruction error as the energy, and a generator"
    Draws = Refined
    draw_key = "refinement"  # meta["sampler"] holds the Langevin page's settings for D
    draw_default = LangevinConfig(n_steps=0, record_every=1)  # the generator's samples as they are

    def __init__(self, config: EBGANConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        c = self.config
        self.generator = DeconvGenerator(c.nz, c.width, c.hidden)
        self.discriminator = AutoEncoder(c.width, c.code)
        self.register_snapshots(c.n_snapshots, c.snapshot_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) (B,): the reconstruction energy, p ∝ exp(−D)."""
        return reconstruction_energy(x, self.discriminator(x)[0])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Dec(Enc(x)): (B, 1, 28, 28) -> (B, 1, 28, 28), not clamped."""
        return self.discriminator(x)[0]

    # ----------------------------------------------------------------- sampling
    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """z (n, nz) ~ N(0, I) drawn from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.config.nz, generator=g).to(self.device)

    def generate(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples G(z), z ~ N(0, I) drawn from ``seed``: (n, 1, 28, 28) in (−1, 1)."""
        return self.generator(self.latents(n, seed))

    def draw(self, n: int, seed: int = 0, config: LangevinConfig | None = None) -> Refined:
        """n generator samples from ``seed``, then ``config.n_steps`` Langevin steps on exp(−D) (default: none)."""
        config = self.draw_config() if config is None else config
        with torch.no_grad():
            x = self.generate(n, seed)
        return Refined(generated=x.cpu().numpy(), refinement=langevin(self, x, config, seed=seed))

    # ----------------------------------------------------------------- the two losses
    def discriminator_step(self, x: torch.Tensor, fake: torch.Tensor, margin: float) -> DiscriminatorTerms:
        """L_D = mean D(x) + mean [m − D(G(z))]⁺ on data x and generator samples ``fake`` (detached here)."""
        d_real, d_fake = self(x), self(fake.detach())
        loss = d_real.mean() + (margin - d_fake).clamp_min(0).mean()
        return DiscriminatorTerms(loss=loss, d_real=d_real, d_fake=d_fake, margin=margin)

    def generator_step(self, z: torch.Tensor, pt_weight: float, shifts: torch.Tensor | None = None) -> GeneratorTerms:
        """L_G = mean D(G(z)) + λ_PT·f_PT(S), S the encoder's codes of G(z); gradients reach G through D.
        ``shifts`` (B, 2): move each G(z) by these pixels before D sees it (DiffAugment's translation; None: not)."""
        fake = self.generator(z)
        if shifts is not None:
            fake = translate(fake, shifts)
        recon, s = self.discriminator(fake)
        d_fake = reconstruction_energy(fake, recon)
        pt = pulling_away(s)
        return GeneratorTerms(loss=d_fake.mean() + pt_weight * pt, d_fake=d_fake, pt=pt)
