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
    (2c, 7, 7) map, then two stride-2 transposed convolutions, batch norm and ReLU between, tanh out.
    The divergence triangle's g_θ and EBGAN's G."""

    def __init__(self, nz: int, c: int, hidden: int):
        super().__init__()
        self.c = c
        self.fc = nn.Sequential(nn.Linear(nz, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                nn.Linear(hidden, 2 * c * 49), nn.BatchNorm1d(2 * c * 49), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
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
