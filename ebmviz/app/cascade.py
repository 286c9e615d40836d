"""Cached computations behind the coarse-to-fine page: cascades, snapshots, budgets, restoration.

Every function takes small hashables (checkpoint names, frozen configs, seeds) so Streamlit can
cache it; images come back as uint8 (B, 1, 28, 28) numpy arrays, coarse stages upsampled by
pixel repetition so every panel shows the same size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz import metrics
from ebmviz.app import cache
from ebmviz.corruption import add_noise, make_mask, occlude
from ebmviz.figures import as_u8
from ebmviz.models.coarse_to_fine import SIDES, Cascade, CascadeConfig, pool, sample_cascade
from ebmviz.restoration import Restoration, restore
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.starts import make_starts


def to28(images_u8: np.ndarray) -> np.ndarray:
    """(…, R, R) uint8 -> (…, 28, 28) by nearest-neighbour repetition (R divides 28)."""
    r = 28 // images_u8.shape[-1]
    return images_u8.repeat(r, axis=-2).repeat(r, axis=-1) if r > 1 else images_u8


@dataclass(frozen=True)
class Frame:
    """One moment of the cascade timeline."""

    stage: int  # 0, 1, 2 ↔ 7, 14, 28 px
    step: int  # Langevin step within the stage (the step reached, for a hand-off)
    handoff: bool  # True: upsampled previous-stage samples plus noise, before the stage's first step
    grad_evals: int  # gradient evaluations per chain spent so far
    images: np.ndarray  # (B, 1, 28, 28) uint8


def timeline(c: Cascade) -> list[Frame]:
    """Every recorded frame of the cascade in order, hand-offs included, all shown at 28×28."""
    frames, spent = [], 0
    for stage, traj in enumerate(c.trajectories):
        if stage > 0:
            frames.append(Frame(stage, 0, True, spent, to28(as_u8(c.handoffs[stage - 1][1]))))
        for f, step in zip(traj.frames, traj.frame_steps, strict=True):
            if stage > 0 and step == 0:
                continue  # identical to the hand-off frame just added
            frames.append(Frame(stage, int(step), False, spent + int(step), to28(f)))
        spent += traj.config.n_steps
    return frames


@st.cache_data(show_spinner="Sampling the cascade…", max_entries=16)
def run_cascade(name: str, config: CascadeConfig, n: int, seed: int, snapshot: int | None = None,
                beta: float | None = None) -> tuple[Cascade, float]:
    """A cascade of n chains from the model (or its ``snapshot``) and its wall time in seconds."""
    model = cache.load_model(name)
    if snapshot is not None:
        model = model.snapshot_model(snapshot)
    t = time.perf_counter()
    c = sample_cascade(model, n, seed, config, beta=beta)
    return c, time.perf_counter() - t


@st.cache_data(show_spinner="Measuring how the two paths share the energy…", max_entries=16)
def beta_share(name: str, snapshot: int, beta: float, seed: int) -> dict[str, np.ndarray]:
    """For held-out digits at the snapshot's side: E_β over a β grid and the Expand terms at β."""
    model = cache.load_model(name).snapshot_model(snapshot)
    stage = model.stage
    digits = torch.from_numpy(cache.load_data("mnist", "test")[0][:64])
    while digits.shape[-1] > SIDES[stage]:
        digits = pool(digits)
    grid = np.linspace(0.0, 1.0, 21)
    with torch.no_grad():
        energies = np.stack([model.energy(digits, stage, float(b)).numpy() for b in grid])  # (21, 64)
        primal, fade = model.expand_parts(digits, stage, beta)
    return {"beta": grid, "energy": energies, "primal": primal.numpy(), "fade": fade.numpy()}


def quality_curve(images_u8: np.ndarray) -> tuple[float, float]:
    """(confident share, mean confidence) of the evaluator on uint8 (B, 1, 28, 28) images."""
    pred = cache.evaluate_frames(images_u8)
    if pred is None:
        return float("nan"), float("nan")
    return float((pred.confidence > metrics.CONFIDENT).mean()), float(pred.confidence.mean())


@st.cache_data(show_spinner="Running both samplers on the same budget…", max_entries=8)
def budget_comparison(cf_name: str, sr_name: str, config: CascadeConfig, n: int, seed: int) -> dict:
    """Cascade vs the short-run model from 28×28 noise with Σ K_s steps: quality per gradient evaluation."""
    cascade, cf_time = run_cascade(cf_name, config, n, seed)
    budget = cascade.grad_evals
    cf_frames = timeline(cascade)
    model = cache.load_model(sr_name)
    sr_cfg = LangevinConfig.from_dict({**model.meta.get("sampler", {}), "n_steps": budget,
                                       "record_every": config.record_every})
    t = time.perf_counter()
    traj = langevin(model, make_starts("noise", n, seed), sr_cfg, seed=seed)
    sr_time = time.perf_counter() - t
    cf_q = [quality_curve(f.images) for f in cf_frames]
    sr_q = [quality_curve(f) for f in traj.frames]
    return {
        "budget": budget,
        "cascade": {"evals": [f.grad_evals for f in cf_frames], "confident": [q[0] for q in cf_q],
                    "confidence": [q[1] for q in cf_q], "final": cf_frames[-1].images, "seconds": cf_time},
        "shortrun": {"evals": traj.frame_steps.tolist(), "confident": [q[0] for q in sr_q],
                     "confidence": [q[1] for q in sr_q], "final": traj.frames[-1], "seconds": sr_time},
    }


@st.cache_data(show_spinner="Restoring…", max_entries=16)
def restoration(name: str, digit: int, n: int, noise_std: float, mask_kind: str, config: LangevinConfig,
                seed: int) -> dict[str, tuple[np.ndarray, Restoration]]:
    """Denoising and inpainting of n held-out images of ``digit`` with the model's 28×28 energy.

    Returns {"clean": …, "denoise": (noisy images, run), "inpaint": (occluded images, run)};
    images are float32 (n, 1, 28, 28) in [-1, 1].
    """
    images, labels, _ = cache.load_data("mnist", "test")
    pool_of_digit = images[labels == digit]
    pick = np.random.default_rng(seed).permutation(len(pool_of_digit))[:n]
    clean = torch.from_numpy(pool_of_digit[pick])
    model = cache.load_model(name)
    energy = model.stage_energy(2, 1.0)
    noisy = add_noise(clean, noise_std, seed)
    hidden = make_mask(mask_kind, tuple(clean.shape), share=0.25, seed=seed)
    seen = occlude(clean, hidden, mask_kind)
    return {"clean": clean.numpy(),
            "denoise": (noisy.numpy(), restore(energy, noisy, clean, config, seed=seed)),
            "inpaint": (seen.numpy(), restore(energy, seen, clean, config, hidden=hidden, seed=seed))}
