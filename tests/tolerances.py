"""How far a value computed now may sit from one stored earlier on another machine, and why.

A number a trainer wrote (``checkpoints/scores.json``, a checkpoint's metadata, a shipped map) was computed on
that machine's CPU: its convolutions and sums ran in that machine's order (instruction set, BLAS kernel, thread
count), so the same computation here differs in the last digits, and rank metrics turn those digits into steps.
A value computed twice in one process may still be compared exactly; one read from a file may not.

``reduction_order`` changes the order on this machine the same way, so a test can show that its comparison
survives it (``tests/test_reduction_order.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

# AUROC of −E over the held-out digits against one set: 1,000 × 1,000 pairs. One pair whose order flips moves it
# by 1e-6 (a pair that becomes a tie by 5e-7). The short-run model's energies have 19–53 digit–image pairs per set
# within 1e-4 of each other (relative), the triangle's generator −log p(x) (importance sampling, a logsumexp in
# float32 over large values) more; 2e-3 admits 2,000 flipped pairs, far more than float noise can flip, while a
# retrained model or another set moves an AUROC by 1e-2 or more.
AUROC_ABS = 2e-3


def auroc_mismatches(live: dict[str, float], stored: dict[str, float], tol: float = AUROC_ABS) -> list[str]:
    """The sets of ``live`` whose AUROC is missing from ``stored`` or further than ``tol`` from it ([] when all
    match), each as "set: live vs stored"."""
    return [f"{name}: {value:.6f} vs {stored.get(name)}" for name, value in live.items()
            if name not in stored or not abs(value - stored[name]) <= tol]


@dataclass(frozen=True)
class Order:
    """One way torch sums: its intra-op thread count and whether oneDNN (mkldnn) runs the convolutions."""

    threads: int
    mkldnn: bool = True

    def __str__(self) -> str:
        return f"{self.threads} thread{'s' * (self.threads > 1)}{'' if self.mkldnn else ', no oneDNN'}"


ORDERS = (Order(1), Order(2), Order(1, mkldnn=False))


@contextlib.contextmanager
def reduction_order(order: Order) -> Iterator[None]:
    """Run the block with torch summing in ``order``; the thread count and oneDNN switch are restored after."""
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(order.threads)
    torch.backends.mkldnn.enabled = order.mkldnn
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
