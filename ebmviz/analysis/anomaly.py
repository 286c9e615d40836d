"""Anomaly detection with an energy: which images does a model find typical? The score of an image is −E(x)
(higher: more typical, p ∝ exp(−E)); a set of images is told apart from held-out digits with the AUROC of that
score (1: every digit scores above every image of the set, 0.5: chance, below 0.5: the set looks *more* typical
than real digits).

The sets (``SETS``): Fashion-MNIST, uniform noise, constant images, pixel averages of two digits, and transformed
held-out digits (``ebmviz.transforms.TRANSFORMS``). ``GOAL_SETS`` are the six the project's target is measured
on. Images are (B, 1, 28, 28) in [−1, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ebmviz.analysis.metrics import auroc
from ebmviz.transforms import TRANSFORMS, interpolations

HELD_OUT = 1000  # held-out digits every AUROC is measured on (the first of the test split), and images per set
SETS_SEED = 0  # the seed of the made sets (noise, constants, blends) behind every stored and shown AUROC

MADE = ("Fashion-MNIST", "uniform noise", "constant images", "interpolations")
SETS = MADE + tuple(TRANSFORMS)
GOAL_SETS = ("Fashion-MNIST", "uniform noise", "interpolations", "flipped vertically", "rotated 90°", "inverted")


def make_sets(digits: torch.Tensor, seed: int = 0, fashion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every set in ``SETS`` with len(digits) images each (Fashion-MNIST only when ``fashion`` is given; its first
    len(digits) images). ``digits`` are held-out digits, the inside set the others are told apart from."""
    n = len(digits)
    g = torch.Generator().manual_seed(seed)
    sets = {}
    if fashion is not None:
        sets["Fashion-MNIST"] = fashion[:n]
    sets["uniform noise"] = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    sets["constant images"] = (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1).expand(n, 1, 28, 28).clone()
    sets["interpolations"] = interpolations(digits, n, seed=seed)
    for name, f in TRANSFORMS.items():
        sets[name] = f(digits)
    return sets


@torch.no_grad()
def scores(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 250,
           device: torch.device | str = "cpu") -> np.ndarray:
    """−E(x) (N,) for images x (N, 1, 28, 28), in batches; a non-finite energy scores the lowest float."""
    out = []
    for i in range(0, len(x), batch):
        e = energy(x[i:i + batch].to(device)).float().cpu().numpy()
        out.append(np.where(np.isfinite(e), -e, -np.finfo(np.float64).max))
    return np.concatenate(out) if out else np.zeros(0)


def auroc_row(energy: Callable[[torch.Tensor], torch.Tensor], digits: torch.Tensor,
              sets: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> dict[str, float]:
    """Set name -> AUROC of −E telling ``digits`` (inside) from that set (outside)."""
    inside = scores(energy, digits, device=device)
    return {name: auroc(inside, scores(energy, x, device=device)) for name, x in sets.items()}


def goal(row: dict[str, float]) -> tuple[float, float] | None:
    """(mean, minimum) AUROC over ``GOAL_SETS``, None when the row lacks one of them."""
    if not all(s in row for s in GOAL_SETS):
        return None
    values = [row[s] for s in GOAL_SETS]
    return float(np.mean(values)), float(np.min(values))
