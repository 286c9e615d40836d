"""Evaluator: an MNIST classifier with an 11th "not a digit" class, used to score samples.

Confidence is the softmax probability of the best *digit* class; mass on the junk class
(uniform noise, blurs, blends of two digits, blank or saturated images) lowers it, so the
evaluator does not call junk a digit. ``features`` are the penultimate activations used for
the Fréchet distance. It is not an energy and does not draw samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ebmviz.models.base import Model
from ebmviz.models.nets import ClassifierNet

JUNK = 10  # index of the "not a digit" class


@dataclass(frozen=True)
class EvaluatorConfig:
    width: int = 32  # channels of the first conv block (the second has 2·width)
    feature_dim: int = 128  # penultimate features (Fréchet distance space)


class Evaluator(Model):
    kind = "evaluator"
    Config = EvaluatorConfig
    title = "Evaluator: digit classifier with a not-a-digit class"
    is_energy = False
    Draws = None
    DrawConfig = None
    draw_default = None

    def __init__(self, config: EvaluatorConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        self.net = ClassifierNet(n_classes=11, width=self.config.width, feature_dim=self.config.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 11) for x (B, 1, 28, 28) in [-1, 1]; class 10 is "not a digit"."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) penultimate activations."""
        return self.net.embed(x)

    def loss(self, x: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.02) -> torch.Tensor:
        """Cross-entropy of the 11-way logits against labels (B,) in 0..10 (10 = junk)."""
        return F.cross_entropy(self(x), labels, label_smoothing=label_smoothing)
