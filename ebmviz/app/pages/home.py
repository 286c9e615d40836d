"""What the home page shows, computed here: the view (views/home.py) only lays it out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ebmviz import catalogue, checkpoints
from ebmviz.app.cache import load_model
from ebmviz.app.widgets import shared
from ebmviz.models import KINDS


def model_rows() -> list[dict[str, str]]:
    """One row per model the app offers: the shipped checkpoints, those of added folders (``ebmviz run
    --checkpoints``) and the user's own (``ebmviz run --model``): name, where it comes from, whether ``model(x)`` is
    an image energy, its data, wall time and device, and what it is (or why it cannot be used)."""
    rows = []
    infos = {i.name: i for i in checkpoints.list_checkpoints()}
    for e in catalogue.entries():
        if e.origin == "yours":
            model = None if e.error else load_model(e.name, shared().device)
            data = getattr(model, "data", None)
            shape = "" if model is None else "×".join(map(str, model.image_shape))
            rows.append({"checkpoint": e.name, "from": "your own", "energy E(x)": "" if e.error else "yes",
                         "data": "" if model is None else (data.source if data is not None else "none given"),
                         "training wall time": "", "device": "",
                         "what": e.error or f"your own energy model on {shape} images ({Path(e.where).name})"})
            continue
        info = infos.get(e.name)
        m = info.meta if info is not None else {}
        rows.append({
            "checkpoint": e.name,
            "from": "shipped" if e.origin == "shipped" else f"added ({Path(e.where).parent.name})",
            "energy E(x)": "" if e.cls is None else ("yes" if KINDS[e.cls.kind].is_energy else "no"),
            "data": str((m.get("dataset") or {}).get("source", "")),
            "training wall time": f"{m['wall_time_s'] / 60:.1f} min" if "wall_time_s" in m else "",
            "device": str(m.get("device") or ""),
            "what": str(m.get("title") or e.error or ""),  # last: the long column, cut on a narrow screen
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
