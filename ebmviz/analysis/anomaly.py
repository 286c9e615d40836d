"""Anomaly detection with an energy: which images does a model find typical? The score of an image is −E(x)
(higher: more typical, p ∝ exp(−E)); a set of images is told apart from held-out digits with the AUROC of that
score (1: every digit scores above every image of the set, 0.5: chance, below 0.5: the set looks *more* typical
than real digits).

The sets (``SETS``): Fashion-MNIST, uniform noise, constant images, pixel averages of two digits, and transformed
held-out digits (``TRANSFORMS``). ``GOAL_SETS`` are the six the project's target is measured on. Images are
(B, 1, 28, 28) in [−1, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ebmviz.analysis.metrics import auroc
from ebmviz.transforms import add_noise, interpolations


def _shrink(x: torch.Tensor) -> torch.Tensor:
    """Half size, centred on a black background."""
    small = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    out = torch.full_like(x, -1.0)
    h, w = small.shape[-2:]
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    out[..., top:top + h, left:left + w] = small
    return out


def _shift(x: torch.Tensor, dx: int = 7) -> torch.Tensor:
    """Moved ``dx`` pixels right and down, black coming in."""
    out = torch.full_like(x, -1.0)
    out[..., dx:, dx:] = x[..., :-dx, :-dx]
    return out


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "flipped vertically": lambda x: x.flip(-2),
    "flipped horizontally": lambda x: x.flip(-1),
    "rotated 90°": lambda x: torch.rot90(x, 1, (-2, -1)),
    "inverted": lambda x: -x,
    "shrunk to half": _shrink,
    "noised (σ = 0.3)": lambda x: add_noise(x, 0.3, seed=1),
    "shifted 7 px": _shift,
}
# Transformations used as extra negatives when training for anomaly detection (``python -m training shortrun
# --nda …``, negative data augmentation). None of them is one of the GOAL_SETS' transformations: a model trained
# with them is measured on vertical flips and 90° rotations it never saw as negatives.
NEGATIVE_AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "hflip": lambda x: x.flip(-1),
    "rot180": lambda x: torch.rot90(x, 2, (-2, -1)),
    "rot270": lambda x: torch.rot90(x, 3, (-2, -1)),
    "dim": lambda x: 0.5 * x - 0.5,  # contrast halved: strokes mid-grey on black (one digit, not a blend of two)
}

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


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """x (B, 1, H, W) turned by ``degrees`` about its centre (positive: one way, negative: the other), black filling
    the corners."""
    t = torch.tensor(np.deg2rad(degrees), dtype=x.dtype)
    c, s = torch.cos(t), torch.sin(t)
    theta = torch.stack([torch.stack([c, -s, torch.zeros(())]), torch.stack([s, c, torch.zeros(())])])
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    # sample x + 1 with zero padding, so the corners come in black (−1)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def edit(x: torch.Tensor, degrees: float = 0.0, erase: tuple[int, int, int, int] | None = None,
         stroke: tuple[int, int, int, int] | None = None, width: float = 1.2) -> torch.Tensor:
    """A digit x (1, 1, 28, 28) edited: rotated by ``degrees``, a box (row0, col0, row1, col1) erased to black, and
    a white stroke drawn from (row0, col0) to (row1, col1) (pixels within ``width`` of the segment)."""
    out = rotate(x, degrees) if degrees else x.clone()
    if erase is not None:
        r0, c0, r1, c1 = erase
        out[..., min(r0, r1):max(r0, r1) + 1, min(c0, c1):max(c0, c1) + 1] = -1.0
    if stroke is not None:
        r0, c0, r1, c1 = (float(v) for v in stroke)
        rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        d = torch.tensor([r1 - r0, c1 - c0])
        length2 = float((d**2).sum())
        u = ((rows - r0) * d[0] + (cols - c0) * d[1]) / length2 if length2 else torch.zeros_like(rows)
        u = u.clamp(0, 1)
        dist = torch.sqrt((rows - r0 - u * d[0]) ** 2 + (cols - c0 - u * d[1]) ** 2)
        ink = (1 - (dist / width).clamp(0, 1) ** 2) * 2 - 1  # 1 on the segment, −1 beyond ``width``
        out = torch.maximum(out, ink.to(out.dtype).expand_as(out))
    return out.clamp(-1, 1)
