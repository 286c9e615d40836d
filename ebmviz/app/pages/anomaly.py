"""Cached computations behind the anomaly page: one model's scores −E(x) on held-out digits and on each
out-of-distribution set, their ROC curves, and the AUROC table recomputed on request. Images are float32 numpy
(N, 1, 28, 28) in [-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz import checkpoints
from ebmviz.analysis import zoo as zoo
from ebmviz.analysis.anomaly import (
    GOAL_SETS as GOAL_SETS,
    HELD_OUT as HELD_OUT,
    SETS as SETS,
    SETS_SEED as SETS_SEED,
    auroc_row,
    goal as goal,
    make_sets,
    scores,
)
from ebmviz.analysis.metrics import roc
from ebmviz.app import cache
from ebmviz.data import DataError, load_dataset_with_source
from ebmviz.images import to_u8 as to_u8
from ebmviz.models import KINDS
from ebmviz.transforms import edit


@st.cache_data(show_spinner="Building the out-of-distribution sets…", max_entries=4)
def ood_sets(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], str | None]:
    """(n held-out digits, set name -> n images, why Fashion-MNIST is missing or None)."""
    digits = torch.from_numpy(cache.load_data("mnist", "test")[0][:n])
    try:
        fashion, missing = load_dataset_with_source("fashion-mnist", "test").images, None
    except DataError as err:
        fashion, missing = None, str(err)
    sets = make_sets(digits, seed, fashion)
    return digits.numpy(), {k: v.numpy() for k, v in sets.items()}, missing


@dataclass(frozen=True)
class SetScores:
    """−E of the held-out digits and of each set under one model, with each set's AUROC and ROC curve."""

    digits: np.ndarray  # (n,) scores of the held-out digits
    sets: dict[str, np.ndarray]  # set name -> (n,) scores
    auroc: dict[str, float]
    roc: dict[str, tuple[np.ndarray, np.ndarray]]  # set name -> (false positive rate, true positive rate)


def row_label(name: str, energy: str | None) -> str:
    """The table's name for a checkpoint's energy: the checkpoint's name for ``model(x)``, "name · energy" else."""
    return name if energy is None else f"{name} · {energy}"


@st.cache_data(show_spinner="Scoring the sets with the model's energy…", max_entries=16)
def model_scores(name: str, device: str, n: int, seed: int, energy: str | None = None) -> SetScores:
    """``energy``: one of the model's ``further_energies`` (None: ``model(x)``)."""
    model = cache.load_model(name, device)
    fn = model.named_energy(energy)
    digits, sets, _ = ood_sets(n, seed)
    inside = scores(fn, torch.from_numpy(digits), device=model.device)
    out = {k: scores(fn, torch.from_numpy(v), device=model.device) for k, v in sets.items()}
    curves = {k: roc(inside, s) for k, s in out.items()}
    return SetScores(inside, out, {k: c[2] for k, c in curves.items()}, {k: c[:2] for k, c in curves.items()})


def energy_models() -> list[str]:
    """Names of the readable checkpoints whose ``model(x)`` is an image energy."""
    return [i.name for i in checkpoints.list_checkpoints() if i.error is None and KINDS[i.kind].is_energy]


@st.cache_data(show_spinner="Recomputing the AUROC table for every energy model…", max_entries=2)
def auroc_table(device: str, n: int, seed: int) -> dict[str, dict[str, float]]:
    """``row_label`` -> set name -> AUROC for every energy model and each of its further energies, computed now."""
    digits, sets, _ = ood_sets(n, seed)
    x = torch.from_numpy(digits)
    tensors = {k: torch.from_numpy(v) for k, v in sets.items()}
    table = {}
    for name in energy_models():
        model = cache.load_model(name, device)
        for energy in (None, *model.further_energies):
            table[row_label(name, energy)] = auroc_row(model.named_energy(energy), x, tensors, device=model.device)
    return table


def typicality(name: str, device: str, image: np.ndarray, n: int, seed: int,
               energy: str | None = None) -> tuple[float, float]:
    """(−E of ``image`` (1, 1, 28, 28), the share of held-out digits that score lower: its percentile)."""
    model = cache.load_model(name, device)
    s = float(scores(model.named_energy(energy), torch.from_numpy(image), device=model.device)[0])
    digits = model_scores(name, device, n, seed, energy).digits
    return s, float((digits < s).mean())


def edited(image: np.ndarray, degrees: float, erase: tuple[int, int, int, int] | None,
           stroke: tuple[int, int, int, int] | None) -> np.ndarray:
    """A digit (1, 1, 28, 28) float32 in [−1, 1] rotated, with a box erased and a stroke added
    (``ebmviz.transforms.edit``)."""
    return edit(torch.from_numpy(image), degrees, erase, stroke).numpy()
