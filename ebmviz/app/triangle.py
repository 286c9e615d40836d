"""Cached computations behind the divergence-triangle page. Images come back as float32 numpy
arrays (B, 1, 28, 28) in [-1, 1]; errors are on the [0, 1] pixel scale."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from ebmviz.app import cache
from ebmviz.corruption import OCCLUSIONS, occlusion
from ebmviz.figures import as_u8
from ebmviz.models.triangle import interpolate, recovery_error
from ebmviz.sampling import LangevinConfig


def _test_digits(n: int | None = None, digit: int | None = None, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    images, labels, _ = cache.load_data("mnist", "test")
    idx = np.arange(len(images)) if digit is None else np.flatnonzero(labels == digit)
    if n is not None:
        idx = np.random.default_rng(seed).permutation(idx)[:n]
    return torch.from_numpy(images[idx]), labels[idx]


@st.cache_data(show_spinner="Reconstructing held-out digits…", max_entries=8)
def reconstructions(name: str, n: int, digit: int | None, seed: int) -> dict:
    """n held-out digits, their reconstructions g(μ(x)), per-image MSE and energies of both."""
    model = cache.load_model(name)
    x, labels = _test_digits(n, digit, seed)
    with torch.no_grad():
        r = model.reconstruct(x)
        mse = ((r - x) / 2).pow(2).flatten(1).mean(1)
        return {"x": x.numpy(), "recon": r.numpy(), "mse": mse.numpy(), "labels": labels,
                "e_x": model(x).numpy(), "e_recon": model(r).numpy()}


@st.cache_data(show_spinner="Scoring all held-out reconstructions…", max_entries=4)
def reconstruction_summary(name: str) -> dict:
    """Over every held-out digit: mean per-pixel MSE ([0, 1] scale) and the evaluator's agreement."""
    model = cache.load_model(name)
    x, labels = _test_digits()
    with torch.no_grad():
        r = model.reconstruct(x)
    mse = float(((r - x) / 2).pow(2).mean())
    pred = cache.evaluate_frames(as_u8(r.numpy()))
    agree = None if pred is None else float((pred.label == labels).mean())
    return {"n": len(x), "mse": mse, "same_digit": agree}


@st.cache_data(show_spinner="Recovering occluded digits…", max_entries=16)
def recovery(name: str, kind: str, n: int, digit: int | None, n_iter: int, seed: int, **override) -> dict:
    """Occlude n held-out digits, recover them; per-iteration error on hidden pixels and the mean-fill baseline."""
    model = cache.load_model(name)
    x, _ = _test_digits(n, digit, seed)
    seen, hidden = occlusion(kind, x, seed, **override)
    with torch.no_grad():
        steps = model.recover(seen, hidden, n_iter)
    errors = np.stack([recovery_error(s, x, hidden).numpy() for s in steps])  # (n_iter+1, n)
    return {"x": x.numpy(), "seen": seen.numpy(), "steps": [s.numpy() for s in steps], "errors": errors,
            "baseline": errors[0]}  # x_0 is the fill-with-the-mean image


@st.cache_data(show_spinner="Recovery table over 1,000 held-out digits…", max_entries=4)
def recovery_table(name: str, n_iter: int = 10, seed: int = 0) -> list[dict]:
    """Table III of the paper at 28×28: recovery error on hidden pixels per occlusion type."""
    rows = []
    for kind in OCCLUSIONS:
        r = recovery(name, kind, 1000, None, n_iter, seed)
        rows.append({"occlusion": kind, "fill with the mean": float(r["baseline"].mean()),
                     "triangle (inference ↔ generation)": float(r["errors"][-1].mean())})
    return rows


@st.cache_data(show_spinner="Refining generator samples on the energy…", max_entries=8)
def refined_samples(name: str, n: int, config: LangevinConfig, seed: int) -> dict:
    """Generator samples g(z) and the same after Langevin on exp(−E), with energies along the way."""
    model = cache.load_model(name)
    with torch.no_grad():
        x = model.generate(n, seed)
    traj = model.refine(x, config, seed)
    return {"before": x.numpy(), "after": traj.final, "energy": traj.energy}


@st.cache_data(show_spinner=False, max_entries=16)
def latent_path(name: str, a: int, b: int, n: int) -> dict:
    """Interpolation g((1−t)μ(x_a) + t·μ(x_b)) between held-out digits a and b, with energies."""
    model = cache.load_model(name)
    images, labels, _ = cache.load_data("mnist", "test")
    with torch.no_grad():
        path, energy = interpolate(model, torch.from_numpy(images[a]), torch.from_numpy(images[b]), n)
    return {"path": path.numpy(), "energy": energy.numpy(), "ends": (int(labels[a]), int(labels[b]))}
