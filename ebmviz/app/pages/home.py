"""What the home page shows, computed here: the view (views/home.py) only lays it out."""

from __future__ import annotations

from dataclasses import dataclass

from ebmviz import checkpoints
from ebmviz.models import KINDS


def shipped_models() -> list[dict[str, str]]:
    """One row per checkpoint in the checkpoint folder: name, what it is (or why it cannot be read), whether
    ``model(x)`` is an image energy, its training data, wall time and device."""
    rows = []
    for info in checkpoints.list_checkpoints():
        m = info.meta
        rows.append({
            "checkpoint": info.name,
            "energy E(x)": "" if info.kind is None else ("yes" if KINDS[info.kind].is_energy else "no"),
            "data": (m.get("dataset") or {}).get("source", ""),
            "training wall time": f"{m['wall_time_s'] / 60:.1f} min" if "wall_time_s" in m else "",
            "device": m.get("device", ""),
            "what": m.get("title", info.error or ""),  # last: the long column, cut on a narrow screen
        })
    return rows


@dataclass(frozen=True)
class ShortRunSettings:
    """The shipped short-run model's sampler and replay buffer as the home page's text quotes them."""

    settings: str  # "$s = 10$, $\\sigma = 0.005$" from meta["sampler"]
    fresh: str  # "25%": the share of each training batch drawn fresh from noise (train_config["reinit"])


def shortrun_settings(name: str = "shortrun-mnist") -> ShortRunSettings:
    """Read from the checkpoint's metadata; placeholders when it is missing or unreadable."""
    try:
        meta = checkpoints.read_meta(checkpoints.resolve(name))
    except checkpoints.CheckpointError:
        meta = {}
    sampler, train = meta.get("sampler") or {}, meta.get("train_config") or {}
    settings = (f"$s = {sampler['step_size']:g}$, $\\sigma = {sampler['noise_std']:g}$"
                if {"step_size", "noise_std"} <= set(sampler) else "its own $s$ and $\\sigma$")
    fresh = f"{100 * train['reinit']:.0f}%" if isinstance(train.get("reinit"), int | float) else "a share"
    return ShortRunSettings(settings, fresh)
