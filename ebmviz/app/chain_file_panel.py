"""Chains from any sampler on a page: upload a trajectory ``.npz``, play its frames, read its traces and diagnostics.

``chain_file_panel(prefix)`` draws an uploader, the file's message when it cannot be read (``load_trajectory``'s), what
was assumed while reading it, then the app's ``Player`` over the file's frames (a grid of chains, grey or RGB, and
"Step N / T"), the per-step traces the file supports with saturation, pixel range and diversity per frame
(``analysis.chain_health``), and the energy's ESS and R-hat. The file stays in memory: its reading is kept in the
session keyed by the bytes' digest and never written to disk. Every session key starts ``<prefix>_file_``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ebmviz.analysis.chain_health import PixelRange, diversity_trace, pixel_range
from ebmviz.app.player import FrameView, Player, PlayerState, Recorded
from ebmviz.app.presentation import grid_font_px
from ebmviz.app.state import Slot
from ebmviz.figures.chains import traces_figure
from ebmviz.figures.charts import line_figure
from ebmviz.figures.images import labelled_grid
from ebmviz.sampling.diagnostics import second_half_diagnostics
from ebmviz.sampling.trajectory_file import MAX_FILE_BYTES, LoadedTrajectory, TrajectoryFileError, load_trajectory

MAX_SHOWN = 64  # chains drawn in the grid (8 × 8); the traces and numbers use every chain
MAX_DIVERSITY_CHAINS = 256  # diversity compares every pair of chains (F·B² distances): the first 256 only
MAX_TRACE_STEPS = 5_000  # longer per-step arrays are drawn at DRAWN_STEPS evenly spread steps (the browser draws each)
DRAWN_STEPS = 2_000
PER_STEP = {"energy": "energy E(x_t)", "grad_norm": "gradient norm ‖∇E‖", "step_norm": "update norm ‖Δx‖",
            "accept": "acceptance"}


@dataclass(frozen=True)
class Opened:
    """One uploaded file, read: its digest and name, and either the trajectory with its per-frame health (pixel
    range; mean distance between chains (F,) and near-duplicate count (F,)) or the reason it cannot be read."""

    digest: str
    name: str
    loaded: LoadedTrajectory | None
    error: str | None = None
    pixels: PixelRange | None = None
    diversity: tuple[np.ndarray, np.ndarray] | None = None


class ChainFileState(PlayerState):
    opened = Slot(None)  # the ``Opened`` of the file in the uploader


def open_file(raw: bytes, name: str) -> Opened:
    """Read an upload's bytes (never written anywhere): the trajectory and its health, or the loader's message."""
    digest = hashlib.sha256(raw).hexdigest()[:16]
    try:
        loaded = load_trajectory(raw)
    except TrajectoryFileError as err:
        return Opened(digest, name, None, str(err))
    frames = loaded.trajectory.frames
    return Opened(digest, name, loaded, None, pixel_range(frames), _diversity(frames))


def _diversity(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``diversity_trace`` of the first ``MAX_DIVERSITY_CHAINS`` chains, a few frames at a time (at most 4 M pairwise
    distances in memory at once)."""
    sub = frames[:, :MAX_DIVERSITY_CHAINS]
    chunk = max(1, 2**22 // sub.shape[1] ** 2)
    parts = [diversity_trace(sub[i:i + chunk]) for i in range(0, len(sub), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def chain_file_panel(prefix: str) -> None:
    """The uploader and, for a readable file, its player, traces and diagnostics (keys ``<prefix>_file_…``)."""
    state = ChainFileState(f"{prefix}_file")
    # the server refuses larger uploads itself (server.maxUploadSize): the uploader says so before sending them
    limit_mb = min(MAX_FILE_BYTES >> 20, int(st.get_option("server.maxUploadSize")))
    upload = st.file_uploader("A trajectory from your own sampler (.npz)", type="npz", key=state.key("upload"),
                              max_upload_size=limit_mb,
                              help=f"Up to {limit_mb} MB here (the server's `server.maxUploadSize`; "
                                   f"`ebmviz.load_trajectory` reads up to {MAX_FILE_BYTES >> 20} MB in a notebook). "
                                   "np.savez(path, frames=…, energy=…, …): the README's “Chains from any sampler” "
                                   "has the layout and a PyTorch example; ebmviz's own NPZ export opens too")
    if upload is None:
        state.forget("opened")
        state.rewind()
        st.caption("Arrays: `frames` (F, B, C, H, W) or (F, B, H, W), uint8 0…255 or float in `range` [lo, hi] "
                   "(default [−1, 1]); optional `energy` (T+1, B), `grad_norm`, `step_norm`, `accept` (T, B) and "
                   f"`frame_steps` (F,); up to {limit_mb} MB. Plain arrays only: pickled objects are refused, never "
                   "loaded.")
        return
    raw = upload.getvalue()
    if state.opened is None or state.opened.digest != hashlib.sha256(raw).hexdigest()[:16]:
        with st.spinner("Reading the file…"):
            state.opened = open_file(raw, upload.name)
        state.rewind()
    opened: Opened = state.opened
    if opened.loaded is None:
        st.error(f"**{opened.name}** cannot be opened: {opened.error}", icon=":material/error:")
        return
    _summary(opened)
    _player(state, opened)
    _traces(state, opened)
    _diagnostics(opened.loaded)


def _summary(opened: Opened) -> None:
    loaded = opened.loaded
    traj = loaded.trajectory
    f, b, c, h, w = traj.frames.shape
    held = [n for n in PER_STEP if getattr(traj, n) is not None]
    lo, hi = loaded.source_range
    st.markdown(f"**{opened.name}**: {b} chain(s) of {h}×{w} {'grey' if c == 1 else 'RGB'} images, {f} frames over "
                f"{loaded.n_steps} steps, pixels read from [{lo:g}, {hi:g}]; per step: "
                f"{', '.join(held) if held else 'nothing (frames only)'}.")
    if loaded.notes:
        st.caption("Read with these assumptions:\n" + "\n".join(f"- {n}" for n in loaded.notes))
    stopped = traj.diverged_at >= 0
    if stopped.any():
        st.warning(f"{int(stopped.sum())} of {b} chains met a non-finite value (first at step "
                   f"{int(traj.diverged_at[stopped].min())}): they are marked as stopped, and the ESS and R-hat below "
                   "leave them out.", icon=":material/warning:")


def _player(state: ChainFileState, opened: Opened) -> None:
    loaded = opened.loaded
    traj = loaded.trajectory
    n_frames, n_chains = traj.frames.shape[:2]
    side = max(traj.frames.shape[-2:])
    scale = max(1, min(3, 96 // side))
    player = Player(state, Recorded(n_frames))
    pace = player.controls_and_pace()

    def draw(index: int, out: FrameView) -> None:
        step = int(traj.frame_steps[index])
        where = "playing" if out.playing else ("last frame" if index == n_frames - 1 else "paused")
        stopped = int(((traj.diverged_at >= 0) & (traj.diverged_at <= step)).sum())
        out.status.markdown(f"**Step {step} / {loaded.n_steps}** · frame {index + 1} of {n_frames} · {where} · "
                            f"{100 * opened.pixels.saturation[index]:.1f}% of pixels saturated"
                            + (f" · {stopped} chain(s) stopped" if stopped else ""))
        shown = traj.frames[index][:MAX_SHOWN]
        out.picture.image(labelled_grid(shown, _labels(traj, step, len(shown)), ncol=8, scale=scale,
                                        font_px=grid_font_px()),
                          caption=None if n_chains <= MAX_SHOWN else f"the first {MAX_SHOWN} of {n_chains} chains")

    player.show(draw, scrub_label="Recorded frame", frame_seconds=pace)


def _labels(traj, step: int, n: int) -> list[str]:
    """"chain i" with its energy at ``step`` when the file has it, and "stopped" past its divergence."""
    labels = []
    for i in range(n):
        e = traj.energy[step, i] if traj.energy is not None and step < len(traj.energy) else np.nan
        text = f"{i}: E {e:.3g}" if np.isfinite(e) else f"chain {i}"
        labels.append(f"{i}: stopped" if 0 <= traj.diverged_at[i] <= step else text)
    return labels


def _traces(state: ChainFileState, opened: Opened) -> None:
    """``traces_figure`` with the per-frame rows when the file has energy and both norms; else the medians of what it
    has, and the per-frame rows as lines."""
    traj, loaded = opened.loaded.trajectory, opened.loaded
    n_chains = traj.frames.shape[1]
    chain = st.number_input("Highlight chain", 0, n_chains - 1, 0, key=state.key("chain"),
                            help="Drawn over the median and the 10–90% band of the chains")
    low, high, mean_distance, duplicates = (opened.pixels.low, opened.pixels.high, *opened.diversity)
    if n_chains > MAX_DIVERSITY_CHAINS:
        st.caption(f"Diversity compares the first {MAX_DIVERSITY_CHAINS} of the {n_chains:,} chains.")
    missing = [n for n in ("energy", "grad_norm", "step_norm") if getattr(traj, n) is None]
    if not missing and loaded.n_steps <= MAX_TRACE_STEPS:
        st.plotly_chart(traces_figure(traj.energy, traj.grad_norm, traj.step_norm, traj.accept, selected=chain,
                                      n_steps=loaded.n_steps, frame_steps=traj.frame_steps, pixel_low=low,
                                      pixel_high=high, saturated=opened.pixels.per_chain,
                                      mean_distance=mean_distance, near_duplicates=duplicates),
                        width="stretch", key=state.key("traces"))
        return
    for name in (n for n in PER_STEP if getattr(traj, n) is not None):
        values = getattr(traj, name)
        first = 1 if name in ("step_norm", "accept") else 0  # ‖x_{t+1} − x_t‖ and the accept of step t + 1
        rows = np.unique(np.linspace(0, len(values) - 1, min(len(values), DRAWN_STEPS)).round().astype(int))
        st.plotly_chart(line_figure(first + rows, {"median of the chains": np.nanmedian(values, axis=1)[rows],
                                                   f"chain {chain}": values[rows, chain]}, "step t", PER_STEP[name]),
                        width="stretch", key=state.key(f"trace_{name}"))
    st.plotly_chart(line_figure(traj.frame_steps, {"saturated share": opened.pixels.saturation,
                                                   "1st percentile": low, "99th percentile": high,
                                                   "mean distance between chains": mean_distance},
                                "step of the frame", "pixels in [−1, 1]"),
                    width="stretch", key=state.key("health"))
    why = [f"the file has no {' or '.join(missing)}"] if missing else []
    if loaded.n_steps > MAX_TRACE_STEPS:
        why.append(f"{loaded.n_steps:,} steps are drawn at {DRAWN_STEPS:,} of them")
    st.caption(f"Each per-step array drawn alone: {'; '.join(why)}. Near-duplicate chains in the last frame: "
               f"{int(duplicates[-1])}.")


def _diagnostics(loaded: LoadedTrajectory) -> None:
    """ESS and R-hat of the energy's second half over the chains that never stopped (the Langevin page's numbers)."""
    traj, energy = loaded.trajectory, loaded.measured_energy
    alive = traj.diverged_at < 0
    if energy is None or not alive.any():
        st.caption("No ESS or R-hat: " + ("the file has no energy." if energy is None else "every chain stopped."))
        return
    d = second_half_diagnostics(energy[:, alive], None if traj.accept is None else traj.accept[:, alive])
    m = st.columns(3)
    m[0].metric("ESS of the energy", "—" if not np.isfinite(d.ess) else f"{d.ess:.0f}",
                help=f"Effective independent draws among the {d.steps} × {d.chains} energies of the second half")
    m[1].metric("R-hat of the energy", "—" if not np.isfinite(d.rhat) else f"{d.rhat:.3f}",
                help="Split R-hat across chains: above about 1.01 the chains have not settled to one distribution")
    m[2].metric("Acceptance", "—" if d.acceptance is None else f"{d.acceptance:.2f}",
                help="The file's `accept`, over the same steps")
