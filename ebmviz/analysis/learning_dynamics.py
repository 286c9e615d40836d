"""Reading a FRAME run's learning dynamics: its curves, where its energy collapses, which snapshot belongs to an
iteration, and how close samples are to the training digits (memorised or new?).

Pure numpy on what a checkpoint stores (``meta["history"]`` rows from ``FlowLearner``, the particle snapshots, the
few-shot training digits); the learning-dynamics page draws what these return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CURVES = ("e_data", "e_particles", "gap", "update_norm", "particle_step", "penalty")


@dataclass(frozen=True)
class Curves:
    """A run's logged history as arrays (T,), one entry per logged iteration."""

    iteration: np.ndarray
    values: dict[str, np.ndarray]  # name in CURVES -> (T,)

    @classmethod
    def from_history(cls, history: list[dict]) -> Curves:
        """From ``meta["history"]`` rows (missing entries read as NaN)."""
        its = np.array([r.get("iteration", np.nan) for r in history], dtype=float)
        return cls(its, {k: np.array([r.get(k, np.nan) for r in history], dtype=float) for k in CURVES})

    def __len__(self) -> int:
        return len(self.iteration)

    def until(self, iteration: int) -> Curves:
        """The rows logged at or before ``iteration``."""
        keep = self.iteration <= iteration
        return Curves(self.iteration[keep], {k: v[keep] for k, v in self.values.items()})

    def row_at(self, iteration: int) -> dict[str, float] | None:
        """The last logged row at or before ``iteration`` (None before the first)."""
        i = int(np.searchsorted(self.iteration, iteration, side="right")) - 1
        if i < 0:
            return None
        return {"iteration": float(self.iteration[i]), **{k: float(v[i]) for k, v in self.values.items()}}


def collapse_onset(curves: Curves, factor: float = 100.0, warmup: int = 20) -> int | None:
    """The iteration where the energy gap U(particles) − U(data) leaves for good: the first logged iteration from
    which the gap stays above ``factor`` × its typical size early in training (the median |gap| over the first
    ``warmup`` logged rows, at most a fifth of them) until the end, or becomes non-finite. None when the run never
    leaves (or is too short to tell).

    A maximum-likelihood run that collapses ("KL-vanishing") has its gap grow by many orders of magnitude; a
    stable one keeps it within a small multiple of where it started.
    """
    gap = curves.values["gap"]
    n = len(gap)
    if n < 10:
        return None
    head = gap[: min(warmup, n // 5)]
    base = float(np.median(np.abs(head[np.isfinite(head)]))) if np.isfinite(head).any() else np.nan
    if not np.isfinite(base) or base == 0:
        return None
    out = ~np.isfinite(gap) | (gap > factor * base)
    if not out[-1]:
        return None
    inside = np.flatnonzero(~out)
    first = 0 if len(inside) == 0 else int(inside[-1]) + 1
    return int(curves.iteration[first])


def snapshot_index(iterations: np.ndarray, iteration: int) -> int:
    """Index of the last snapshot taken at or before ``iteration`` (the first one before any)."""
    return max(0, int(np.searchsorted(np.asarray(iterations), iteration, side="right")) - 1)


@dataclass(frozen=True)
class Nearest:
    """Each sample's nearest training digit, by mean squared pixel distance on the [−1, 1] scale."""

    index: np.ndarray  # (n,) index into the training digits
    mse: np.ndarray  # (n,) mean squared distance to it
    train_spacing: float  # the smallest mean squared distance between two different training digits

    @property
    def copies(self) -> np.ndarray:
        """(n,) bool: closer to a training digit than any two training digits are to each other (a near copy)."""
        return self.mse < self.train_spacing

    @property
    def copy_share(self) -> float:
        return float(self.copies.mean()) if len(self.mse) else float("nan")


def nearest_training(samples: np.ndarray, train: np.ndarray) -> Nearest:
    """Nearest training digit of each sample: samples (n, 1, 28, 28), train (m ≥ 2, 1, 28, 28), both in [−1, 1]."""
    if len(train) < 2:
        raise ValueError("nearest_training needs at least two training digits")
    s = samples.reshape(len(samples), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)

    def msd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0) / a.shape[1]

    d = msd(s, t)
    tt = msd(t, t)
    np.fill_diagonal(tt, np.inf)
    idx = d.argmin(1)
    return Nearest(index=idx, mse=d[np.arange(len(s)), idx], train_spacing=float(tt.min()))
