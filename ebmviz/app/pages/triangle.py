"""Cached computations behind the divergence-triangle page, each returning a typed result. Images come
back as float32 numpy arrays (B, 1, 28, 28) in [-1, 1]; errors are on the [0, 1] pixel scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz.analysis import metrics as metrics, zoo
from ebmviz.app import cache
from ebmviz.images import to_u8
from ebmviz.models.base import Refined
from ebmviz.models.triangle import interpolate, recovery_error
from ebmviz.sampling import LangevinConfig, Trajectory, langevin
from ebmviz.sampling.starts import make_starts
from ebmviz.transforms import OCCLUSIONS, occlusion


def _test_digits(n: int | None = None, digit: int | None = None, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    images, labels, _ = cache.load_data("mnist", "test")
    idx = np.arange(len(images)) if digit is None else np.flatnonzero(labels == digit)
    if n is not None:
        idx = np.random.default_rng(seed).permutation(idx)[:n]
    return torch.from_numpy(images[idx]), labels[idx]


@dataclass(frozen=True)
class Reconstructions:
    x: np.ndarray  # (n, 1, 28, 28) held-out digits
    recon: np.ndarray  # their reconstructions g(μ(x))
    mse: np.ndarray  # (n,) per-image mean squared error, [0, 1] scale
    labels: np.ndarray  # (n,) digits
    e_x: np.ndarray  # (n,) E(x)
    e_recon: np.ndarray  # (n,) E(g(μ(x)))


@st.cache_data(show_spinner="Reconstructing held-out digits…", max_entries=8)
def reconstructions(name: str, device: str, n: int, digit: int | None, seed: int) -> Reconstructions:
    """n held-out digits, their reconstructions g(μ(x)), per-image MSE and energies of both."""
    model = cache.load_model(name, device)
    x, labels = _test_digits(n, digit, seed)
    x = x.to(model.device)
    with torch.no_grad():
        r = model.reconstruct(x)
        mse = ((r - x) / 2).pow(2).flatten(1).mean(1)
        return Reconstructions(x.cpu().numpy(), r.cpu().numpy(), mse.cpu().numpy(), labels,
                               model(x).cpu().numpy(), model(r).cpu().numpy())


@dataclass(frozen=True)
class ReconstructionSummary:
    n: int  # held-out digits scored
    mse: float  # mean per-pixel squared error, [0, 1] scale
    same_digit: float | None  # share the evaluator gives the original's digit (None without an evaluator)


@st.cache_data(show_spinner="Scoring all held-out reconstructions…", max_entries=4)
def reconstruction_summary(name: str, device: str) -> ReconstructionSummary:
    """Over every held-out digit: mean per-pixel MSE ([0, 1] scale) and the evaluator's agreement."""
    model = cache.load_model(name, device)
    x, labels = _test_digits()
    x = x.to(model.device)
    with torch.no_grad():
        r = model.reconstruct(x)
    pred = cache.evaluate_frames(to_u8(r).numpy())
    agree = None if pred is None else float((pred.label == labels).mean())
    return ReconstructionSummary(len(x), float(((r - x) / 2).pow(2).mean()), agree)


@dataclass(frozen=True)
class Recovery:
    x: np.ndarray  # (n, 1, 28, 28) held-out digits
    seen: np.ndarray  # what the observer sees
    steps: np.ndarray  # (n_iter + 1, n, 1, 28, 28) x_0 (hidden pixels = the data mean) … x_n_iter
    errors: np.ndarray  # (n_iter + 1, n) error on hidden pixels per iteration

    @property
    def baseline(self) -> np.ndarray:
        """(n,) the fill-with-the-mean error (x_0)."""
        return self.errors[0]


@st.cache_data(show_spinner="Recovering occluded digits…", max_entries=16)
def recovery(name: str, device: str, occlusion_name: str, n: int, digit: int | None, n_iter: int, seed: int,
             **override) -> Recovery:
    """Occlude n held-out digits, recover them; per-iteration error on hidden pixels and the mean-fill baseline."""
    model = cache.load_model(name, device)
    x, _ = _test_digits(n, digit, seed)
    seen, hidden = occlusion(occlusion_name, x, seed, **override)
    with torch.no_grad():
        steps = model.recover(seen.to(model.device), hidden.to(model.device), n_iter)
    steps = torch.stack(steps).cpu()
    errors = torch.stack([recovery_error(s, x, hidden) for s in steps]).numpy()
    return Recovery(x.numpy(), seen.numpy(), steps.numpy(), errors)


@st.cache_data(show_spinner="Recovery table over 1,000 held-out digits…", max_entries=4)
def recovery_table(name: str, device: str, n_iter: int = 10, seed: int = 0) -> list[dict]:
    """Table III of the paper at 28×28, one row per occlusion type: recovery error on hidden pixels."""
    rows = []
    for occ in OCCLUSIONS:
        r = recovery(name, device, occ, 1000, None, n_iter, seed)
        rows.append({"occlusion": occ, "fill with the mean": float(r.baseline.mean()),
                     "triangle (inference ↔ generation)": float(r.errors[-1].mean())})
    return rows


@st.cache_data(show_spinner="Refining generator samples on the energy…", max_entries=8)
def refined_samples(name: str, device: str, n: int, config: LangevinConfig, seed: int) -> Refined:
    """The model's ``draw``: generator samples g(z) and the same after Langevin on exp(−E)."""
    return cache.load_model(name, device).draw(n, seed, config)


@dataclass(frozen=True)
class Change:
    """How far a Langevin run moved its images, per pixel on the [−1, 1] scale (black −1, white 1: a range of 2)."""

    mean_abs: float  # mean |after − before| over images and pixels
    max_abs: float  # the largest |after − before| of any pixel
    drift_cap: float | None  # K·s·clip: the most the clipped gradient moves a pixel in K steps (None: no clip)
    stroke_share: float  # share of the total |change| on stroke pixels (brighter than mid-grey before)
    stroke_pixels: float  # share of the pixels that are stroke pixels
    stroke_mean: float  # mean signed change on stroke pixels (+: brighter after)
    background_mean: float  # … on the other pixels


def change(before: np.ndarray, after: np.ndarray, config: LangevinConfig) -> Change:
    """``Change`` from ``before`` to ``after`` (B, 1, 28, 28) in [−1, 1], run with ``config``."""
    delta = after - before
    size = np.abs(delta)
    stroke = before > 0
    cap = None if config.grad_clip is None else config.n_steps * config.step_size * config.grad_clip
    return Change(mean_abs=float(size.mean()), max_abs=float(size.max(initial=0.0)), drift_cap=cap,
                  stroke_share=float(size[stroke].sum() / max(size.sum(), 1e-12)),
                  stroke_pixels=float(stroke.mean()),
                  stroke_mean=float(delta[stroke].mean()) if stroke.any() else 0.0,
                  background_mean=float(delta[~stroke].mean()) if (~stroke).any() else 0.0)


@dataclass(frozen=True)
class NoiseStart:
    """The page's Langevin settings run on the energy from U(−1, 1) noise instead of the generator's samples: K
    steps, and a longer run of ``long.config.n_steps`` with the same step size, noise and clip."""

    start: np.ndarray  # (n, 1, 28, 28) the noise images
    short: Trajectory  # the K-step run (energies, the final images)
    long: Trajectory  # the longer run from the same start and seed
    nearest_digit: np.ndarray  # (n,) mean |x₀ − d| per pixel to the nearest of ``m`` held-out digits d, [−1, 1] scale
    after_long: metrics.Prediction | None  # the evaluator on the longer run's images (None without an evaluator)


@st.cache_data(show_spinner="Langevin on the energy from noise…", max_entries=8)
def noise_start(name: str, device: str, n: int, config: LangevinConfig, long_steps: int, seed: int,
                m: int = 1000) -> NoiseStart:
    """``config`` and a run of ``long_steps`` steps with the same settings, both from the same n noise images of
    ``seed``; the distance of each noise image to its nearest held-out digit (m of them)."""
    model = cache.load_model(name, device)
    x0 = make_starts("noise", n, seed).to(model.device)
    short = langevin(model, x0, config, seed=seed)
    long = langevin(model, x0, LangevinConfig(
        n_steps=long_steps, step_size=config.step_size, noise_std=config.noise_std, metropolis=config.metropolis,
        grad_clip=config.grad_clip, clamp=config.clamp, record_every=max(1, long_steps)), seed=seed)
    start = x0.cpu().numpy()
    digits = cache.load_data("mnist", "test")[0][:m].reshape(m, -1)  # (m, 784)
    nearest = np.array([np.abs(x.reshape(1, -1) - digits).mean(1).min() for x in start])  # (n,)
    return NoiseStart(start=start, short=short, long=long, nearest_digit=nearest,
                      after_long=cache.evaluate_frames(to_u8(torch.from_numpy(long.final)).numpy()))


@dataclass(frozen=True)
class LatentPath:
    path: np.ndarray  # (n, 1, 28, 28) g((1−t)·μ(x_a) + t·μ(x_b))
    energy: np.ndarray  # (n,) E along the path
    ends: tuple[int, int]  # the digits at either end


@st.cache_data(show_spinner=False, max_entries=16)
def latent_path(name: str, device: str, a: int, b: int, n: int) -> LatentPath:
    """Interpolation g((1−t)μ(x_a) + t·μ(x_b)) between held-out digits a and b, with energies."""
    model = cache.load_model(name, device)
    images, labels, _ = cache.load_data("mnist", "test")
    ends = torch.from_numpy(images[[a, b]]).to(model.device)
    with torch.no_grad():
        path, energy = interpolate(model, ends[0], ends[1], n)
    return LatentPath(path.cpu().numpy(), energy.cpu().numpy(), (int(labels[a]), int(labels[b])))


@dataclass(frozen=True)
class PriorPicture:
    """The generator under both priors from one seed, and how typical each prior's codes are of the digits' codes."""

    normal: np.ndarray  # (n, 1, 28, 28) uint8 g(z), z ~ N(0, I)
    learned: np.ndarray  # (n, 1, 28, 28) uint8 g(z), z ~ p_ψ
    energy: tuple[np.ndarray, np.ndarray]  # (n,) E of each row
    log_density: dict[str, np.ndarray]  # group -> (m,) log p_ψ(z): held-out digits' codes z̃, each prior's draws
    rare: dict[str, float]  # each prior's share of draws below the held-out codes' 1st percentile of log p_ψ
    means: np.ndarray  # (K, 1, 28, 28) uint8 g(m_k), heaviest component first
    weights: np.ndarray  # (K,) π_k, in the same order


@st.cache_data(show_spinner="Drawing from both priors…", max_entries=8)
def prior_picture(name: str, device: str, n: int, seed: int, m: int = 1000) -> PriorPicture:
    """n samples per prior for the grids, and m codes per group for the densities (m held-out digits drawn by
    ``seed``, m draws of each prior), from ``seed``. The model must have a learned prior."""
    model = cache.load_model(name, device)
    images, _ = _test_digits(m, seed=seed)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        codes = torch.cat([model.encode(x.to(model.device), sample=True, gen=gen) for x in images.split(500)])
        pictures = [model.generate(n, seed, learned) for learned in (False, True)]
        energy = tuple(model(x).cpu().numpy() for x in pictures)
        groups = {"held-out digits' codes z̃ ~ q_φ(z|x)": codes, "N(0, I) draws": model.latents(m, seed, False),
                  "p_ψ draws": model.latents(m, seed, True)}
        log_density = {k: model.prior.log_prob(z).cpu().numpy() for k, z in groups.items()}
        order = model.prior.weights.argsort(descending=True)
        means = model.generator(model.prior.means[order])
    floor = np.percentile(log_density["held-out digits' codes z̃ ~ q_φ(z|x)"], 1)
    rare = {k: float((v < floor).mean()) for k, v in log_density.items() if k.endswith("draws")}
    return PriorPicture(normal=to_u8(pictures[0]).numpy(), learned=to_u8(pictures[1]).numpy(), energy=energy,
                        log_density=log_density, rare=rare, means=to_u8(means).numpy(),
                        weights=model.prior.weights[order].cpu().numpy())


def prior_samples_caption(name: str) -> str | None:
    """What ``benchmarks/triangle.py --store`` measured on the generator's samples under each prior, as a sentence;
    None when nothing is stored for the checkpoint's present file."""
    m = zoo.measured(name, "prior_samples")
    if m is None:
        return None
    rows = [f"from {label} {100 * r['confident_share']:.1f}% confident digits, class entropy "
            f"{r['class_entropy']:.3f}, Fréchet {r['frechet']:.1f}, nearest training digit at a median "
            f"{r['nearest']:.3f}"
            for label, r in (("N(0, I)", m.get("standard")), ("the learned prior", m.get("learned"))) if r]
    return (f"Measured on {m['n']:,} samples g(z) of {name}, no refinement (`{m['source']}`): {'; '.join(rows)} "
            f"(RMS, [0, 1] scale). A held-out digit's nearest training digit is a median {m['held_out_nearest']:.3f} "
            "away: samples about as far as that are new digits, not copies.")
