"""Image restoration by Langevin dynamics on a learnt energy (CF-EBM paper, §image restoration).

Denoising starts the chain at the noisy image and samples p(x) ∝ exp(−E(x)) for a short run.
Inpainting samples the hidden pixels only, from the conditional p(x_h | x_o) ∝ exp(−E(x_o ⊕ x_h)):
the chain's state is the whole image, but the energy it sees always has the observed pixels
pasted back, so their gradient is zero and they never change in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.sampling import Energy, LangevinConfig, langevin


@dataclass
class Restoration:
    """A restoration run of B images; frames are float32 in [-1, 1] with observed pixels pasted."""

    frames: np.ndarray  # (F, B, 1, H, W)
    frame_steps: np.ndarray  # (F,)
    final: np.ndarray  # (B, 1, H, W)
    energy: np.ndarray  # (T+1, B)
    error: np.ndarray  # (F, B) mean squared error per frame against the clean image, [0, 1] scale,
    #                    over the hidden pixels (inpainting) or all pixels (denoising)


def _paste(x_obs: torch.Tensor, hidden: torch.Tensor):
    return lambda z: torch.where(hidden, z, x_obs)


def _mse01(frames: np.ndarray, clean: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(F, B) mean of ((a − b)/2)² over ``region`` (the [0, 1] scale of [-1, 1] images)."""
    sq = ((frames - clean[None]) / 2.0) ** 2 * region[None]
    return sq.reshape(sq.shape[0], sq.shape[1], -1).sum(-1) / np.maximum(region.reshape(len(clean), -1).sum(-1), 1)


def restore(energy: Energy, corrupted: torch.Tensor, clean: torch.Tensor, config: LangevinConfig,
            hidden: torch.Tensor | None = None, seed: int = 0) -> Restoration:
    """Denoise (``hidden`` None) or inpaint (``hidden`` a bool mask, True = unknown) ``corrupted``.

    Inpainting starts the hidden pixels from U(−1, 1). ``clean`` (B, 1, H, W) only scores the result.
    """
    corrupted, clean = corrupted.float(), clean.float()
    if hidden is None:
        x0, fn, region = corrupted, energy, torch.ones_like(clean, dtype=torch.bool)
    else:
        hidden = hidden.to(corrupted.device)
        g = torch.Generator().manual_seed(seed)
        noise = (torch.rand(corrupted.shape, generator=g) * 2 - 1).to(corrupted.device)
        x0 = torch.where(hidden, noise, corrupted)
        paste = _paste(corrupted, hidden)
        fn, region = (lambda z: energy(paste(z))), hidden
    traj = langevin(fn, x0, config, seed=seed, frame_format="float32")
    frames = traj.frames
    if hidden is not None:  # the state's observed pixels drift with the noise; show the pasted image
        h, obs = hidden.cpu().numpy(), corrupted.cpu().numpy()
        frames = np.where(h[None], frames, obs[None])
    return Restoration(frames=frames.astype(np.float32), frame_steps=traj.frame_steps, final=frames[-1],
                       energy=traj.energy,
                       error=_mse01(frames, clean.cpu().numpy(), region.cpu().numpy().astype(np.float32)))
