"""What the model-zoo page reads: every shipped checkpoint's provenance (from its metadata, without loading it),
its stored scores (``ebmviz.analysis.zoo``), and samples of two models drawn on one seed and one gradient budget."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st

from ebmviz import checkpoints
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
class Drawn:
    """Samples of one model for the side-by-side view."""

    images: np.ndarray  # (n, 1, 28, 28) uint8
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
