"""Evaluator: an MNIST classifier with an 11th "not a digit" class, used to score samples.

Confidence is the softmax probability of the best *digit* class; mass on the junk class
(uniform noise, blurs, blends of two digits, blank or saturated images) lowers it, so the
evaluator does not call junk a digit. ``features`` are the penultimate activations used for
the Fréchet distance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ebmviz.nets import ClassifierNet

JUNK = 10  # index of the "not a digit" class


@dataclass(frozen=True)
class EvaluatorConfig:
    width: int = 32  # channels of the first conv block (the second has 2·width)
    feature_dim: int = 128  # penultimate features (Fréchet distance space)


class Evaluator(nn.Module):
    kind = "evaluator"
    Config = EvaluatorConfig

    def __init__(self, config: EvaluatorConfig = EvaluatorConfig()):
        super().__init__()
        self.config = config
        self.net = ClassifierNet(n_classes=11, width=config.width, feature_dim=config.feature_dim)

    def arch(self) -> dict:
        return asdict(self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 11) for x (B, 1, 28, 28) in [-1, 1]; class 10 is "not a digit"."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) penultimate activations."""
        return self.net.embed(x)
