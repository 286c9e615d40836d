"""Corruptions of images for restoration demos: additive noise and occlusion masks.

Images are (B, 1, H, W) in [-1, 1]. A mask is a bool tensor of the same shape, True where the
pixel is *hidden*. Every function is deterministic in its ``seed``.
"""

from __future__ import annotations

import torch

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
