"""Cached computations behind the anomaly page: one model's scores −E(x) on its inside images and on each
out-of-distribution set, their ROC curves, and the AUROC table recomputed on request. Images are float32 numpy
(N, C, H, W) in [-1, 1]: the inside images are MNIST's held-out test digits (N, 1, 28, 28) for a 1×28×28 model, and
the user's own images (``--data``) for a model of another shape; the sets are made in that shape
(``ebmviz.analysis.anomaly.make_sets``). Scores of the shipped models are stored (``checkpoints/scores.json``); a user
model's are computed live, on ``USER_HELD_OUT`` images per set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz import catalogue, checkpoints as checkpoints
from ebmviz.analysis import zoo as zoo
from ebmviz.analysis.anomaly import (
    GOAL_SETS as GOAL_SETS,
    HELD_OUT as HELD_OUT,
    SETS as SETS,
    SETS_SEED as SETS_SEED,
    USER_HELD_OUT as USER_HELD_OUT,
    auroc_row,
    edit,
    goal as goal,
    make_sets,
    pick_inside,
    scores,
    set_names,
)
from ebmviz.analysis.metrics import roc
from ebmviz.app import cache
from ebmviz.data import DataError, load_dataset_with_source
from ebmviz.images import to_u8 as to_u8
from ebmviz.models import KINDS as KINDS, Model


@st.cache_data(show_spinner="Building the out-of-distribution sets…", max_entries=4)
def ood_sets(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], str | None]:
    """(n held-out digits, set name -> n images, why Fashion-MNIST is missing or None)."""
    digits = torch.from_numpy(cache.load_data("mnist", "test")[0][:n])
    fashion, missing = _fashion()
    sets = make_sets(digits, seed, fashion)
    return digits.numpy(), {k: v.numpy() for k, v in sets.items()}, missing


def _fashion() -> tuple[torch.Tensor | None, str | None]:
    """(Fashion-MNIST's test images (N, 1, 28, 28), None) or (None, why it is missing)."""
    try:
        return load_dataset_with_source("fashion-mnist", "test").images, None
    except DataError as err:
        return None, str(err)


@st.cache_data(show_spinner="Building the out-of-distribution sets from your images…", max_entries=8)
def user_sets(name: str, device: str, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], str | None]:
    """(up to ``USER_HELD_OUT`` of the user model ``name``'s own images, set name -> as many images of its shape,
    why Fashion-MNIST is missing or None). Keyed by the model's name: its images are fixed while the app runs."""
    data = cache.load_model(name, device).data
    inside = torch.from_numpy(np.ascontiguousarray(pick_inside(data.images, USER_HELD_OUT, seed)))
    fashion, missing = _fashion()
    sets = make_sets(inside, seed, fashion)
    return inside.numpy(), {k: v.numpy() for k, v in sets.items()}, missing


def is_user(model: Model) -> bool:
    """Whether ``model`` is the user's own (``ebmviz run --model``): no stored scores, fewer images scored live."""
    return model.kind == "user"


def shape_text(model: Model) -> str:
    return "×".join(str(s) for s in model.image_shape)


def no_sets_reason(name: str, model: Model) -> str | None:
    """Why the page cannot measure ``model`` (a model of another shape than MNIST's without enough images of its
    own), or None when it can."""
    data = getattr(model, "data", None)
    if cache.is_digit_model(model) and data is None:
        return None
    if data is None:
        return (f"`{name}` takes {shape_text(model)} images, not MNIST's 1×28×28 digits, so its inside set must be "
                "your own images, and it was started without any. Start ebmviz with them: `ebmviz run --model "
                "PATH.py:FACTORY --weights W.safetensors --data IMAGES` (a folder of PNG/JPEG files, an .npz or IDX "
                "files); the page then tells them apart from noise, corruptions of them and Fashion-MNIST.")
    if len(data) < 2:
        return (f"`{name}` has {len(data)} image of its own (--data); the blends of two images need at least two. "
                "Start ebmviz with more images in --data.")
    return None


@dataclass(frozen=True)
class Inside:
    """The images a model's AUROCs are measured on (inside) and the sets told apart from them."""

    images: np.ndarray  # (n, C, H, W) in [−1, 1]
    sets: dict[str, np.ndarray]  # set name -> (n, C, H, W), in the page's order
    missing: str | None  # why Fashion-MNIST is left out, or None
    digits: bool  # MNIST's held-out digits (a 1×28×28 model), else the user's own images
    source: str  # where the inside images come from, in words

    @property
    def noun(self) -> str:
        """What the inside images are called on the page."""
        return "held-out digits" if self.digits else "your images"

    @property
    def counted(self) -> str:
        """"the 1,000 held-out digits" / "your 300 images"."""
        return f"the {len(self.images):,} held-out digits" if self.digits else f"your {len(self.images):,} images"

    @property
    def names(self) -> list[str]:
        """The sets there are, in the page's order."""
        order = set_names(tuple(self.images.shape[1:]))
        return [s for s in order if s in self.sets]


def inside_sets(name: str, device: str, seed: int) -> Inside:
    """The inside images and sets of model ``name`` (``no_sets_reason`` must be None): ``HELD_OUT`` MNIST test
    digits for a shipped 1×28×28 model (``USER_HELD_OUT`` for a user's without --data), else up to
    ``USER_HELD_OUT`` of its own images."""
    model = cache.load_model(name, device)
    if cache.is_digit_model(model) and getattr(model, "data", None) is None:
        n = USER_HELD_OUT if is_user(model) else HELD_OUT
        digits, sets, missing = ood_sets(n, seed)
        return Inside(digits, sets, missing, True, f"the first {n:,} MNIST test digits ({cache.load_data()[2]})")
    images, sets, missing = user_sets(name, device, seed)
    n, total = len(images), len(model.data)
    drawn = f"all {n:,} of your images" if n == total else f"{n:,} of your images, drawn at random"
    return Inside(images, sets, missing, False, f"{drawn} from {model.data.source}")


@dataclass(frozen=True)
class SetScores:
    """−E of the inside images and of each set under one model, with each set's AUROC and ROC curve."""

    digits: np.ndarray  # (n,) scores of the inside images (held-out digits, or the user's own images)
    sets: dict[str, np.ndarray]  # set name -> (n,) scores
    auroc: dict[str, float]
    roc: dict[str, tuple[np.ndarray, np.ndarray]]  # set name -> (false positive rate, true positive rate)


def row_label(name: str, energy: str | None) -> str:
    """The table's name for a checkpoint's energy: the checkpoint's name for ``model(x)``, "name · energy" else."""
    return name if energy is None else f"{name} · {energy}"


@st.cache_data(show_spinner="Scoring the sets with the model's energy…", max_entries=16)
def model_scores(name: str, device: str, seed: int, energy: str | None = None) -> SetScores:
    """``energy``: one of the model's ``further_energies`` (None: ``model(x)``); the sets of ``inside_sets``."""
    model = cache.load_model(name, device)
    fn = model.named_energy(energy)
    got = inside_sets(name, device, seed)
    inside = scores(fn, torch.from_numpy(got.images), device=model.device)
    out = {k: scores(fn, torch.from_numpy(v), device=model.device) for k, v in got.sets.items()}
    curves = {k: roc(inside, s) for k, s in out.items()}
    return SetScores(inside, out, {k: c[2] for k, c in curves.items()}, {k: c[:2] for k, c in curves.items()})


def energy_models() -> list[str]:
    """Names of the usable models whose ``model(x)`` is an image energy: shipped, of added folders and the user's
    own (``ebmviz.catalogue``), what the picker offers and a link may name."""
    return catalogue.names(lambda cls: cls.is_energy)


def user_energy_models() -> list[str]:
    """Names of the user's own usable energy models (``ebmviz run --model``): none has stored scores."""
    return [e.name for e in catalogue.entries() if e.origin == "yours" and e.error is None and e.cls.is_energy]


@st.cache_data(show_spinner="Recomputing the AUROC table for every energy model…", max_entries=2)
def auroc_table(device: str, n: int, seed: int) -> dict[str, dict[str, float]]:
    """``row_label`` -> set name -> AUROC for every 1×28×28 energy model and each of its further energies, on the
    same n held-out digits, computed now (models of other shapes have other inside images: ``user_table``)."""
    digits, sets, _ = ood_sets(n, seed)
    x = torch.from_numpy(digits)
    tensors = {k: torch.from_numpy(v) for k, v in sets.items()}
    table = {}
    for name in energy_models():
        model = cache.load_model(name, device)
        if not cache.is_digit_model(model):
            continue
        for energy in (None, *model.further_energies):
            table[row_label(name, energy)] = auroc_row(model.named_energy(energy), x, tensors, device=model.device)
    return table


def user_table(device: str, seed: int) -> tuple[dict[str, dict], list[str]]:
    """(the user's model -> its inside images, image shape and AUROC per set, computed live; the messages for the
    models the page cannot measure)."""
    rows, notes = {}, []
    for name in user_energy_models():
        model = cache.load_model(name, device)
        if (why := no_sets_reason(name, model)) is not None:
            notes.append(why)
            continue
        got = inside_sets(name, device, seed)
        rows[name] = {"inside": "MNIST digits" if got.digits else "its own images", "shape": shape_text(model),
                      "images": len(got.images), **model_scores(name, device, seed).auroc}
    return rows, notes


def typicality(name: str, device: str, image: np.ndarray, seed: int, energy: str | None = None) -> tuple[float, float]:
    """(−E of ``image`` (1, C, H, W), the share of the model's inside images that score lower: its percentile)."""
    model = cache.load_model(name, device)
    s = float(scores(model.named_energy(energy), torch.from_numpy(image), device=model.device)[0])
    inside = model_scores(name, device, seed, energy).digits
    return s, float((inside < s).mean())


def edited(image: np.ndarray, degrees: float, erase: tuple[int, int, int, int] | None,
           stroke: tuple[int, int, int, int] | None) -> np.ndarray:
    """An image (1, C, H, W) float32 in [−1, 1] rotated, with a box erased and a stroke added
    (``ebmviz.analysis.anomaly.edit``: ``ebmviz.transforms.edit`` for a digit)."""
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


def model_notice(label: str, sc: SetScores, chosen: list[str], digits: bool = True) -> list[str]:
    """Lines for one model's histograms and ROC curves over the ``chosen`` sets; ``digits``: the inside images are
    held-out digits (else the user's own images)."""
    whose, one = ("the digits'", "digit") if digits else ("your images'", "image of yours")
    if not chosen:
        return [f"{label}: pick one or more sets to compare their scores with {whose}.",
                f"{'The held-out digits' if digits else 'Your images'}' median score is {np.median(sc.digits):.4g}.",
                f"Each set's AUROC is the chance a random {one} scores above a random image of that set."]
    shown = {s: sc.auroc[s] for s in chosen}
    easy, hard = max(shown, key=shown.get), min(shown, key=shown.get)
    median = float(np.median(sc.digits))
    above = float((sc.sets[hard] > median).mean())
    g = goal(sc.auroc) if digits else None
    first = (f"{label}: mean AUROC {g[0]:.3f} over the goal's sets, lowest {g[1]:.3f}." if g is not None else
             f"{label}: AUROC from {shown[hard]:.3f} to {shown[easy]:.3f} on the sets shown.")
    return [first,
            f"Easiest set shown: “{easy}” ({shown[easy]:.3f}); hardest: “{hard}” ({shown[hard]:.3f}), whose "
            f"histogram overlaps {whose} most.",
            f"{100 * above:.0f}% of the “{hard}” images score above {whose} median ({median:.4g}): images this "
            f"energy finds at least as typical as a typical {one}."]


def digit_notice(label: str, score: float, below: float, base_score: float, digits: np.ndarray,
                 edits: list[str], is_digit: bool = True) -> list[str]:
    """Lines for your image: its score and percentile among the inside images' scores ``digits`` (held-out digits,
    or the user's own images when not ``is_digit``), what the ``edits`` (e.g. ["rotated 30°"]) did to the score,
    where the inside images lie."""
    thing = "digit" if is_digit else "image"
    if edits:
        moved = score - base_score
        edit = (f"{', '.join(edits).capitalize()}: the score went {'up' if moved > 0 else 'down'} from "
                f"{base_score:.4g} to {score:.4g}. A turned, broken or scribbled {thing} is the kind of change a good "
                "energy should notice.")
    else:
        edit = (f"No edits yet (score {base_score:.4g}): rotate it, erase a box or add a stroke and watch the score "
                "and its percentile move.")
    counted = f"the {len(digits):,} held-out digits" if is_digit else f"your {len(digits):,} images"
    ranks = "real digits too" if is_digit else "your own images too"
    return [f"Under {label} your image scores {score:.4g}: more typical than {100 * below:.1f}% of {counted}.",
            edit,
            f"{'The held-out digits' if is_digit else 'Your images'} themselves range from {digits.min():.4g} to "
            f"{digits.max():.4g}: the score ranks {ranks}, the least typical at the bottom of the grid."]
