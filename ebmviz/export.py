"""Exports: what a page can hand the user as a file. Plain formats only; nothing is ever pickled.

- ``gif_bytes``: an animated GIF of image frames (the chains as they move), looping forever.
- ``npz_bytes``: a compressed ``.npz`` of named numeric arrays (a run's trajectory) plus its settings as JSON
  text in a 0-d unicode array ``meta_json``; ``np.load(f, allow_pickle=False)`` reads all of it.
- ``trajectory_arrays``: the arrays of a ``Trajectory`` (final state, frames, per-step diagnostics) as a dict.
- ``config_json``: a settings dataclass (or dict) as sorted, indented JSON with its class name under ``"type"``.
- ``figure_html``: a plotly figure as one standalone HTML page with plotly.js inlined (opens offline).
- ``file_stem``: a safe file-name stem built from labels and numbers.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re

import imageio.v3 as iio
import numpy as np
import plotly.graph_objects as go

from ebmviz.storage import to_json

MAX_GIF_FRAMES = 2_000  # more frames than this make a GIF nobody can download or watch
MAX_GIF_PIXELS = 50_000_000  # F·H·W after scaling; bounds memory and file size
META_KEY = "meta_json"  # name of the JSON text array in an NPZ export
_STEM_MAX = 80


def gif_picks(n_frames: int, frame_shape: tuple[int, ...], most: int = 150) -> np.ndarray:
    """Indices of at most ``most`` frames, evenly spread over ``n_frames`` (first and last kept), that fit the
    GIF's pixel cap at frames of ``frame_shape`` (H, W[, 3]): what a page offers to export."""
    pixels = int(np.prod(frame_shape[:2]))
    n = max(1, min(most, n_frames, MAX_GIF_PIXELS // max(1, pixels), MAX_GIF_FRAMES))
    return np.unique(np.linspace(0, n_frames - 1, n).round().astype(int))


def gif_bytes(frames: np.ndarray, fps: float = 8.0, scale: int = 1) -> bytes:
    """Animated GIF (looping) of ``frames``.

    Args:
        frames: (F, H, W) grey or (F, H, W, 3) RGB, uint8 (a trailing channel of 1 counts as grey).
        fps: frames per second, > 0. The frame time is 1000/fps ms, at least 20 ms (browsers slow faster GIFs
            down); GIF stores it in hundredths of a second.
        scale: integer ≥ 1; each pixel becomes a scale×scale block (np.repeat), so small digits stay sharp.

    Returns:
        The GIF file's bytes. Grey frames come back exactly; RGB frames are quantised to 256 colours per
        frame. Identical consecutive frames are merged into one longer frame by the encoder (same timing).

    Raises:
        ValueError: wrong dtype or shape, no frames, fps or scale out of range, or more than
            ``MAX_GIF_FRAMES`` frames or ``MAX_GIF_PIXELS`` pixels in total after scaling.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"GIF frames must be uint8 (0–255), got dtype {frames.dtype}")
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
        raise ValueError(f"GIF frames must have shape (F, H, W) or (F, H, W, 3), got {frames.shape}")
    n, h, w = frames.shape[:3]
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"GIF needs at least one non-empty frame, got shape {frames.shape}")
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be an integer ≥ 1, got {scale!r}")
    scale = int(scale)
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be positive and finite, got {fps!r}")
    if n > MAX_GIF_FRAMES:
        raise ValueError(f"GIF cap: at most {MAX_GIF_FRAMES:,} frames, got {n:,} (record fewer frames)")
    pixels = n * h * w * scale * scale
    if pixels > MAX_GIF_PIXELS:
        raise ValueError(f"GIF cap: at most {MAX_GIF_PIXELS:,} pixels in total (frames × height × width after "
                         f"scaling), got {pixels:,} (use fewer frames, fewer chains or a smaller scale)")
    if scale > 1:
        frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
    duration_ms = max(20, round(1000.0 / fps))  # the pillow plugin of imageio v3 takes milliseconds
    # explicit batch and mode: imageio would otherwise read grey frames W pixels wide, W ≤ 4, as one colour image
    mode = "L" if frames.ndim == 3 else "RGB"
    return iio.imwrite("<bytes>", np.ascontiguousarray(frames), extension=".gif", duration=duration_ms, loop=0,
                       is_batch=True, mode=mode)


def npz_bytes(arrays: dict[str, np.ndarray | None], meta: dict | None = None) -> bytes:
    """Compressed ``.npz`` of the non-None ``arrays``, plus ``meta`` as JSON text.

    Args:
        arrays: name -> array (any shape, numeric/bool/string dtype); None values are skipped.
        meta: JSON-able dict (numpy scalars allowed), stored as a 0-d unicode array ``meta_json``;
            omitted when None. Read it back with ``json.loads(str(npz["meta_json"]))``.

    Returns:
        The file's bytes; ``np.load(io.BytesIO(b), allow_pickle=False)`` opens it.

    Raises:
        ValueError: an array of object dtype (it would need pickle), a name clash with ``meta_json``,
            or ``meta`` that is not JSON-able.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if value is None:
            continue
        if name == META_KEY:
            raise ValueError(f"array name {META_KEY!r} is reserved for the metadata")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"array {name!r} has object dtype; NPZ exports hold plain arrays only (no pickle)")
        out[name] = arr
    if meta is not None:
        try:
            text = json.dumps(to_json(meta), sort_keys=True)
        except TypeError as err:
            raise ValueError(f"meta is not JSON-able: {err}") from err
        out[META_KEY] = np.array(text)  # 0-d '<U…' array: loads without pickle
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    return buf.getvalue()


_TRAJECTORY_FIELDS = ("final", "frames", "frame_steps", "energy", "grad_norm", "step_norm", "accept", "diverged_at")


def trajectory_arrays(traj) -> dict[str, np.ndarray | None]:
    """The arrays of a ``Trajectory``-like object (duck-typed), ready for ``npz_bytes``.

    Args:
        traj: has ``final (B, ...)``, ``frames (F, B, ...)``, ``frame_steps (F,)``, ``energy (T+1, B)``,
            ``grad_norm (T, B)``, ``step_norm (T, B)``, ``accept (T, B) | None``, ``diverged_at (B,)``,
            and optionally ``leapfrog`` (HMC runs) and ``temperature`` (T, the temperature of each step: the
            annealing schedule), each included only when present and not None.

    Returns:
        name -> numpy array (or None for ``accept`` of a ULA run), in the order above.

    Raises:
        TypeError: ``traj`` lacks one of the fields.
    """
    missing = [name for name in _TRAJECTORY_FIELDS if not hasattr(traj, name)]
    if missing:
        raise TypeError(f"{type(traj).__name__} is not a trajectory: missing {', '.join(missing)}")
    out = {name: _as_array(getattr(traj, name)) for name in _TRAJECTORY_FIELDS}
    for name in ("leapfrog", "temperature"):
        if getattr(traj, name, None) is not None:
            out[name] = _as_array(getattr(traj, name))
    return out


def _as_array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value)


def config_json(config) -> str:
    """Settings as JSON text (indent 2, sorted keys), with ``"type"``: the class name.

    Args:
        config: an object with ``to_dict()`` (a ``JsonSettings`` config), else a dataclass (``asdict``),
            else a dict (written as is, without ``"type"``). Tuples become lists; numpy values become numbers.

    Raises:
        TypeError: ``config`` is none of these, or holds values JSON cannot write.
    """
    if hasattr(config, "to_dict") and callable(config.to_dict):
        d, kind = dict(config.to_dict()), type(config).__name__
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        d, kind = dataclasses.asdict(config), type(config).__name__
    elif isinstance(config, dict):
        d, kind = dict(config), None
    else:
        raise TypeError(f"cannot export settings of type {type(config).__name__} (want a dataclass or a dict)")
    d = to_json(d)
    if kind is not None:
        d.setdefault("type", kind)  # a field literally called "type" wins
    return json.dumps(d, indent=2, sort_keys=True)


def figure_html(fig: go.Figure) -> bytes:
    """A standalone HTML page of ``fig`` (UTF-8) with plotly.js inlined: opens offline, no CDN."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def file_stem(*parts) -> str:
    """Safe file-name stem from labels and numbers, e.g. ``file_stem("sampler lab", 7) == "sampler-lab-7"``.

    Parts (None and empty ones skipped) are joined by "-"; every character outside ``[A-Za-z0-9._-]`` becomes
    "-", runs of "-" collapse to one, leading/trailing "-", "." and "_" go, and the result is cut to 80
    characters. Never empty: "ebmviz" when nothing is left.
    """
    text = "-".join(str(p) for p in parts if p is not None and str(p) != "")
    text = re.sub(r"[^A-Za-z0-9._-]", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip("-._")
    text = text[:_STEM_MAX].rstrip("-._")
    return text or "ebmviz"
