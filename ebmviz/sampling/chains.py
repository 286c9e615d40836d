"""What every sampler shares: the energy convention, one step of B chains, and the recorded ``Trajectory``.

Convention: an energy is any callable ``energy(x) -> (B,)`` tensor and ``p(x) ∝ exp(−E(x))``. A sampler is a
step generator (one ``Step`` of device tensors per update, no host sync) consumed by a collector
(``ebmviz.sampling.run.LiveRun``) that returns a ``Trajectory`` of numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Energy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Step:
    """One update of B chains; tensors live on the sampling device.

    ``x`` is the state *after* step ``t`` (1-based), ``energy`` is E(x_t) before the step,
    ``grad_norm`` ‖∇E(x_t)‖ before clipping, ``step_norm`` ‖x_t − x_{t−1}‖, ``accept`` the
    Metropolis acceptance (0/1, None for unadjusted samplers), ``alive`` False once a chain has diverged.
    ``path`` (L+1, B, ...) is HMC's leapfrog path of this step's proposal when it was asked for, else None.
    ``temperature`` is the temperature T this step targeted, exp(−E/T).
    """

    t: int
    x: torch.Tensor  # (B, ...)
    energy: torch.Tensor  # (B,)
    grad_norm: torch.Tensor  # (B,)
    step_norm: torch.Tensor  # (B,)
    accept: torch.Tensor | None  # (B,) float 0/1
    alive: torch.Tensor  # (B,) bool
    diverged_at: torch.Tensor  # (B,) int64, -1 while finite
    path: torch.Tensor | None = None  # (L+1, B, ...) HMC leapfrog positions, x_t at 0
    temperature: float | torch.Tensor = 1.0  # (B,) when the chains have their own settings


LangevinStep = Step  # the name the Langevin sampler's steps had first


@dataclass(frozen=True)
class Trajectory:
    """A recorded run of B chains over T steps, as numpy arrays (cheap to cache and plot).

    ``frames`` are uint8 images (pixel = round((x+1)/2·255), for states in [-1, 1]) unless the run
    asked for float32 frames. F = number of recorded frames (x_0, every k-th step, and x_T).
    ``config`` is the sampler's settings (``LangevinConfig``, ``HMCConfig`` or ``AnnealedConfig``).
    """

    final: np.ndarray  # (B, ...) float32, the last state
    frames: np.ndarray  # (F, B, ...) uint8 or float32
    frame_steps: np.ndarray  # (F,) int, step index of each frame
    energy: np.ndarray  # (T+1, B) E(x_0) … E(x_T)
    grad_norm: np.ndarray  # (T, B) ‖∇E(x_t)‖ (r_t of Nijkamp et al. 2020)
    step_norm: np.ndarray  # (T, B) ‖x_{t+1} − x_t‖
    accept: np.ndarray | None  # (T, B) Metropolis accept indicator, None for unadjusted samplers
    diverged_at: np.ndarray  # (B,) step at which the chain stopped, −1 where finite
    config: Any  # LangevinConfig | HMCConfig | AnnealedConfig
    leapfrog: np.ndarray | None = None  # (F−1, L+1, B, ...) float32 HMC paths of the recorded steps
    temperature: np.ndarray | None = None  # (T,) the temperature each step targeted

    @property
    def n_diverged(self) -> int:
        return int((self.diverged_at >= 0).sum())

    @property
    def grad_evals(self) -> int:
        """Energy-gradient evaluations per chain: steps run × the sampler's evaluations per step."""
        return int(self.grad_norm.shape[0]) * int(getattr(self.config, "grad_evals_per_step", 1))


def energy_and_grad(energy: Energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E(x) (B,) and ∇ₓE(x) (B, ...), detached. Works under ``torch.no_grad`` callers."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def per_chain_norm(v: torch.Tensor) -> torch.Tensor:
    """‖v_b‖ over every axis but the first: (B, ...) -> (B,)."""
    return v.flatten(1).norm(dim=1)


def per_chain(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) mask shaped to broadcast against ``like`` (B, ...)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))
