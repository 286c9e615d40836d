"""Stored landscape maps: one ``.safetensors`` file per map, JSON metadata in its header, never pickle.

A file holds the ``Landscape`` arrays as tensors and one metadata entry, ``"ebmviz_map"``: a JSON object with
``format``, ``config`` (``LandscapeConfig.to_dict()``), ``cost`` and the caller's ``meta``. The merge tree is
not stored; it is rebuilt from the barrier matrices on load. Optional arrays: ``images``, ``labels``,
``start_images`` (uint8) and ``layout`` (a 2-D map of starts and minima, fitted when the map was made).
Writes are atomic and reads check the header first, as for checkpoints (``ebmviz.storage``); any unreadable file
raises ``LandscapeError`` naming the path and the reason.

A bare name resolves to ``<checkpoint_dir>/maps/<name>.safetensors`` (the repository's ``checkpoints/maps/``
unless ``EBMVIZ_SHIPPED_DIR`` is set). ``map_path`` gives a path in ``maps/cache/`` keyed by the checkpoint's
name, a hash of its file and a hash of the map settings, so a map is recomputed when either changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ebmviz import checkpoints, storage
from ebmviz.landscape.result import Cost, Landscape, LandscapeConfig

SUFFIX = storage.SUFFIX
META_KEY = "ebmviz_map"
FORMAT = 1
ARRAYS = ("minima", "energy", "assignment", "converged", "barrier_linear", "barrier_refined", "step_size")
OPTIONAL = ("images", "labels", "start_images", "layout")


class LandscapeError(RuntimeError):
    """A stored map is missing, truncated, corrupt or inconsistent."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"landscape map {path}: {reason}")


def maps_dir() -> Path:
    """``<checkpoint_dir>/maps``: where named maps and the cache live."""
    return checkpoints.checkpoint_dir() / "maps"


def resolve(name_or_path: str | Path) -> Path:
    """A path as given when it exists, has the suffix or a folder part; else ``maps_dir()/<name>.safetensors``."""
    return storage.resolve(name_or_path, maps_dir())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def map_path(checkpoint_name: str | Path, config: LandscapeConfig, extra: dict | None = None) -> Path:
    """Cache path ``maps_dir()/cache/<stem>-<file hash>-<settings hash>.safetensors`` of a checkpoint's map.

    Args:
        checkpoint_name: a shipped name or a path (``checkpoints.resolve``); its file must exist.
        config: the map's ``LandscapeConfig``.
        extra: whatever else defines the map and must key the cache, JSON-able: the space (image or latent),
            the number and source of starts, their seed, …
    """
    ckpt = checkpoints.resolve(checkpoint_name)
    if not ckpt.is_file():
        raise LandscapeError(ckpt, "no such checkpoint file to key the map on")
    settings = json.dumps({"config": config.to_dict(), "extra": extra or {}}, sort_keys=True).encode()
    return maps_dir() / "cache" / f"{ckpt.stem}-{_digest(ckpt.read_bytes())}-{_digest(settings)}{SUFFIX}"


def save_map(landscape: Landscape, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``landscape`` and ``meta`` (JSON-able; default ``landscape.meta``) atomically; return the path."""
    # copies: an image map's ``images`` is its ``minima``, and safetensors refuses tensors that share memory
    tensors = {k: torch.from_numpy(np.array(getattr(landscape, k), copy=True)) for k in ARRAYS}
    tensors.update({k: torch.from_numpy(np.array(getattr(landscape, k), copy=True))
                    for k in OPTIONAL if getattr(landscape, k) is not None})
    header = {"format": FORMAT, "config": landscape.config.to_dict(), "cost": landscape.cost.to_dict(),
              "meta": landscape.meta if meta is None else meta}
    return storage.write(resolve(path), tensors, {META_KEY: json.dumps(header)})


def _read_header(path: Path) -> dict:
    """The map's JSON header, after checking the safetensors framing against the file size."""
    try:
        meta, _ = storage.read_header(path, META_KEY, "save_map")
    except storage.HeaderError as exc:
        raise LandscapeError(path, exc.reason) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LandscapeError(path, "unknown map format (expected format 1)")
    return meta


def _check_shapes(path: Path, a: dict[str, np.ndarray]) -> None:
    m, n = len(a["energy"]), len(a["assignment"])
    want = {"minima": (m,), "barrier_linear": (m, m), "barrier_refined": (m, m), "step_size": (m,),
            "converged": (n,), "images": (m,), "labels": (n,), "start_images": (n,), "layout": (n + m, 2)}
    for k, shape in want.items():
        if k in a and (a[k].shape[:len(shape)] != shape or (k == "layout" and a[k].ndim != 2)):
            raise LandscapeError(path, f"{k} has shape {a[k].shape}, expected {shape}… for M={m}, N={n}")
    pictures = [a[k] for k in ("images", "start_images") if k in a]  # (M or N, C, H, W): digits or a user's images
    if any(p.ndim != 4 or p.shape[1] not in (1, 3) for p in pictures) or len({p.shape[1:] for p in pictures}) > 1:
        raise LandscapeError(path, "images and start_images must be pictures (…, C, H, W) of one shape, C = 1 or 3")
    if "start_images" in a and a["start_images"].dtype != np.uint8:
        raise LandscapeError(path, f"start_images must be uint8, got {a['start_images'].dtype}")
    if n and (a["assignment"].max() >= m or a["assignment"].min() < -1):
        raise LandscapeError(path, "assignment points past the minima")


def load_map(name_or_path: str | Path) -> Landscape:
    """Read a stored map (a name under ``maps_dir()`` or a path); the tree is rebuilt from the barriers."""
    path = resolve(name_or_path)
    header = _read_header(path)
    try:
        arrays = {k: t.numpy() for k, t in storage.read_tensors(path)[1].items()}
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ...
        raise LandscapeError(path, f"cannot read tensors: {exc}") from None
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise LandscapeError(path, f"missing arrays: {', '.join(missing)}")
    _check_shapes(path, arrays)
    try:
        config, cost = LandscapeConfig.from_dict(header["config"]), Cost.from_dict(header.get("cost", {}))
    except (KeyError, TypeError) as exc:
        raise LandscapeError(path, f"unreadable config or cost: {exc}") from None
    return Landscape(**{k: arrays[k] for k in ARRAYS}, **{k: arrays.get(k) for k in OPTIONAL},
                     config=config, cost=cost, meta=header.get("meta") or {})
