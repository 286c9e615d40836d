"""Cached loaders. Models are shared by every session (never mutated after load); results are
keyed by small hashables (names, frozen configs, seeds)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import streamlit as st
import torch

from ebmviz import catalogue, checkpoints
from ebmviz.analysis import metrics
from ebmviz.analysis.embedding import PCA2, fit_pca
from ebmviz.data import load_dataset_with_source
from ebmviz.images import from_u8
from ebmviz.models import Model
from ebmviz.sampling import LangevinConfig, Trajectory, langevin
from ebmviz.sampling.sampler_process import SUPPORTED, ProcessSampler
from ebmviz.sampling.shared import SharedSampler
from ebmviz.sampling.starts import make_starts

EVALUATOR = "evaluator-mnist"
R = TypeVar("R")


@dataclass(frozen=True)
class Judged(Generic[R]):
    """A sampler's run with the evaluator's verdicts on its first and last images (None without an evaluator)."""

    run: R
    before: metrics.Prediction | None
    after: metrics.Prediction | None


@st.cache_resource(show_spinner="Loading checkpoint…", max_entries=8)
def load_model(name: str, device: str = "cpu") -> Model:
    """The model ``name`` (a checkpoint's file stem or a user model's name, never a path: ``ebmviz.catalogue``) in
    eval mode with frozen parameters. Raises CheckpointError or UserModelError."""
    return catalogue.load(name, device=device)


def is_digit_model(model: Model) -> bool:
    """Whether the model's images are MNIST's 1×28×28: the evaluator, the digits and their maps apply."""
    return tuple(model.image_shape) == (1, 28, 28)


def model_data(model: Model) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """(images (N, C, H, W) in [−1, 1], labels or None, source) the model's chains may start from: a user model's
    own images, MNIST's test digits for a 1×28×28 model, None otherwise."""
    own = getattr(model, "data", None)
    if own is not None:
        return own.images, own.labels, own.source
    return load_data("mnist", "test") if is_digit_model(model) else None


@st.cache_resource(show_spinner=False, max_entries=16)
def shared_sampler(name: str, device: str = "cpu") -> ProcessSampler | SharedSampler:
    """The Langevin loop every session shares for model ``name`` on ``device``: the chains of all sessions sampling
    it now go through one forward and backward pass per step, in a process of its own that loads the model itself
    (``ebmviz.sampling.sampler_process``; it ends after two idle minutes), started here so that the first Play
    does not wait for it. Where processes cannot share memory that way (Windows), a thread of this process."""
    model = load_model(name, device)  # a model that cannot load says so here, in the page, not in the child
    if not SUPPORTED:
        return SharedSampler(model)
    sampler = ProcessSampler(functools.partial(catalogue.load, name, device))
    sampler.start()
    return sampler


@st.cache_resource(show_spinner="Loading evaluator…")
def load_evaluator() -> torch.nn.Module | None:
    """The shipped evaluator, or None when its file is missing or unreadable."""
    try:
        return checkpoints.load(checkpoints.named(EVALUATOR))
    except checkpoints.CheckpointError:
        return None


@st.cache_data(show_spinner="Loading digits…", max_entries=4)
def load_data(name: str = "mnist", split: str = "test") -> tuple[np.ndarray, np.ndarray, str]:
    """(images (N, 1, 28, 28) float32 in [-1, 1], labels (N,), source description)."""
    ds = load_dataset_with_source(name, split)
    return ds.images.numpy(), ds.labels.numpy(), ds.source


@st.cache_data(show_spinner="Fitting the PCA of the data…", max_entries=4)
def data_projection(name: str = "mnist") -> tuple[PCA2, np.ndarray, np.ndarray]:
    """PCA fitted on the test digits, their (N, 2) coordinates and labels."""
    images, labels, _ = load_data(name, "test")
    pca = fit_pca(images)
    return pca, pca.transform(images), labels


def starts(start: str, n: int, seed: int, model_name: str, device: str,
           image: np.ndarray | None = None, data_noise: float = 0.3) -> torch.Tensor:
    """Start states (n, C, H, W) on the CPU for the Langevin page (the model's image shape); raises ValueError with
    a readable reason. ``image`` is an upload (1, C, H, W)."""
    model = load_model(model_name, device)
    data = None
    if start in ("data", "data+noise"):
        found = model_data(model)
        if found is None:
            raise ValueError(f"{model_name} has no images to start from: give it --data when you start ebmviz")
        data = torch.from_numpy(found[0])
    img = None if image is None else torch.from_numpy(image)
    return make_starts(start, n, seed, data=data, data_noise=data_noise, model=model, image=img,
                       shape=tuple(model.image_shape))


@st.cache_data(show_spinner=False, max_entries=16)
def run_chains(model_name: str, device: str, config: LangevinConfig, start: str, n: int,
               seed: int) -> Trajectory:
    """A whole cached run (for the short- vs long-run comparison); uploads are not cached."""
    model = load_model(model_name, device)
    x0 = starts(start, n, seed, model_name, device).to(device)
    return langevin(model, x0, config, seed=seed)


def evaluate_frames(images_u8: np.ndarray) -> metrics.Prediction | None:
    """Evaluator verdict on uint8 images (B, 1, 28, 28), or None without an evaluator or for images of another
    shape (the evaluator reads MNIST's digits only)."""
    ev = load_evaluator()
    if ev is None or tuple(images_u8.shape[1:]) != (1, 28, 28):
        return None
    return metrics.classify(ev, torch.from_numpy(from_u8(images_u8)))
