"""Every image transform, in one place: corruptions for the restoration demos (additive noise, occlusion masks),
the out-of-distribution sets' transformations (``TRANSFORMS``, interpolations between digits), the trainers'
negative augmentations and shifts, and the anomaly page's edits of one digit (rotate, erase, add a stroke).

Images are (B, 1, H, W) in [-1, 1]. A mask is a bool tensor of the same shape, True where the
pixel is *hidden*. Every function is deterministic in its ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

MASKS = {
    "pixels": "random pixels (share of the image)",
    "block": "one square block (share of the image)",
    "blocks": "several small square blocks",
    "salt-and-pepper": "random pixels set to black or white",
}


def add_noise(x: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """x + N(0, std²), clamped to [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=g).to(x.device)).clamp(-1.0, 1.0)


def pixel_mask(shape: tuple[int, ...], share: float, seed: int = 0) -> torch.Tensor:
    """Hide round(share·H·W) distinct random pixels of each image."""
    b, _, h, w = shape
    k = round(share * h * w)
    g = torch.Generator().manual_seed(seed)
    order = torch.rand(b, h * w, generator=g).argsort(dim=1)
    mask = torch.zeros(b, h * w, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask.view(b, 1, h, w)


def block_mask(shape: tuple[int, ...], size: int, n_blocks: int = 1, seed: int = 0) -> torch.Tensor:
    """Hide ``n_blocks`` size×size squares at random places (they may overlap) in each image."""
    b, _, h, w = shape
    if not 0 < size <= min(h, w):
        raise ValueError(f"block size must be in 1..{min(h, w)}, got {size}")
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, h, w, dtype=torch.bool)
    tops = torch.randint(h - size + 1, (b, n_blocks), generator=g)
    lefts = torch.randint(w - size + 1, (b, n_blocks), generator=g)
    for i in range(b):
        for t, left in zip(tops[i].tolist(), lefts[i].tolist(), strict=True):
            mask[i, 0, t:t + size, left:left + size] = True
    return mask


def make_mask(kind: str, shape: tuple[int, ...], share: float = 0.25, size: int = 6, n_blocks: int = 4,
              seed: int = 0) -> torch.Tensor:
    """A mask of ``kind`` (a key of ``MASKS``).

    "pixels" and "salt-and-pepper" hide ``share`` of the pixels; "block" is one square covering
    ``share`` of the image (side round(sqrt(share)·H)); "blocks" is ``n_blocks`` squares of side ``size``.
    """
    if kind in ("pixels", "salt-and-pepper"):
        return pixel_mask(shape, share, seed)
    if kind == "block":
        return block_mask(shape, max(1, round(share ** 0.5 * shape[-2])), 1, seed)
    if kind == "blocks":
        return block_mask(shape, size, n_blocks, seed)
    raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASKS)}")


def occlude(x: torch.Tensor, mask: torch.Tensor, kind: str = "block", seed: int = 0) -> torch.Tensor:
    """What the observer sees: hidden pixels black (−1), or black/white at random for salt-and-pepper."""
    if kind == "salt-and-pepper":
        g = torch.Generator().manual_seed(seed + 1_000_003)  # a stream apart from the masks' seeds
        fill = torch.where(torch.rand(x.shape, generator=g) < 0.5, -1.0, 1.0).to(x.device)
    else:
        fill = torch.full_like(x, -1.0)
    return torch.where(mask.to(x.device), fill, x)


# The occlusion types of the divergence-triangle paper (Table III, 64×64 CelebA) scaled to 28×28:
# name -> (mask kind, keyword arguments of make_mask)
OCCLUSIONS = {
    "P.5": ("salt-and-pepper", {"share": 0.5}),  # salt and pepper over 50% of the pixels
    "P.7": ("salt-and-pepper", {"share": 0.7}),
    "MB10": ("blocks", {"size": 4, "n_blocks": 10}),  # 10 random 10×10 blocks on 64 px -> 4×4 on 28 px
    "B9": ("blocks", {"size": 9, "n_blocks": 1}),  # one 20×20 block on 64 px -> 9×9
    "B13": ("blocks", {"size": 13, "n_blocks": 1}),  # one 30×30 block on 64 px -> 13×13
}


def occlusion(name: str, x: torch.Tensor, seed: int = 0, **override) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the named occlusion (a key of ``OCCLUSIONS``) to x: (what is seen, hidden mask).

    ``override`` replaces the preset's size, share or block count.
    """
    if name not in OCCLUSIONS:
        raise ValueError(f"unknown occlusion {name!r}; choose one of {', '.join(OCCLUSIONS)}")
    kind, kwargs = OCCLUSIONS[name]
    hidden = make_mask(kind, tuple(x.shape), seed=seed, **{**kwargs, **override})
    return occlude(x, hidden, kind, seed), hidden


def interpolations(images: torch.Tensor, m: int, seed: int = 0) -> torch.Tensor:
    """m pixel averages ½(x_i + x_j) of random pairs i ≠ j of ``images`` (N ≥ 2, 1, H, W): (m, 1, H, W)."""
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(len(images), (m,), generator=g)
    j = (i + torch.randint(1, len(images), (m,), generator=g)) % len(images)  # never i itself
    return 0.5 * (images[i] + images[j])


def random_shifts(n: int, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) integer (dy, dx) drawn uniformly from −max_shift … max_shift each, on the CPU."""
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)


def translate(x: torch.Tensor, shifts: torch.Tensor, fill: float = -1.0) -> torch.Tensor:
    """Each image of x (B, C, H, W) moved by its own integer (dy, dx) of ``shifts`` (B, 2) (down and right for
    positive values), the vacated pixels set to ``fill`` (black). Differentiable in x: the differentiable
    translation of DiffAugment (Zhao et al. 2020), used to train a discriminator on few images."""
    s = int(shifts.abs().max()) if len(shifts) else 0
    if s == 0:
        return x
    b, _, h, w = x.shape
    shifts = shifts.to(x.device)
    padded = torch.nn.functional.pad(x, (s, s, s, s), value=fill)
    rows = torch.arange(h, device=x.device)[None, :] + s - shifts[:, :1]  # (B, H): source row of each output row
    cols = torch.arange(w, device=x.device)[None, :] + s - shifts[:, 1:]
    picked = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2)  # advanced indexing put the channel last: (B, H, W, C) -> (B, C, H, W)


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
    """An image x (1, C, H, W) — a digit (1, 1, 28, 28), or a user model's image — edited: rotated by ``degrees``,
    a box (row0, col0, row1, col1) erased to black, and a white stroke drawn from (row0, col0) to (row1, col1)
    (pixels within ``width`` of the segment)."""
    out = rotate(x, degrees) if degrees else x.clone()
    if erase is not None:
        r0, c0, r1, c1 = erase
        out[..., min(r0, r1):max(r0, r1) + 1, min(c0, c1):max(c0, c1) + 1] = -1.0
    if stroke is not None:
        r0, c0, r1, c1 = (float(v) for v in stroke)
        rows, cols = torch.meshgrid(torch.arange(float(x.shape[-2])), torch.arange(float(x.shape[-1])), indexing="ij")
        d = torch.tensor([r1 - r0, c1 - c0])
        length2 = float((d**2).sum())
        u = ((rows - r0) * d[0] + (cols - c0) * d[1]) / length2 if length2 else torch.zeros_like(rows)
        u = u.clamp(0, 1)
        dist = torch.sqrt((rows - r0 - u * d[0]) ** 2 + (cols - c0 - u * d[1]) ** 2)
        ink = (1 - (dist / width).clamp(0, 1) ** 2) * 2 - 1  # 1 on the segment, −1 beyond ``width``
        out = torch.maximum(out, ink.to(out.dtype).expand_as(out))
    return out.clamp(-1, 1)
