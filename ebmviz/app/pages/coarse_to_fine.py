"""Cached computations behind the coarse-to-fine page: cascades, snapshots, budgets, restoration.

Every function takes small hashables (checkpoint names, device, frozen configs, seeds) so Streamlit
can cache it and returns a typed result; images come back as numpy arrays, and timelines as uint8
(B, 1, 28, 28) with coarse stages upsampled by pixel repetition so every panel shows the same size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz.analysis import metrics
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.analysis.restoration import Restoration, restore
from ebmviz.app import cache
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.data import DataError as DataError
from ebmviz.export import trajectory_arrays as trajectory_arrays
from ebmviz.images import to_u8
from ebmviz.models.coarse_to_fine import SIDES, Cascade, CascadeConfig, pool, sample_cascade
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.sampling.starts import make_starts
from ebmviz.transforms import MASKS as MASKS, add_noise, make_mask, occlude


def to28(images_u8: np.ndarray) -> np.ndarray:
    """(…, R, R) uint8 -> (…, 28, 28) by nearest-neighbour repetition (R divides 28)."""
    r = 28 // images_u8.shape[-1]
    return images_u8.repeat(r, axis=-2).repeat(r, axis=-1) if r > 1 else images_u8


@dataclass(frozen=True)
class CascadeFrame:
    """One moment of the cascade timeline."""

    stage: int  # 0, 1, 2 ↔ 7, 14, 28 px
    step: int  # Langevin step within the stage (the step reached, for a hand-off)
    handoff: bool  # True: upsampled previous-stage samples plus noise, before the stage's first step
    grad_evals: int  # gradient evaluations per chain spent so far
    images: np.ndarray  # (B, 1, 28, 28) uint8


def cascade_timeline(c: Cascade) -> list[CascadeFrame]:
    """Every recorded frame of the cascade in order, hand-offs included, all shown at 28×28."""
    frames, spent = [], 0
    for stage, traj in enumerate(c.trajectories):
        if stage > 0:
            frames.append(CascadeFrame(stage, 0, True, spent, to28(to_u8(c.handoffs[stage - 1][1]))))
        for f, step in zip(traj.frames, traj.frame_steps, strict=True):
            if stage > 0 and step == 0:
                continue  # identical to the hand-off frame just added
            frames.append(CascadeFrame(stage, int(step), False, spent + int(step), to28(f)))
        spent += traj.config.n_steps
    return frames


@st.cache_data(show_spinner="Sampling the cascade…", max_entries=16)
def run_cascade(name: str, device: str, config: CascadeConfig, n: int, seed: int, snapshot: int | None = None,
                beta: float | None = None) -> tuple[Cascade, float]:
    """A cascade of n chains from the model (or its ``snapshot``) and its wall time in seconds."""
    model = cache.load_model(name, device)
    if snapshot is not None:
        model = model.snapshot_model(snapshot)
    t = time.perf_counter()
    c = sample_cascade(model, n, seed, config, beta=beta)
    return c, time.perf_counter() - t


@dataclass(frozen=True)
class BetaShare:
    """How a transition snapshot's energy depends on β, on held-out digits at its side."""

    beta: np.ndarray  # (21,) β grid over [0, 1]
    energy: np.ndarray  # (21, 64) E_β of 64 digits
    primal: np.ndarray  # (64,) ‖β·Primal(x)‖ at the chosen β
    fade: np.ndarray  # (64,) ‖(1−β)·Fade(x)‖ at the chosen β


@st.cache_data(show_spinner="Measuring how the two paths share the energy…", max_entries=16)
def beta_share(name: str, device: str, snapshot: int, beta: float) -> BetaShare:
    """For held-out digits at the snapshot's side: E_β over a β grid and the Expand terms at β."""
    model = cache.load_model(name, device).snapshot_model(snapshot)
    stage = model.stage
    digits = torch.from_numpy(cache.load_data("mnist", "test")[0][:64]).to(model.device)
    while digits.shape[-1] > SIDES[stage]:
        digits = pool(digits)
    grid = np.linspace(0.0, 1.0, 21)
    with torch.no_grad():
        energies = np.stack([model.energy(digits, stage, float(b)).cpu().numpy() for b in grid])  # (21, 64)
        primal, fade = model.expand_parts(digits, stage, beta)
    return BetaShare(grid, energies, primal.cpu().numpy(), fade.cpu().numpy())


@dataclass(frozen=True)
class QualityCurve:
    """The evaluator's verdict on a sampler's recorded frames, against gradient evaluations spent."""

    evals: list[int]  # gradient evaluations per chain at each recorded frame
    confident: list[float]  # share with confidence > 0.9
    confidence: list[float]  # mean confidence
    final: np.ndarray  # (n, 1, 28, 28) uint8 last frame
    seconds: float  # wall time of the sampling


def quality_curve(images_u8: np.ndarray) -> tuple[float, float]:
    """(confident share, mean confidence) of the evaluator on uint8 (B, 1, 28, 28) images."""
    pred = cache.evaluate_frames(images_u8)
    if pred is None:
        return float("nan"), float("nan")
    return float((pred.confidence > metrics.CONFIDENT).mean()), float(pred.confidence.mean())


def _curve(evals: list[int], frames: list[np.ndarray], seconds: float) -> QualityCurve:
    q = [quality_curve(f) for f in frames]
    return QualityCurve(evals, [c for c, _ in q], [m for _, m in q], frames[-1], seconds)


@dataclass(frozen=True)
class BudgetComparison:
    budget: int  # gradient evaluations per chain, Σ_s K_s
    cascade: QualityCurve
    shortrun: QualityCurve


@st.cache_data(show_spinner="Running both samplers on the same budget…", max_entries=8)
def budget_comparison(cf_name: str, sr_name: str, device: str, config: CascadeConfig, n: int,
                      seed: int) -> BudgetComparison:
    """Cascade vs the short-run model from 28×28 noise with Σ K_s steps: quality per gradient evaluation."""
    cascade, cf_time = run_cascade(cf_name, device, config, n, seed)
    cf_frames = cascade_timeline(cascade)
    model = cache.load_model(sr_name, device)
    sr_cfg = LangevinConfig.from_dict({**model.meta.get("sampler", {}), "n_steps": cascade.grad_evals,
                                       "record_every": config.record_every})
    t = time.perf_counter()
    traj = langevin(model, make_starts("noise", n, seed).to(model.device), sr_cfg, seed=seed)
    sr_time = time.perf_counter() - t
    return BudgetComparison(
        budget=cascade.grad_evals,
        cascade=_curve([f.grad_evals for f in cf_frames], [f.images for f in cf_frames], cf_time),
        shortrun=_curve(traj.frame_steps.tolist(), list(traj.frames), sr_time))


@dataclass(frozen=True)
class RestorationDemo:
    """Held-out digits denoised and filled in by Langevin on the 28×28 energy; images float32 in [-1, 1]."""

    clean: np.ndarray  # (n, 1, 28, 28) the originals
    noisy: np.ndarray  # what denoising starts from
    denoise: Restoration
    seen: np.ndarray  # the occluded images inpainting starts from
    inpaint: Restoration


@st.cache_data(show_spinner="Restoring…", max_entries=16)
def restoration(name: str, device: str, digit: int, n: int, noise_std: float, mask: str, config: LangevinConfig,
                seed: int) -> RestorationDemo:
    """Denoising and inpainting of n held-out images of ``digit`` with the model's 28×28 energy."""
    images, labels, _ = cache.load_data("mnist", "test")
    of_digit = images[labels == digit]
    pick = np.random.default_rng(seed).permutation(len(of_digit))[:n]
    clean = torch.from_numpy(of_digit[pick])
    model = cache.load_model(name, device)
    energy = model.stage_energy(2, 1.0)
    noisy = add_noise(clean, noise_std, seed)
    hidden = make_mask(mask, tuple(clean.shape), share=0.25, seed=seed)
    seen = occlude(clean, hidden, mask)
    on = model.device
    return RestorationDemo(
        clean=clean.numpy(), noisy=noisy.numpy(), seen=seen.numpy(),
        denoise=restore(energy, noisy.to(on), clean.to(on), config, seed=seed),
        inpaint=restore(energy, seen.to(on), clean.to(on), config, hidden=hidden.to(on), seed=seed))


@dataclass(frozen=True)
class Translation:
    """Images of another domain refined into digits: up the cascade from their 7×7 pooling, and by the short-run
    model at 28×28 from the images themselves with the same number of gradient evaluations."""

    source: np.ndarray  # (n, 1, 28, 28) float32, the starting images
    cascade: Cascade  # started from pool(pool(source))
    shortrun: object  # the short-run model's Trajectory from ``source``
    before: metrics.Prediction | None  # the evaluator on the sources
    after_cascade: metrics.Prediction | None
    after_shortrun: metrics.Prediction | None


@st.cache_data(show_spinner="Refining the images into digits…", max_entries=8)
def translation(cf_name: str, sr_name: str, device: str, config: CascadeConfig, source: np.ndarray,
                seed: int) -> Translation:
    """``source`` (n, 1, 28, 28) in [-1, 1] pooled to 7×7 and run up the cascade; the short-run model's Langevin
    (its shipped sampler, Σ K_s steps) from ``source`` for contrast."""
    model = cache.load_model(cf_name, device)
    x = torch.from_numpy(source)
    cascade = sample_cascade(model, len(x), seed, config, top=2, x0=pool(pool(x)))
    sr = cache.load_model(sr_name, device)
    sr_cfg = LangevinConfig.from_dict({**sr.meta.get("sampler", {}), "n_steps": cascade.grad_evals,
                                       "record_every": max(1, cascade.grad_evals // 20)})
    traj = langevin(sr, x.to(sr.device), sr_cfg, seed=seed)
    verdict = lambda imgs: cache.evaluate_frames(to_u8(imgs))  # noqa: E731
    return Translation(source, cascade, traj, verdict(source), verdict(cascade.final), verdict(traj.final))


def confident_share(images_u8: np.ndarray) -> float | None:
    """The share of uint8 images (B, 1, 28, 28) the evaluator reads as one digit with > 90% confidence; None
    without an evaluator."""
    pred = cache.evaluate_frames(images_u8)
    return None if pred is None else float((pred.confidence > CONFIDENT).mean())


@dataclass(frozen=True)
class CascadeSummary:
    """The numbers of one cascade that its page quotes: median energy over chains where each stage starts (after
    the hand-off) and ends, the gradient evaluations per chain of each stage, the evaluator on the final digits."""

    start: tuple[float, ...]  # median E_s at the stage's first recorded step
    end: tuple[float, ...]  # … at its last
    evals: tuple[int, ...]  # K_s: gradient evaluations per chain spent at stage s
    confident: float | None  # share of final samples read with > 90% confidence (None: no evaluator)


def cascade_summary(c: Cascade) -> CascadeSummary:
    return CascadeSummary(start=tuple(float(np.median(t.energy[0])) for t in c.trajectories),
                          end=tuple(float(np.median(t.energy[-1])) for t in c.trajectories),
                          evals=tuple(int(t.config.n_steps) for t in c.trajectories),
                          confident=confident_share(to_u8(c.final)))


def went(a: float, b: float) -> str:
    """The verb for a number that went from ``a`` to ``b``."""
    return "fell" if b < a else "rose" if b > a else "stayed"


def layout_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |pool(a) − pool(b)| per pixel of two (B, 1, 28, 28) image sets in [-1, 1], both pooled to 7×7: how far
    their coarse layouts differ."""
    def p7(x):
        return np.asarray(x, np.float32).reshape(len(x), 7, 4, 7, 4).mean(axis=(2, 4))

    return float(np.abs(p7(a) - p7(b)).mean())


class CascadeState(PlayerState):
    spec = Slot(None)  # the cascade being played: (name, device, config, n, seed)
