"""What the model-zoo page reads: every model of the catalogue (shipped checkpoints, those of added folders, the
user's own models), a checkpoint's provenance (from its metadata, without loading it), what a user model is (its
file, weights, shape, data), the stored scores of the shipped files (``ebmviz.analysis.zoo``), and samples of two
models drawn on one seed and one gradient budget."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ebmviz import catalogue, checkpoints
from ebmviz.analysis import zoo as zoo
from ebmviz.analysis.anomaly import goal as goal
from ebmviz.app import cache
from ebmviz.images import to_u8
from ebmviz.models import KINDS as KINDS
from ebmviz.models.snapshots import SnapshotSlots as SnapshotSlots
from ebmviz.sampling import LangevinConfig


@dataclass(frozen=True)
class Provenance:
    """One checkpoint as the zoo lists it."""

    name: str
    kind: str
    title: str
    command: str
    afterwards: str  # a step taken on the trained checkpoint (a learned prior's fit), '' for none
    data: str
    wall_minutes: float | None
    iterations: int | None
    device: str
    commit: str
    megabytes: float
    written: str  # the file's date


def provenance(info: checkpoints.CheckpointInfo) -> Provenance:
    m = info.meta
    data = m.get("dataset") or {}
    n_train = m.get("n_train")
    data_text = (f"{data.get('name', '?')} {data.get('split', '')}: " +
                 (f"{n_train} digits of " if n_train else "") + f"{data.get('n_images', '?')} images "
                 f"({data.get('source', 'source not recorded')})") if data else "not recorded"
    wall = m.get("wall_time_s")
    threads = m.get("threads")
    prior = m.get("prior") if isinstance(m.get("prior"), dict) else {}
    afterwards = (f"{prior.get('command', 'python -m training fit-prior')}: a learned prior with K = "
                  f"{prior.get('components', '?')} components, {prior.get('wall_time_s', '?')} s") if prior else ""
    return Provenance(
        name=info.name, kind=info.kind, title=m.get("title", info.kind), command=m.get("command", "not recorded"),
        afterwards=afterwards, data=data_text, wall_minutes=None if wall is None else wall / 60,
        iterations=m.get("iterations") if isinstance(m.get("iterations"), int) else None,
        device=f"{m.get('device', '?')}" + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""),
        commit=str(m.get("git_commit") or "–"),
        megabytes=info.path.stat().st_size / 1e6,
        written=datetime.date.fromtimestamp(info.path.stat().st_mtime).isoformat())


@dataclass(frozen=True)
class Listed:
    """One model of the catalogue as the page lists it."""

    entry: catalogue.Entry  # name, class, origin ("shipped", "added", "yours"), where, error
    info: checkpoints.CheckpointInfo | None  # a checkpoint's listing (metadata); None for a user model

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def usable(self) -> bool:
        return self.entry.error is None


def listing() -> list[Listed]:
    """Every model the app offers, in the catalogue's order: shipped, added folders', the user's own."""
    infos = {i.name: i for i in checkpoints.list_checkpoints()}
    return [Listed(e, None if e.origin == "yours" else infos.get(e.name)) for e in catalogue.entries()]


def origin(listed: Listed) -> str:
    """Where a model comes from, in a few words: "shipped", "added from <folder>", "your own"."""
    e = listed.entry
    if e.origin == "added":
        return f"added from {Path(e.where).parent}"
    return "your own" if e.origin == "yours" else "shipped"


def scored(listed: Listed, scores: zoo.Scores) -> zoo.ModelScores | None:
    """The stored scores of a shipped checkpoint; None for any other model (scores.json holds the shipped files'
    numbers only, so a model of an added folder with a shipped model's name is never given its numbers)."""
    return scores.models.get(listed.name) if listed.entry.origin == "shipped" else None


def skipped(listed: Listed) -> str:
    """Why an unusable model is left out, as the page says it."""
    e = listed.entry
    what = {"shipped": Path(e.where).name, "added": f"{Path(e.where).name} (added from {Path(e.where).parent})",
            "yours": f"your model {e.name} ({e.where})"}[e.origin]
    return f"Skipped {what}: {e.error}"


def user_model(name: str, device: str = "cpu"):
    """A user model, loaded (``cache.load_model``): its ``config`` (``UserConfig``) says what it is."""
    return cache.load_model(name, device)


def user_details(name: str, device: str = "cpu") -> dict[str, str]:
    """What a user model is, field -> words: its file and factory, weights and their SHA-256 prefix, parameters,
    image shape, value range, negation, data and optional methods."""
    model = user_model(name, device)
    c, data = model.config, getattr(model, "data", None)
    lo, hi = c.value_range
    return {
        "file and factory": c.target,
        "weights": c.weights or "none given: the factory's own parameters",
        "weights SHA-256 (first 16 hex digits)": c.weights_sha256 or "–",
        "parameters": f"{c.parameters:,}",
        "image shape (C×H×W)": "×".join(map(str, c.image_shape)),
        "value range": f"[{lo:g}, {hi:g}]" + ("" if (lo, hi) == (-1.0, 1.0) else
                                             " (the app's pixels in [−1, 1] are mapped onto it)"),
        "negate": "yes: E(x) = −f(x)" if c.negate else "no: E(x) = f(x)",
        "data": "none given (--data): chains start from noise" if data is None else
        f"{len(data.images):,} images{', labelled' if data.labels is not None else ''} ({data.source})",
        "extras": ", ".join(f"{k}(n, seed)" for k in c.extras) or "none",
    }


def table_rows(models: list[Listed], scores: zoo.Scores, device: str = "cpu") -> list[dict[str, Any]]:
    """The "All models" table: one row per usable model, its origin, stored quality (shipped files only), size
    and training time; None where a number is not known (the page shows "–")."""
    rows = []
    for m in (m for m in models if m.usable):
        entry = scored(m, scores)
        q = (entry.quality or {}) if entry else {}
        g = goal(entry.auroc) if entry and entry.auroc else None
        if m.info is not None:
            p = provenance(m.info)
            params, mb, minutes, kind = entry.parameters if entry else None, p.megabytes, p.wall_minutes, p.kind
            state = ("not scored" if m.entry.origin == "shipped" else "not scored (added)") if entry is None else \
                "changed since" if scores.stale(m.name, m.info.path) else "as scored"
        else:
            c = user_model(m.name, device).config
            weights = Path(c.weights) if c.weights else None
            params, minutes, kind, state = c.parameters, None, m.entry.cls.kind, "not scored (your own)"
            mb = weights.stat().st_size / 1e6 if weights is not None and weights.is_file() else None
        rows.append({"model": m.name, "from": origin(m), "kind": kind, "confident (> 0.9)": q.get("confident_share"),
                     "class entropy": q.get("class_entropy"), "Fréchet": q.get("frechet"),
                     "gradients per sample": q.get("grad_evals"),
                     "anomaly AUROC (goal mean)": None if g is None else g[0], "parameters": params, "MB": mb,
                     "training min": minutes, "scored file": state})
    return rows


@dataclass(frozen=True)
class Drawn:
    """Samples of one model for the side-by-side view."""

    images: np.ndarray  # (n, C, H, W) uint8
    grad_evals: int  # energy-gradient evaluations per sample
    how: str  # the settings used, in words


def budget_config(model, budget: int | None) -> tuple[Any, str]:
    """The model's shipped draw settings, with the Langevin step count set to ``budget`` when it samples by Langevin
    from noise (other samplers keep their shipped budget)."""
    config = model.draw_config()
    if budget is not None and isinstance(config, LangevinConfig):
        return replace(config, n_steps=int(budget), record_every=max(1, int(budget) // 8)), \
            f"Langevin from noise, {budget} steps (the chosen budget)"
    return config, "its shipped sampler" + (" (its budget is fixed by the model)" if budget is not None else "")


@st.cache_data(show_spinner="Drawing samples…", max_entries=16)
def drawn(name: str, device: str, n: int, seed: int, budget: int | None) -> Drawn:
    model = cache.load_model(name, device)
    config, how = budget_config(model, budget)
    result = model.draw(n, seed, config)
    return Drawn(to_u8(np.asarray(result.final)), int(result.grad_evals), how)
