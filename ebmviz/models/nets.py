"""Shared network building blocks. Every image net takes (B, 1, 28, 28) in [-1, 1]."""

from __future__ import annotations

import torch
from torch import nn


class ConvEnergyNet(nn.Module):
    """Small strided conv net with SiLU mapping (B, 1, 28, 28) -> (B,) scalar outputs.

    The layout follows the MNIST EBM of Lippe's UvA tutorial 8 (5x5/2 then three 3x3/2 convs to
    2x2, then two linear layers), widened by ``width``. SiLU keeps input gradients smooth, which
    Langevin sampling needs. The output is unbounded: the training loss regularises its scale.
    """

    def __init__(self, width: int = 32, hidden: int = 64):
        super().__init__()
        c1, c2, c3 = width // 2, width, 2 * width
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=4), nn.SiLU(),  # (B, c1, 16, 16)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.SiLU(),  # (B, c2, 8, 8)
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.SiLU(),  # (B, c3, 4, 4)
            nn.Conv2d(c3, c3, 3, stride=2, padding=1), nn.SiLU(),  # (B, c3, 2, 2)
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(4 * c3, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)  # (B,)


class DeconvGenerator(nn.Module):
    """A DCGAN-style generator (B, nz) -> (B, 1, 28, 28) in (−1, 1): two fully connected layers to a
    (2c, 7, 7) map, then two stride-2 transposed convolutions, ReLU between, tanh out.
    The divergence triangle's g_θ, EBGAN's G (both with batch norm) and the Denoising-EBM's semantic
    decoder h_γ (without: its output for one z must not depend on the rest of the batch, since a
    Langevin chain on z differentiates through it)."""

    def __init__(self, nz: int, c: int, hidden: int, batch_norm: bool = True):
        super().__init__()
        self.c = c

        def norm(n: int, conv: bool = False) -> nn.Module:
            if not batch_norm:
                return nn.Identity()
            return nn.BatchNorm2d(n) if conv else nn.BatchNorm1d(n)

        self.fc = nn.Sequential(nn.Linear(nz, hidden), norm(hidden), nn.ReLU(),
                                nn.Linear(hidden, 2 * c * 49), norm(2 * c * 49), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), norm(c, conv=True), nn.ReLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Tanh(),  # (B, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, 2 * self.c, 7, 7))


class ClassifierNet(nn.Module):
    """VGG-style classifier (B, 1, 28, 28) -> logits (B, n_classes); ``embed`` gives features."""

    def __init__(self, n_classes: int = 11, width: int = 32, feature_dim: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(2 * w * 49, feature_dim), nn.ReLU(),  # (B, feature_dim)
        )
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class SigmaUNet(nn.Module):
    """A noise-conditioned denoising U-net split as r(x̃, σ) = g_β(f_α(x̃, σ)): the Denoising-EBM's DAE.

    ``encode`` (f_α): x̃ (B, 1, 28, 28), σ (B,) -> latent z (B, nz) and the skip features (B, c, 28, 28),
    (B, 2c, 14, 14); ``decode`` (g_β): z and the skips -> ε̂ (B, 1, 28, 28), the noise the net sees in x̃.
    σ enters every level as a per-channel bias computed from log σ, so one net serves a whole noise
    ladder and any σ inside it. The 7×7 map is flattened into z, a vector, so that a semantic decoder can
    be trained on it and a Langevin chain can run on it. z is normalised to zero mean and unit variance over its
    nz entries (a layer norm without parameters): every code lies on the sphere of radius √nz, where draws of
    N(0, I_nz) concentrate, so a chain started from N(0, I) starts among the codes. Without it the codes of
    MNIST drifted to norms of 20–120, growing with σ, and 20 latent steps from N(0, I) could not reach them.
    """

    def __init__(self, nz: int, c: int, embed: int = 64):
        super().__init__()
        self.c = c
        self.embed = nn.Sequential(nn.Linear(1, embed), nn.SiLU(), nn.Linear(embed, embed), nn.SiLU())
        self.bias = nn.ModuleDict({name: nn.Linear(embed, n) for name, n in
                                   (("e28", c), ("e14", 2 * c), ("d7", 2 * c), ("d14", 2 * c), ("d28", c))})
        self.in28 = nn.Conv2d(1, c, 3, padding=1)
        self.e28 = nn.Conv2d(c, c, 3, padding=1)  # -> skip (B, c, 28, 28)
        self.down14 = nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)
        self.e14 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)  # -> skip (B, 2c, 14, 14)
        self.down7 = nn.Conv2d(2 * c, 2 * c, 4, stride=2, padding=1)  # (B, 2c, 7, 7)
        self.to_z = nn.Linear(2 * c * 49, nz)
        self.from_z = nn.Linear(nz, 2 * c * 49)
        self.up14 = nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1)
        self.d14 = nn.Conv2d(4 * c, 2 * c, 3, padding=1)
        self.up28 = nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1)
        self.d28 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.out = nn.Conv2d(c, 1, 3, padding=1)
        self.act = nn.SiLU()

    def _b(self, name: str, emb: torch.Tensor) -> torch.Tensor:
        return self.bias[name](emb)[:, :, None, None]

    def sigma_embedding(self, sigma: torch.Tensor) -> torch.Tensor:
        """σ (B,) -> (B, embed) features of log σ."""
        return self.embed(sigma.log().unsqueeze(1))

    def encode(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """f_α: z (B, nz) and the skips, from x̃ (B, 1, 28, 28) and ``sigma_embedding(σ)``."""
        a = self.act
        h28 = a(self.e28(a(self.in28(x))) + self._b("e28", emb))
        h14 = a(self.e14(a(self.down14(h28))) + self._b("e14", emb))
        z = nn.functional.layer_norm(self.to_z(a(self.down7(h14)).flatten(1)), (self.to_z.out_features,))
        return z, (h28, h14)

    def decode(self, z: torch.Tensor, skips: tuple[torch.Tensor, torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
        """g_β: ε̂ (B, 1, 28, 28) from z, the skips and ``sigma_embedding(σ)``."""
        a, (h28, h14) = self.act, skips
        d = a(self.from_z(z).view(-1, 2 * self.c, 7, 7) + self._b("d7", emb))
        d = a(self.d14(torch.cat([a(self.up14(d)), h14], 1)) + self._b("d14", emb))
        d = a(self.d28(torch.cat([a(self.up28(d)), h28], 1)) + self._b("d28", emb))
        return self.out(d)
