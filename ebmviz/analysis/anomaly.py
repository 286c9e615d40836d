"""Anomaly detection with an energy: which images does a model find typical? The score of an image is −E(x)
(higher: more typical, p ∝ exp(−E)); a set of images is told apart from the inside images (held-out digits, or a
user model's own images) with the AUROC of that score (1: every inside image scores above every image of the set,
0.5: chance, below 0.5: the set looks *more* typical than the inside images).

The sets (``SETS``): Fashion-MNIST, uniform noise, constant images, pixel averages of two inside images, and
transformed inside images (``ebmviz.transforms.TRANSFORMS``). ``GOAL_SETS`` are the six the project's target is
measured on. Images are (B, C, H, W) in [−1, 1]: MNIST's (B, 1, 28, 28) for the shipped models, any shape a user
model takes (``set_names(shape)``, ``fit`` brings Fashion-MNIST to it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ebmviz.analysis.metrics import auroc
from ebmviz.transforms import TRANSFORMS, edit as edit, interpolations, translate

HELD_OUT = 1000  # held-out digits every AUROC is measured on (the first of the test split), and images per set
SETS_SEED = 0  # the seed of the made sets (noise, constants, blends) behind every stored and shown AUROC
USER_HELD_OUT = 300  # a user model's inside images (drawn from its --data) and images per set: 15 sets of 300 are
#                      4,800 forward passes, seconds on 2 CPU cores for a small net at 32 px, no stored numbers needed

MADE = ("Fashion-MNIST", "uniform noise", "constant images", "interpolations")
SETS = MADE + tuple(TRANSFORMS)
GOAL_SETS = ("Fashion-MNIST", "uniform noise", "interpolations", "flipped vertically", "rotated 90°", "inverted")
DIGIT_SHAPE = (1, 28, 28)


def fit(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images (N, 1 or 3, h, w) in [−1, 1] brought to ``shape`` (C, H, W): resized to H×W (bilinear, antialiased
    when shrinking), grey repeated to 3 channels or colour averaged to grey; still in [−1, 1] (N, C, H, W)."""
    c, h, w = shape
    x = images.float()
    if tuple(x.shape[-2:]) != (h, w):
        shrink = h < x.shape[-2] or w < x.shape[-1]
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
    if x.shape[1] != c:
        x = x.repeat(1, c, 1, 1) if x.shape[1] == 1 else x.mean(1, keepdim=True).repeat(1, c, 1, 1)
    return x.clamp(-1, 1)


def shift_px(shape: tuple[int, int, int]) -> int:
    """How far the "shifted" set moves an image of ``shape``: a quarter of its shorter side (7 px at 28)."""
    return max(1, round(min(shape[1:]) / 4))


def set_transforms(shape: tuple[int, int, int] = DIGIT_SHAPE) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The transformed-image sets for images of ``shape`` (C, H, W): ``TRANSFORMS`` at 28×28; at another size the
    same transformations made size-agnostic: the shift a quarter of the side (``shift_px``), and a 90° turn of a
    non-square image resized back to H×W. The others (flips, inversion, the half-size shrink, noise) take any shape."""
    if tuple(shape[1:]) == DIGIT_SHAPE[1:]:
        return dict(TRANSFORMS)
    d = shift_px(shape)
    out = {}
    for name, f in TRANSFORMS.items():
        if name == "shifted 7 px":
            out[f"shifted {d} px"] = lambda x: translate(x, torch.full((len(x), 2), d), fill=-1.0)
        elif name == "rotated 90°" and shape[1] != shape[2]:
            out[name] = lambda x, f=f: fit(f(x), shape)
        else:
            out[name] = f
    if len(out) != len(TRANSFORMS) or "shifted 7 px" not in TRANSFORMS:
        raise RuntimeError("ebmviz.transforms.TRANSFORMS changed: update set_transforms")
    return out


def set_names(shape: tuple[int, int, int] = DIGIT_SHAPE) -> tuple[str, ...]:
    """Every set's name for images of ``shape``, in the page's order (``SETS`` at 28×28)."""
    return MADE + tuple(set_transforms(shape))


def make_sets(digits: torch.Tensor, seed: int = 0, fashion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every set of ``set_names`` with len(digits) images each, of the inside images' shape (Fashion-MNIST only when
    ``fashion`` is given: its first len(digits) images, ``fit`` to that shape). ``digits`` (N ≥ 2, C, H, W) are the
    inside set the others are told apart from: held-out digits, or a user model's own images."""
    n, shape = len(digits), tuple(digits.shape[1:])
    g = torch.Generator().manual_seed(seed)
    sets = {}
    if fashion is not None:
        sets["Fashion-MNIST"] = fit(fashion[:n], shape)
    sets["uniform noise"] = torch.rand(n, *shape, generator=g) * 2 - 1
    sets["constant images"] = (torch.rand(n, shape[0], 1, 1, generator=g) * 2 - 1).expand(n, *shape).clone()
    sets["interpolations"] = interpolations(digits, n, seed=seed)
    for name, f in set_transforms(shape).items():
        sets[name] = f(digits)
    return sets


def pick_inside(images: np.ndarray, n: int, seed: int = SETS_SEED) -> np.ndarray:
    """n of a user's images (N, C, H, W), drawn without replacement with ``seed`` and kept in their order: a folder
    lists its classes one after another, so its first n images would be a few classes only. All when N ≤ n."""
    if len(images) <= n:
        return images
    keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
    return images[keep]


@torch.no_grad()
def scores(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 250,
           device: torch.device | str = "cpu") -> np.ndarray:
    """−E(x) (N,) for images x (N, C, H, W), in batches; a non-finite energy scores the lowest float."""
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

