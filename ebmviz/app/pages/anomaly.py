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


# "What to notice": three lines from the numbers each view shows
def table_notice(rows: list[dict]) -> list[str]:
    """Lines for the table of stored AUROCs: ``rows`` as the table shows them (``model``, a column per set, ``goal
    mean`` and ``goal min``)."""
    sets = [s for s in SETS if any(s in r and r[s] is not None for r in rows)]
    graded = [r for r in rows if r.get("goal mean") is not None]
    best = max(graded, key=lambda r: r["goal mean"]) if graded else None
    worst_set = min(GOAL_SETS, key=lambda s: np.inf if best.get(s) is None else best[s]) if best else None
    first = (f"Best on the goal's {len(GOAL_SETS)} sets: {best['model']}, mean {best['goal mean']:.3f}, lowest "
             f"{best['goal min']:.3f} ({worst_set})." if best else "No model has every goal set scored yet.")
    medians = {s: float(np.median([r[s] for r in rows if r.get(s) is not None])) for s in sets}
    hardest = min(medians, key=medians.get)
    flipped = sum(1 for r in rows if r.get(hardest) is not None and r[hardest] < 0.5)
    second = (f"Hardest set: “{hardest}”, where the median row scores {medians[hardest]:.3f}; {flipped} of the "
              f"{len(rows)} rows are below 0.5 on it: to them it looks more typical than real digits.")
    red = {s: sum(1 for r in rows if r.get(s) is not None and r[s] < 0.85) for s in sets}
    cells = sum(1 for r in rows for s in sets if r.get(s) is not None)
    most = max(red, key=red.get)
    third = (f"{sum(red.values())} of the table's {cells} AUROCs are red (below 0.85), {red[most]} of them on "
             f"“{most}”: an energy that tells digits from noise can still fail on another kind of image.")
    return [first, second, third]


def model_notice(label: str, sc: SetScores, chosen: list[str]) -> list[str]:
    """Lines for one model's histograms and ROC curves over the ``chosen`` sets."""
    if not chosen:
        return [f"{label}: pick one or more sets to compare their scores with the digits'.",
                f"The held-out digits' median score is {np.median(sc.digits):.4g}.",
                "Each set's AUROC is the chance a random digit scores above a random image of that set."]
    shown = {s: sc.auroc[s] for s in chosen}
    easy, hard = max(shown, key=shown.get), min(shown, key=shown.get)
    median = float(np.median(sc.digits))
    above = float((sc.sets[hard] > median).mean())
    g = goal(sc.auroc)
    first = (f"{label}: mean AUROC {g[0]:.3f} over the goal's sets, lowest {g[1]:.3f}." if g is not None else
             f"{label}: AUROC from {shown[hard]:.3f} to {shown[easy]:.3f} on the sets shown.")
    return [first,
            f"Easiest set shown: “{easy}” ({shown[easy]:.3f}); hardest: “{hard}” ({shown[hard]:.3f}), whose "
            "histogram overlaps the digits' most.",
            f"{100 * above:.0f}% of the “{hard}” images score above the digits' median ({median:.4g}): images this "
            "energy finds at least as typical as a typical digit."]


def digit_notice(label: str, score: float, below: float, base_score: float, digits: np.ndarray,
                 edits: list[str]) -> list[str]:
    """Lines for your digit: its score and percentile, what the ``edits`` (e.g. ["rotated 30°"]) did to the score,
    where the held-out digits lie."""
    if edits:
        moved = score - base_score
        edit = (f"{', '.join(edits).capitalize()}: the score went {'up' if moved > 0 else 'down'} from "
                f"{base_score:.4g} to {score:.4g}. A turned, broken or scribbled digit is the kind of change a good "
                "energy should notice.")
    else:
        edit = (f"No edits yet (score {base_score:.4g}): rotate it, erase a box or add a stroke and watch the score "
                "and its percentile move.")
    return [f"Under {label} your image scores {score:.4g}: more typical than {100 * below:.1f}% of the "
            f"{len(digits):,} held-out digits.",
            edit,
            f"The held-out digits themselves range from {digits.min():.4g} to {digits.max():.4g}: the score ranks "
            "real digits too, the least typical at the bottom of the grid."]
