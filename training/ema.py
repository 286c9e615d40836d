"""An exponential moving average of a module's weights (Polyak averaging), kept beside the trained weights.

After every update θ̄ ← d·θ̄ + (1 − d)·θ for each floating-point parameter θ of the module; its buffers
(batch-norm statistics, a growth state, stored snapshots) stay the live ones. A trainer run with ``--ema d``
ships θ̄: ``Run.checkpoint`` writes the checkpoint with θ̄ swapped in, while the resumable state keeps θ (as
``model.*``) and θ̄ (as ``extra.ema.*``), so a resumed run goes on exactly as an unbroken one. d = 0 is off:
nothing is kept and the checkpoint holds θ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

PREFIX = "ema."  # the averages' names among a state's extra tensors


class Ema:
    """θ̄ of ``module``'s parameters with decay ``d`` ∈ [0, 1) (0: off)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the decay must be in [0, 1) (0: off; 0.999 averages over about 1,000 updates), "
                             f"got {decay}")
        self.module, self.decay = module, decay
        self.average: dict[str, torch.Tensor] = {}
        self.restart()

    @property
    def on(self) -> bool:
        return self.decay > 0

    def restart(self) -> None:
        """θ̄ ← θ: start averaging from the module's present weights."""
        if self.on:
            self.average = {n: p.detach().clone() for n, p in self.module.named_parameters()}

    @torch.no_grad()
    def update(self) -> None:
        """θ̄ ← d·θ̄ + (1 − d)·θ (call after each optimiser step)."""
        for n, p in self.module.named_parameters() if self.on else ():
            self.average[n].lerp_(p, 1.0 - self.decay)

    def tensors(self) -> dict[str, torch.Tensor]:
        """θ̄ as named tensors for the resumable state (none when off)."""
        return {PREFIX + n: v for n, v in self.average.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """θ̄ from a state's extra tensors; θ̄ ← θ when the state has none (a run saved without --ema)."""
        if not self.on:
            return
        found = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        if not found:
            self.restart()
            return
        if found.keys() != self.average.keys():
            raise ValueError("the state's weight averages do not match the model's parameters")
        device = next(iter(self.average.values())).device
        self.average = {n: v.to(device) for n, v in found.items()}

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the module's parameters are θ̄; θ is put back afterwards (nothing happens when off)."""
        if not self.on:
            yield
            return
        params = dict(self.module.named_parameters())
        live = {n: p.detach().clone() for n, p in params.items()}
        try:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(self.average[n])
            yield
        finally:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(live[n])
