"""Images stored in a model over training, evenly spread however long the run: EBGAN's generator samples, FRAME's
particles. A host registers two buffers (``snapshot_images`` (S, n, 1, 28, 28) uint8 and ``snapshot_iterations``
(S,) int64, −1 where unused) with ``register_snapshots`` and inherits the methods."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ebmviz.images import to_u8


class SnapshotSlots:
    """Mixin for an ``nn.Module``: S slots of n images taken at given iterations."""

    snapshot_images: torch.Tensor
    snapshot_iterations: torch.Tensor

    def register_snapshots(self: nn.Module, slots: int, size: int) -> None:
        self.register_buffer("snapshot_images", torch.zeros(slots, size, 1, 28, 28, dtype=torch.uint8))
        self.register_buffer("snapshot_iterations", torch.full((slots,), -1, dtype=torch.long))  # −1: unused

    def snapshot_due(self, iteration: int) -> bool:
        """Whether images taken at ``iteration`` are to be stored: the trainer offers them at a fixed cadence
        and the model keeps every stride-th, the stride doubling whenever the slots fill."""
        its = self.snapshot_iterations[self.snapshot_iterations >= 0].tolist()
        return len(its) < 2 or (iteration - its[0]) % (its[1] - its[0]) == 0

    def record_snapshot(self, iteration: int, images: torch.Tensor) -> None:
        """Store images (n, 1, 28, 28) in [-1, 1] taken at ``iteration``.

        When every slot is used, every other snapshot is dropped first (the first kept), so the stored
        ones stay evenly spread over training however long it runs.
        """
        slots = self.snapshot_iterations.shape[0]
        used = int((self.snapshot_iterations >= 0).sum())
        if used == slots:
            keep = torch.arange(0, used, 2, device=self.snapshot_iterations.device)
            self.snapshot_images[: len(keep)] = self.snapshot_images[keep].clone()
            self.snapshot_iterations[: len(keep)] = self.snapshot_iterations[keep].clone()
            self.snapshot_iterations[len(keep):] = -1
            used = len(keep)
        self.snapshot_images[used] = to_u8(images.detach()).to(self.snapshot_images.device)
        self.snapshot_iterations[used] = iteration

    def snapshots(self) -> tuple[np.ndarray, np.ndarray]:
        """(iterations (S,), images (S, n, 1, 28, 28) uint8) of the recorded snapshots, in order."""
        used = (self.snapshot_iterations >= 0).cpu().numpy()
        return self.snapshot_iterations.cpu().numpy()[used], self.snapshot_images.cpu().numpy()[used]
