"""Is a sampler's chain healthy? Saturation, pixel range and diversity per recorded frame, for any image shape.

- saturation: the share of pixels at the walls of the app's box [−1, 1] (|x| ≥ ``WALL``), over all chains and per
  chain. Real MNIST digits have most of their background exactly at −1, so compare with the model's own images.
- pixel range: the 1st and 99th percentile of all pixel values of a frame (numpy's linear interpolation).
- diversity: the mean RMS distance between chains in a fixed feature space — each image area-averaged to C × 8 × 8
  blocks, whatever its H × W — and the number of near-duplicate chains. A falling mean distance and a rising count
  of near-duplicates is mode collapse, seen without an evaluator.

Frames come as the app records them, uint8 (pixel = round((x + 1) / 2 · 255)), or as floats in [−1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ebmviz.images import from_u8

WALL = 0.99  # a pixel is saturated when |x| >= WALL in the app's [-1, 1] box
FEATURE_SIDE = 8  # diversity's fixed feature space: each image block-averaged to C x 8 x 8
DUPLICATE_DISTANCE = 0.05  # two chains are near-duplicates below this RMS feature distance
PERCENTILES = (1.0, 99.0)  # the pixel range's band
# uint8 pixels at a wall: the lowest and the highest _WALL_U8 values, counted through the float path's conversion
_WALL_U8 = int((np.abs(from_u8(np.arange(128, dtype=np.uint8))) >= WALL).sum())  # 2: {0, 1} and {254, 255}


def unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels (x = u / 127.5 − 1) or floats in [−1, 1], any shape → float32 in [−1, 1], the same shape."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return from_u8(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"images must be uint8 pixels or floats in [-1, 1], not {x.dtype}")
    return x.astype(np.float32, copy=False)


def _frames(frames: np.ndarray) -> np.ndarray:
    """(F, B, C, H, W) or (F, B, H, W) → (F, B, C, H, W), the dtype kept."""
    x = np.asarray(frames)
    if x.ndim == 4:
        x = x[:, :, None]
    if x.ndim != 5 or 0 in x.shape:
        raise ValueError(f"frames must be (F, B, C, H, W) or (F, B, H, W) with no empty axis, not {x.shape}")
    return x


def _images(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W) or (B, H, W) → (B, C, H, W), the dtype kept."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise ValueError(f"images must be (B, C, H, W) or (B, H, W), not {x.shape}")
    return x


@dataclass(frozen=True)
class PixelRange:
    """Pixel statistics of F recorded frames of B chains."""

    saturation: np.ndarray  # (F,) share of all pixels of all chains with |x| >= WALL, in [0, 1]
    per_chain: np.ndarray  # (F, B) the same share per chain
    low: np.ndarray  # (F,) 1st percentile of all pixel values of the frame, in [-1, 1]
    high: np.ndarray  # (F,) 99th percentile


def _order_statistics(counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The values (0..255) of the 0-based ``ranks`` (F, K) of F samples given by their histograms ``counts`` (F, 256):
    the value of rank k is the number of bins whose cumulative count is ≤ k."""
    cum = counts.cumsum(axis=1)  # (F, 256)
    return (cum[:, None, :] <= ranks[:, :, None]).sum(axis=2)  # (F, K)


def _percentiles_u8(counts: np.ndarray, n: int) -> np.ndarray:
    """The ``PERCENTILES`` (F, 2) in [−1, 1] of F samples of n uint8 pixels given by their histograms (F, 256), as
    numpy's default (linear) percentile of the pixels read as floats: between the order statistics at q/100·(n−1)."""
    pos = np.asarray(PERCENTILES) / 100 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    f = len(counts)
    v_lo = _order_statistics(counts, np.broadcast_to(lo, (f, 2)))
    v_hi = _order_statistics(counts, np.broadcast_to(np.minimum(lo + 1, n - 1), (f, 2)))
    u = v_lo + frac * (v_hi - v_lo)  # (F, 2) on the 0..255 scale; the map to [-1, 1] is linear
    return u / 127.5 - 1.0


def _at_wall_u8(u: np.ndarray) -> np.ndarray:
    """uint8 pixels → bool, the same shape: at a wall (u < ``_WALL_U8`` or u ≥ 256 − ``_WALL_U8``). Subtracting
    ``_WALL_U8`` wraps the lowest values round to the top, so one comparison finds both walls (4× faster than a
    lookup table)."""
    return (u - np.uint8(_WALL_U8)) >= np.uint8(256 - 2 * _WALL_U8)


def pixel_range(frames: np.ndarray) -> PixelRange:
    """Saturation and the 1st–99th percentile of F frames (F, B, C, H, W) or (F, B, H, W), uint8 or float in [−1, 1].

    uint8 frames' percentiles come from each frame's histogram of the 256 values (exact, and fast); float frames'
    from ``np.percentile``. Both give the percentiles of the pixels read as floats in [−1, 1].
    """
    x = _frames(frames)
    f, b = x.shape[:2]
    n = x[0, 0].size  # pixels per image
    if x.dtype == np.uint8:
        per_chain = np.count_nonzero(_at_wall_u8(x.reshape(f, b, n)), axis=2) / n
        flat = torch.from_numpy(np.ascontiguousarray(x).reshape(f, b * n))
        counts = torch.stack([torch.bincount(row, minlength=256) for row in flat]).numpy()  # (F, 256)
        low, high = _percentiles_u8(counts, b * n).T
        saturation = per_chain.mean(axis=1)
    else:
        v = unit(x)
        per_chain = (np.abs(v) >= WALL).reshape(f, b, n).mean(axis=2, dtype=np.float64)
        saturation = per_chain.mean(axis=1)
        low, high = np.percentile(v.reshape(f, b * n), PERCENTILES, axis=1).astype(np.float64)
    return PixelRange(saturation.astype(np.float64), per_chain.astype(np.float64), low, high)


def saturation_share(x: np.ndarray) -> np.ndarray:
    """Share of each image's pixels at the walls (|x| ≥ ``WALL``): (B, ...) uint8 or float in [−1, 1] → (B,) in
    [0, 1]."""
    a = np.asarray(x)
    if a.ndim < 1 or len(a) == 0:
        raise ValueError(f"images must be (B, ...) with B ≥ 1, not {a.shape}")
    walls = _at_wall_u8(a) if a.dtype == np.uint8 else np.abs(unit(a)) >= WALL
    return walls.reshape(len(a), -1).mean(axis=1, dtype=np.float64)


@lru_cache(maxsize=32)
def _area_weights(size: int, side: int = FEATURE_SIDE) -> np.ndarray:
    """(side, size) float32: row i holds the share of each pixel [p, p+1) inside block i's span
    [i·size/side, (i+1)·size/side), divided by the span's length — an exact area average (rows sum to 1), for any
    size, a multiple of ``side`` or not (a pixel on a boundary is split between two blocks)."""
    edges = np.arange(side + 1) * size / side
    p = np.arange(size)
    overlap = np.clip(np.minimum(edges[1:, None], p + 1) - np.maximum(edges[:-1, None], p), 0, None)
    return (overlap / (size / side)).astype(np.float32)


def features(x: np.ndarray) -> np.ndarray:
    """The fixed feature space of ``diversity``: images (B, C, H, W) or (B, H, W), uint8 or float in [−1, 1] →
    (B, C·8·8) float32 block means in [−1, 1], each block the exact area average of its H/8 × W/8 span."""
    v = unit(_images(x))
    b, c, h, w = v.shape
    ah, aw = _area_weights(h), _area_weights(w)
    blocks = ah @ v.reshape(b * c, h, w) @ aw.T  # (B·C, 8, 8)
    return blocks.reshape(b, c * FEATURE_SIDE * FEATURE_SIDE)


@dataclass(frozen=True)
class Diversity:
    """How different B chains' images are, in the feature space of ``features``."""

    mean_distance: float  # mean over pairs i<j of the RMS distance between features (nan for B < 2)
    near_duplicates: int  # chains j having some i < j closer than DUPLICATE_DISTANCE (B - 1 when all equal)


def _pair_distances(feats: np.ndarray) -> np.ndarray:
    """RMS distances (F, B, B) between the B feature vectors (F, B, D) of each of F frames, in float64."""
    f = feats.astype(np.float64)
    sq = np.einsum("fbd,fbd->fb", f, f)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * f @ f.transpose(0, 2, 1)
    return np.sqrt(np.clip(d2, 0, None) / f.shape[2])


def _summaries(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean distance over pairs i<j (F,) (nan for B < 2) and near-duplicate count (F,) of distances (F, B, B)."""
    b = dist.shape[1]
    i, j = np.triu_indices(b, k=1)
    pairs = dist[:, i, j]  # (F, B(B-1)/2)
    mean = pairs.mean(axis=1) if b > 1 else np.full(len(dist), np.nan)
    close = np.triu(dist < DUPLICATE_DISTANCE, k=1)  # close[f, i, j] for i < j
    return mean, close.any(axis=1).sum(axis=1)


def diversity(x: np.ndarray) -> Diversity:
    """Mean pairwise RMS feature distance and near-duplicate count of B images (B, C, H, W) or (B, H, W), uint8 or
    float in [−1, 1]."""
    mean, dups = _summaries(_pair_distances(features(x)[None]))
    return Diversity(float(mean[0]), int(dups[0]))


def diversity_trace(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``diversity`` of each of F frames (F, B, C, H, W) or (F, B, H, W): the mean distance (F,) float64 and the
    near-duplicate count (F,) int64."""
    x = _frames(frames)
    f, b = x.shape[:2]
    feats = features(x.reshape(f * b, *x.shape[2:])).reshape(f, b, -1)
    mean, dups = _summaries(_pair_distances(feats))
    return mean.astype(np.float64), dups.astype(np.int64)
