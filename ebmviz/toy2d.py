"""Analytic energies with known answers (for the sampler's statistical tests and a sampler lab).

Every function returns an energy ``E(x) -> (B,)`` for x of shape (B, D), with p ∝ exp(−E).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_energy(mean, cov):
    """E(x) = ½ (x − μ)ᵀ Σ⁻¹ (x − μ): the Gaussian N(μ, Σ) up to its constant."""
    mu = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    prec = torch.as_tensor(np.linalg.inv(np.asarray(cov, dtype=np.float64)).astype(np.float32))

    def energy(x: torch.Tensor) -> torch.Tensor:
        d = x - mu.to(x)
        return 0.5 * ((d @ prec.to(x)) * d).sum(1)

    return energy


def mixture_energy(separation: float = 3.0, std: float = 0.5):
    """Equal mixture of N((±separation, 0), std²·I) in 2-D: E(x) = −log p(x) + const.

    The barrier between the modes, E(0) − E(mode), is ≈ separation² / (2·std²) nats.
    """
    means = torch.tensor([[-separation, 0.0], [separation, 0.0]])

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - means.to(x)) ** 2).sum(-1)  # (B, 2)
        return -torch.logsumexp(-sq / (2 * std**2), dim=1) + math.log(2.0)

    return energy


def wells_energy(n_wells: int, seed: int, box: float, width: float = 0.35):
    """E(x) = 0.02‖x‖² − Σ_k d_k exp(−‖x − μ_k‖²/(2·width²)) in 2-D: Gaussian wells of depth d_k in [1, 3] at
    random μ_k in [−box, box]² (drawn from ``seed``) on a weak bowl — a landscape with many minima."""
    g = torch.Generator().manual_seed(seed)
    mu = (torch.rand(n_wells, 2, generator=g) * 2 - 1) * box
    depth = 1 + 2 * torch.rand(n_wells, generator=g)

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - mu.to(x)) ** 2).sum(-1)  # (B, n_wells)
        return 0.02 * (x**2).sum(1) - (depth.to(x) * torch.exp(-sq / (2 * width**2))).sum(1)

    return energy

