"""Chains from any sampler: a trajectory ``.npz`` read into a ``Trajectory`` the app can play.

The layout — an ``.npz`` written by ``np.savez`` or ``np.savez_compressed``, plain numeric arrays only:

=============  ==================================  ===================================================================
array          shape                               what it holds
=============  ==================================  ===================================================================
``frames``     (F, B, C, H, W) or (F, B, H, W)     required: B chains' images at F recorded steps, C = 1 (grey) or 3
                                                   (RGB); uint8 0…255 (any integer type) or float
``range``      (2,)                                the [lo, hi] that ``frames`` (and ``final``) are in; default [0, 255]
                                                   for integer arrays, [−1, 1] for float ones
``frame_steps``  (F,)                              the step of each frame: integers ≥ 0, nondecreasing; default 0 … F−1,
                                                   or F steps evenly spread over 0 … T when the per-step arrays say T
``energy``     (T+1, B) or (T, B)                  E(x_0) … E(x_T); with T rows, the energy before each step
                                                   E(x_0) … E(x_{T−1})
``grad_norm``  (T, B)                              ‖∇E(x_t)‖ before step t + 1
``step_norm``  (T, B)                              ‖x_{t+1} − x_t‖
``accept``     (T, B)                              a Metropolis step's acceptance: 0/1 or a probability
``final``      (B, C, H, W) or (B, H, W)           the last states, float (ebmviz's own export; else the last frame)
``diverged_at``  (B,)                              the step each chain stopped at, −1 where it did not
``temperature``  (T,)                              the temperature each step targeted (annealed runs)
=============  ==================================  ===================================================================

T, the number of steps, is the rows of ``grad_norm`` / ``step_norm`` / ``accept`` (which must agree), else
``energy``'s rows − 1, else the last frame's step. ebmviz's own export (``ebmviz.export.trajectory_arrays`` plus
``meta_json``, the settings as JSON text) is this layout; its HMC ``leapfrog`` paths are not read, other arrays are
ignored with a note.

Frames are mapped from [lo, hi] to the app's [−1, 1] and stored as uint8 by ``ebmviz.images.to_u8``, as ebmviz's
samplers record them; values past the range by more than ``RANGE_TOLERANCE`` of its width are an error, smaller
overshoots are clipped. A per-step array the file lacks is None in the ``Trajectory``. A non-finite per-step value (a
chain that diverged in someone's sampler) is allowed: that chain's ``diverged_at`` becomes the step of its first one.
Non-finite frames are an error. ``np.load``'s pickle is never used: object arrays are refused from their header,
before any byte of them is read, and so are arrays over ``MAX_VALUES``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ebmviz.images import from_u8, to_u8
from ebmviz.sampling.chains import Trajectory

MAX_FILE_BYTES = 200 * 1024 * 1024  # the largest file read: a browser upload and a laptop's memory both take it
MAX_VALUES = 64 * 1024 * 1024  # values per array (frames: F·B·C·H·W): 64 MB as uint8, 512 MB as float64 at most
MIN_SIDE, MAX_SIDE = 4, 1024  # image height and width, in pixels
RANGE_TOLERANCE = 1e-3  # share of hi − lo a frame value may overshoot the range by (rounding); clipped
STEP_ARRAYS = ("grad_norm", "step_norm", "accept")
READ = ("frames", "range", "frame_steps", "energy", *STEP_ARRAYS, "final", "diverged_at", "temperature", "meta_json")


class TrajectoryFileError(ValueError):
    """The file is not a trajectory the app can read; the message names the problem."""


@dataclass(frozen=True)
class LoadedTrajectory:
    """A trajectory file, read.

    ``trajectory``: frames (F, B, C, H, W) uint8 in the app's pixels, frame_steps (F,) int64, final (B, C, H, W)
    float32 in [−1, 1], energy (T+1, B), grad_norm / step_norm / accept (T, B), each None when the file lacks it,
    diverged_at (B,) int64, temperature (T,) or None, config the file's ``meta_json`` dict or None.
    ``energy_padded``: the file's energy had T rows; its last row, E(x_T), is NaN here (``measured_energy`` leaves
    it out). ``notes``: what was assumed or left out, one sentence each. ``source_range``: the frames' [lo, hi].
    """

    trajectory: Trajectory
    notes: list[str]
    source_range: tuple[float, float]
    n_steps: int  # T
    energy_padded: bool = False

    @property
    def measured_energy(self) -> np.ndarray | None:
        """The energy rows the file holds: (T+1, B), or (T, B) when ``energy_padded``; None without energy."""
        e = self.trajectory.energy
        return None if e is None else (e[:-1] if self.energy_padded else e)


def load_trajectory(source: str | os.PathLike | bytes | BinaryIO) -> LoadedTrajectory:
    """Read a trajectory ``.npz`` (the module's layout) from a path, its bytes or a binary file object.

    Raises ``TrajectoryFileError`` naming the problem: not an .npz, too big, pickled objects, a missing ``frames``,
    shapes, chain counts or step counts that disagree, non-finite frames, values outside the range.
    """
    notes: list[str] = []
    arrays = _read_arrays(_raw_bytes(source), notes)
    return _assemble(arrays, notes)


def _raw_bytes(source) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            _cap_bytes(path.stat().st_size)
            return path.read_bytes()
        except OSError as err:
            raise TrajectoryFileError(f"cannot read {path}: {err.strerror or err}") from err
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        raw = source.read(MAX_FILE_BYTES + 1)  # one byte past the cap says it is over, without reading the rest
    else:
        raise TypeError(f"load_trajectory takes a path, bytes or a binary file, not {type(source).__name__}")
    _cap_bytes(len(raw))
    return raw


def _cap_bytes(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise TrajectoryFileError(f"the file is over the cap of {MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES >> 20} MB): "
                                  "record fewer frames or chains")


def _read_arrays(raw: bytes, notes: list[str]) -> dict[str, np.ndarray]:
    """The layout's arrays of an .npz, each checked from its header (no objects, at most ``MAX_VALUES``) first."""
    if not raw:
        raise TrajectoryFileError("the file is empty")
    if raw.startswith(b"\x93NUMPY"):
        raise TrajectoryFileError("this is a single .npy array, not an .npz: write the arrays with "
                                  "np.savez(path, frames=frames, energy=energy, …)")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise TrajectoryFileError(f"not an .npz file (an .npz is a zip archive; this one starts with {raw[:8]!r}): "
                                  "write it with np.savez or np.savez_compressed")
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = {i.filename.removesuffix(".npy"): i for i in zf.infolist() if i.filename.endswith(".npy")}
            headers = {name: _header(zf, info) for name, info in members.items()}
            pickled = sorted(n for n, (_, dtype) in headers.items() if dtype.hasobject)
            if pickled:
                raise TrajectoryFileError(f"array(s) {', '.join(pickled)} hold Python objects, which only pickle "
                                          "can read, and pickle is never loaded: save plain numeric arrays")
            if "frames" not in headers:
                held = ", ".join(sorted(headers)) or "no arrays"
                raise TrajectoryFileError(f"no `frames` array (the file holds {held}): save the chains' images as "
                                          "np.savez(path, frames=frames) with frames (F, B, C, H, W)")
            for name in READ:
                if name not in headers:
                    continue
                shape, _ = headers[name]
                if int(np.prod(shape)) > MAX_VALUES:
                    what = " (frames × chains × pixel values)" if name == "frames" else ""
                    raise TrajectoryFileError(f"`{name}` {tuple(shape)} holds {int(np.prod(shape)):,} values{what}; "
                                              f"the cap is {MAX_VALUES:,} (64 M): record fewer frames or chains")
                with zf.open(members[name]) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        if isinstance(err, TrajectoryFileError):
            raise
        raise TrajectoryFileError(f"the .npz is damaged and cannot be read: {err}") from err
    if "leapfrog" in headers:
        notes.append("HMC's leapfrog paths (`leapfrog`) are not shown and were not read.")
    ignored = sorted(set(headers) - set(READ) - {"leapfrog"})
    if ignored:
        notes.append(f"Ignored arrays outside the layout: {', '.join(ignored)}.")
    return out


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise TrajectoryFileError(f"`{info.filename}` is a .npy of version {version}, which is not read")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def _assemble(arrays: dict[str, np.ndarray], notes: list[str]) -> LoadedTrajectory:
    frames = _image_axes(arrays["frames"], "frames", "(F, B, C, H, W) or (F, B, H, W)")
    n_frames, n_chains = frames.shape[:2]
    lo, hi = _range(arrays, frames, notes)
    per_step = {n: _per_step(arrays[n], n, n_chains) for n in ("energy", *STEP_ARRAYS) if n in arrays}
    if "energy" in per_step and len(per_step["energy"]) == 0:
        raise TrajectoryFileError("`energy` has no rows: leave it out, or give E(x_0) … E(x_T)")
    rows = {n: len(a) for n, a in per_step.items() if n != "energy"}
    if len(set(rows.values())) > 1:
        raise TrajectoryFileError("the per-step arrays disagree on the number of steps T: "
                                  + ", ".join(f"`{n}` has {r} rows" for n, r in rows.items()))
    energy, padded = per_step.get("energy"), False
    if rows:
        n_steps = next(iter(rows.values()))
        if energy is not None and len(energy) not in (n_steps, n_steps + 1):
            raise TrajectoryFileError(f"`energy` has {len(energy)} rows but the per-step arrays hold T = {n_steps} "
                                      "steps: energy is (T+1, B), E(x_0) … E(x_T), or (T, B), the energy before "
                                      "each step")
        padded = energy is not None and len(energy) == n_steps
    elif energy is not None:
        n_steps = len(energy) - 1
    else:
        n_steps = None
    told = (f"{', '.join(f'`{n}`' for n in rows)} hold{'s' * (len(rows) == 1)} T = {n_steps} steps" if rows else
            f"`energy` has {n_steps + 1} rows, E(x_0) … E(x_T): T = {n_steps} steps" if energy is not None else "")
    steps = _frame_steps(arrays.get("frame_steps"), n_frames, n_steps, told, notes)
    n_steps = int(steps[-1]) if n_steps is None else n_steps
    if padded:
        notes.append(f"`energy` has T = {n_steps} rows: read as the energy before each step, E(x_0) … E(x_{{T−1}}); "
                     "the last state's energy is not in the file.")
        energy = np.concatenate([energy, np.full((1, n_chains), np.nan, energy.dtype)])
    if "accept" in per_step:
        acc = per_step["accept"]
        if ((acc[np.isfinite(acc)] < 0) | (acc[np.isfinite(acc)] > 1)).any():
            raise TrajectoryFileError("`accept` must be 0/1 or a probability in [0, 1]; it holds values from "
                                      f"{np.nanmin(acc):g} to {np.nanmax(acc):g}")
    missing = [n for n in ("energy", *STEP_ARRAYS) if n not in per_step]
    if missing:
        notes.append(f"Not in the file: {', '.join(missing)} (no trace of {'it' if len(missing) == 1 else 'them'}).")
    final = _final(arrays, frames, (lo, hi), "range" in arrays)
    diverged = _diverged(arrays.get("diverged_at"), per_step, n_chains, n_steps, notes)
    traj = Trajectory(final=final, frames=_pixels(frames, lo, hi), frame_steps=steps, energy=energy,
                      grad_norm=per_step.get("grad_norm"), step_norm=per_step.get("step_norm"),
                      accept=per_step.get("accept"), diverged_at=diverged, config=_meta(arrays, notes),
                      temperature=_temperature(arrays.get("temperature"), n_steps, notes))
    return LoadedTrajectory(traj, notes, (lo, hi), n_steps, padded)


def _image_axes(a: np.ndarray, name: str, shapes: str) -> np.ndarray:
    """``a`` with a channel axis (…, C, H, W), its dtype, channels and image size checked."""
    lead = 2 if name == "frames" else 1
    if a.dtype.kind not in "uif":
        raise TrajectoryFileError(f"`{name}` must be numbers (uint8 or float), not {a.dtype}")
    if a.ndim == lead + 2:
        a = np.expand_dims(a, lead)
    elif a.ndim != lead + 3:
        hint = " (one chain? add its axis: frames[:, None])" if name == "frames" and a.ndim == 3 else ""
        raise TrajectoryFileError(f"`{name}` must be {shapes}, got {a.ndim} axes {a.shape}{hint}")
    c, h, w = a.shape[lead:]
    if c not in (1, 3):
        hint = (f"; its last axis is {w}: channels last? np.moveaxis({name}, -1, {lead})" if w in (1, 3) else "")
        raise TrajectoryFileError(f"`{name}` {a.shape} has {c} channels (axis {lead}); C must be 1 (grey) or 3 "
                                  f"(RGB){hint}")
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise TrajectoryFileError(f"images of {h}×{w} pixels: each side must be {MIN_SIDE} to {MAX_SIDE}")
    if 0 in a.shape[:lead]:
        raise TrajectoryFileError(f"`{name}` {a.shape} is empty: it needs at least one frame of one chain")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        where = np.argwhere(~np.isfinite(a))[0]
        at = f"frame {where[0]}, chain {where[1]}" if name == "frames" else f"chain {where[0]}"
        raise TrajectoryFileError(f"`{name}` holds {nan:,} NaN and {inf:,} infinite values (the first at {at}); "
                                  "images must be finite. Keep a diverged chain's last finite image and put the "
                                  "non-finite value in its per-step arrays, which mark the chain as stopped")
    return a


def _range(arrays: dict[str, np.ndarray], frames: np.ndarray, notes: list[str]) -> tuple[float, float]:
    """The frames' [lo, hi]: the file's ``range`` or the default of their dtype; every frame value checked."""
    if "range" in arrays:
        r = arrays["range"]
        if r.shape != (2,) or r.dtype.kind not in "uif" or not np.isfinite(r).all() or not r[0] < r[1]:
            raise TrajectoryFileError(f"`range` must be two finite numbers [lo, hi] with lo < hi, got {r.tolist()}")
        lo, hi = float(r[0]), float(r[1])
    else:
        lo, hi = _default_range(frames)
        notes.append(f"No `range`: {frames.dtype} frames read as [{lo:g}, {hi:g}].")
        if frames.dtype.kind == "f" and frames.min() >= 0 and frames.max() > 0:
            notes.append("Every frame value is ≥ 0: if they are in [0, 1], add range=[0, 1] to the file.")
    _within(frames, "frames", lo, hi)
    return lo, hi


def _default_range(a: np.ndarray) -> tuple[float, float]:
    return (0.0, 255.0) if a.dtype.kind in "ui" else (-1.0, 1.0)


def _within(a: np.ndarray, name: str, lo: float, hi: float) -> None:
    tol = RANGE_TOLERANCE * (hi - lo)
    outside = int(((a < lo - tol) | (a > hi + tol)).sum())
    if outside:
        raise TrajectoryFileError(f"{outside:,} values of `{name}` lie outside its range [{lo:g}, {hi:g}] (they run "
                                  f"from {float(a.min()):g} to {float(a.max()):g}): add range=[lo, hi] holding them "
                                  "to the file, or clip them")


def _pixels(frames: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(F, B, C, H, W) values in [lo, hi] -> uint8 pixels of the app's [−1, 1], one frame at a time (memory)."""
    if frames.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
        return np.ascontiguousarray(frames)
    out = np.empty(frames.shape, np.uint8)
    for f in range(len(frames)):
        out[f] = to_u8((frames[f].astype(np.float64) - lo) / (hi - lo) * 2.0 - 1.0)
    return out


def _per_step(a: np.ndarray, name: str, n_chains: int) -> np.ndarray:
    if a.dtype.kind not in "uifb":
        raise TrajectoryFileError(f"`{name}` must be numbers, not {a.dtype}")
    if a.ndim != 2:
        raise TrajectoryFileError(f"`{name}` must be (steps, B), one row per step and one column per chain; got "
                                  f"shape {a.shape}")
    if a.shape[1] != n_chains:
        raise TrajectoryFileError(f"`{name}` has {a.shape[1]} chains (columns) but `frames` has {n_chains}")
    return a if a.dtype.kind == "f" and a.itemsize >= 4 else a.astype(np.float64)


def _frame_steps(a: np.ndarray | None, n_frames: int, n_steps: int | None, told: str,
                 notes: list[str]) -> np.ndarray:
    """(F,) the frames' steps: the file's, checked against T (``told`` says where T came from), or the default."""
    if a is None:
        if n_steps is None or n_steps == n_frames - 1:
            if n_frames > 1:
                notes.append(f"No `frame_steps`: frame f is step f (0 … {n_frames - 1}).")
            return np.arange(n_frames, dtype=np.int64)
        if n_frames - 1 > n_steps:
            raise TrajectoryFileError(f"{n_frames} frames but {told}, and no `frame_steps`: say which step each "
                                      "frame is with frame_steps (F,)")
        steps = np.linspace(0, n_steps, n_frames).round().astype(np.int64)
        notes.append(f"No `frame_steps`: the {n_frames} frames are read as evenly spread over the {n_steps} steps "
                     f"({', '.join(map(str, steps[:3]))}, …, {steps[-1]}).")
        return steps
    if a.shape != (n_frames,):
        raise TrajectoryFileError(f"`frame_steps` must be (F,) = ({n_frames},), one step per frame; got {a.shape}")
    if a.dtype.kind not in "uif" or (a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == a.round()).all())):
        raise TrajectoryFileError("`frame_steps` must be whole numbers")
    steps = a.astype(np.int64)
    if (steps < 0).any() or (np.diff(steps) < 0).any():
        raise TrajectoryFileError(f"`frame_steps` must be ≥ 0 and nondecreasing; got {steps[:8].tolist()}"
                                  f"{' …' if len(steps) > 8 else ''}")
    if n_steps is not None and steps[-1] > n_steps:
        raise TrajectoryFileError(f"`frame_steps` reach step {steps[-1]} but {told}")
    return steps


def _final(arrays: dict[str, np.ndarray], frames: np.ndarray, frame_range: tuple[float, float],
           explicit: bool) -> np.ndarray:
    """(B, C, H, W) float32 in [−1, 1]: the file's ``final`` in ``range`` (or its dtype's default), else the last
    frame's pixels."""
    if "final" not in arrays:
        return from_u8(_pixels(frames[-1:], *frame_range)[0])
    final = _image_axes(arrays["final"], "final", "(B, C, H, W) or (B, H, W)")
    if final.shape != frames.shape[1:]:
        raise TrajectoryFileError(f"`final` {final.shape} does not match a frame of `frames` {frames.shape[1:]}")
    lo, hi = frame_range if explicit else _default_range(final)
    _within(final, "final", lo, hi)
    return np.clip((final.astype(np.float64) - lo) / (hi - lo) * 2.0 - 1.0, -1, 1).astype(np.float32)


def _diverged(a: np.ndarray | None, per_step: dict[str, np.ndarray], n_chains: int, n_steps: int,
              notes: list[str]) -> np.ndarray:
    """(B,) the step each chain stopped at (−1: never): the file's ``diverged_at``, and the first non-finite
    per-step value of a chain it does not mark (energy and grad_norm row t are step t, step_norm and accept row t
    step t + 1)."""
    found = np.full(n_chains, np.iinfo(np.int64).max)
    for name, values in per_step.items():
        bad = ~np.isfinite(values)
        first = bad.argmax(0) + (1 if name in ("step_norm", "accept") else 0)
        found = np.where(bad.any(0), np.minimum(found, first), found)
    if a is None:
        stopped = np.full(n_chains, -1, np.int64)
    else:
        if a.shape != (n_chains,) or a.dtype.kind not in "iu":
            raise TrajectoryFileError(f"`diverged_at` must be ({n_chains},) integers, one per chain; got {a.shape} "
                                      f"{a.dtype}")
        stopped = a.astype(np.int64)
        if (stopped < -1).any() or (stopped > n_steps).any():
            raise TrajectoryFileError(f"`diverged_at` must be −1 or a step 0 … {n_steps}")
    new = (stopped < 0) & (found < np.iinfo(np.int64).max)
    if new.any():
        stopped = np.where(new, found, stopped)
        listed = ", ".join(f"chain {b} at step {stopped[b]}" for b in np.flatnonzero(new)[:5])
        notes.append(f"{int(new.sum())} chain(s) hold non-finite per-step values (diverged): each is marked as "
                     f"stopped at its first one ({listed}{', …' if new.sum() > 5 else ''}).")
    return stopped


def _temperature(a: np.ndarray | None, n_steps: int, notes: list[str]) -> np.ndarray | None:
    if a is None:
        return None
    if a.shape != (n_steps,) or a.dtype.kind not in "uif" or not (np.isfinite(a).all() and (a > 0).all()):
        notes.append(f"`temperature` left out: it must be ({n_steps},) positive numbers, one per step.")
        return None
    return a.astype(np.float32)


def _meta(arrays: dict[str, np.ndarray], notes: list[str]) -> dict | None:
    """The settings ebmviz's export stores as JSON text in ``meta_json``; None without them."""
    if "meta_json" not in arrays:
        return None
    a = arrays["meta_json"]
    try:
        meta = json.loads(str(a)) if a.shape == () and a.dtype.kind == "U" else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        notes.append("`meta_json` left out: it is not a JSON object.")
        return None
    return meta
