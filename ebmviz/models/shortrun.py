"""Short-run Langevin EBM for MNIST (Nijkamp et al. 2019/2020; Du & Mordatch 2019 replay buffer).

``ShortRunEBM(x)`` returns the energy E(x), shape (B,), with p(x) ∝ exp(−E(x)); x is
(B, 1, 28, 28) in [-1, 1]. It draws by Langevin from noise (``Model.draw``) with the settings its
checkpoint ships. The module also carries a small sample of its training replay buffer (uint8) so
that the app can start chains where training left them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebmviz.images import from_u8
from ebmviz.models.base import ContrastiveLoss, Model, contrastive_loss
from ebmviz.models.nets import ConvEnergyNet


@dataclass(frozen=True)
class ShortRunConfig:
    width: int = 32  # channels of the second conv; the net uses width/2, width, 2·width
    hidden: int = 64  # units of the hidden linear layer
    replay_keep: int = 256  # replay-buffer images stored in the checkpoint (0: none)


class ShortRunEBM(Model):
    kind = "shortrun"
    Config = ShortRunConfig
    title = "Short-run Langevin EBM with replay buffer"

    def __init__(self, config: ShortRunConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        self.net = ConvEnergyNet(self.config.width, self.config.hidden)
        # (M, 1, 28, 28) uint8: replay-buffer states at the end of training (``ebmviz.images.to_u8``)
        self.register_buffer("replay", torch.zeros(self.config.replay_keep, 1, 28, 28, dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): (B, 1, 28, 28) in [-1, 1] -> (B,); lower is more likely."""
        return self.net(x)

    def loss(self, real: torch.Tensor, fake: torch.Tensor, alpha: float) -> ContrastiveLoss:
        """The training update on data x⁺ and Langevin samples x⁻ (both (B, 1, 28, 28))."""
        return contrastive_loss(self(real), self(fake.detach()), alpha)

    def replay_samples(self, n: int, seed: int = 0) -> torch.Tensor | None:
        """n stored buffer states as (n, 1, 28, 28) float in [-1, 1], or None without a buffer."""
        m = self.replay.shape[0]
        if m == 0:
            return None
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(m, generator=g)[:n] if n <= m else torch.randint(m, (n,), generator=g)
        return from_u8(self.replay[idx])
