"""What the learning-dynamics page reads: the shipped FRAME runs paired by training set, one run's stored dynamics,
the nearest training digit of its particles, the few-shot GAN for contrast, and a FRAME model trained live.

Images are uint8 (n, 1, 28, 28) as the checkpoints store them; curves are ``learning_dynamics.Curves``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from ebmviz import checkpoints
from ebmviz.analysis.learning_dynamics import (
    Curves,
    Nearest,
    collapse_onset,
    nearest_training,
    snapshot_index as snapshot_index,
)
from ebmviz.app import cache
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.images import from_u8, to_u8
from ebmviz.models.frame import FLOWS, FRAME, FlowConfig, FlowLearner, FRAMEConfig, LearningRow

FLOW_TITLES = {"kl": "FRAME · KL flow (maximum likelihood)", "jko": "wFRAME · JKO flow (ebmviz's reconstruction)"}


def frame_runs() -> dict[int, dict[str, str]]:
    """The readable FRAME checkpoints by training set and flow: n_train (0: the full set) -> flow -> name
    (the first of each pair in name order)."""
    runs: dict[int, dict[str, str]] = {}
    for info in checkpoints.list_checkpoints():
        if info.error is None and info.kind == "frame":
            flow = (info.meta.get("flow") or {}).get("flow")
            if flow in FLOWS:
                runs.setdefault(int(info.meta.get("n_train") or 0), {}).setdefault(flow, info.name)
    return {n: runs[n] for n in sorted(runs)}


def few_shot_gan(n_train: int) -> str | None:
    """An EBGAN checkpoint trained on ``n_train`` digits (the few-shot contrast), or None."""
    for info in checkpoints.list_checkpoints():
        if info.error is None and info.kind == "ebgan" and info.meta.get("n_train") == n_train:
            return info.name
    return None


@dataclass(frozen=True)
class RunDynamics:
    """One shipped run, as the page shows it."""

    name: str
    flow: str
    curves: Curves
    onset: int | None  # where the energy gap leaves for good (``collapse_onset``), None when it holds
    snapshot_its: np.ndarray  # (S,) iterations of the stored particle snapshots
    snapshots: np.ndarray  # (S, n, 1, 28, 28) uint8
    train: np.ndarray  # (m, 1, 28, 28) uint8: the few-shot training digits (m = 0 for the full set)
    dataset: dict  # the checkpoint's record of its training data (name, split, source, n_images …)
    iterations: int  # parameter updates in the run
    minutes: float  # its wall time


@st.cache_data(show_spinner="Reading the run's dynamics…", max_entries=16)
def run_dynamics(name: str) -> RunDynamics:
    model: FRAME = cache.load_model(name, "cpu")
    meta = model.meta
    curves = Curves.from_history(meta.get("history") or [])
    its, images = model.snapshots()
    return RunDynamics(name=name, flow=meta["flow"]["flow"], curves=curves, onset=collapse_onset(curves),
                       snapshot_its=its, snapshots=images, train=to_u8(model.training_images()).numpy(),
                       dataset=meta.get("dataset") or {},
                       iterations=int(meta.get("iterations", its[-1] if len(its) else 0)),
                       minutes=float(meta.get("wall_time_s", 0)) / 60)


@st.cache_data(show_spinner=False, max_entries=64)
def nearest(images: np.ndarray, train: np.ndarray) -> Nearest:
    """``nearest_training`` on uint8 images."""
    return nearest_training(from_u8(images), from_u8(train))


@dataclass(frozen=True)
class GANRun:
    """The few-shot GAN: its generator's snapshots over training and its training digits."""

    name: str
    snapshot_its: np.ndarray
    snapshots: np.ndarray  # (S, n, 1, 28, 28) uint8, G at a fixed latent batch
    train: np.ndarray  # (m, 1, 28, 28) uint8, from the indices in its dataset record (m = 0 when this machine's
    # training split is not the one the indices refer to)
    iterations: int
    minutes: float


@st.cache_data(show_spinner="Reading the GAN's snapshots…", max_entries=4)
def gan_run(name: str) -> GANRun:
    model = cache.load_model(name, "cpu")
    meta = model.meta
    its, images = model.snapshots()
    record = meta.get("dataset") or {}
    idx = record.get("few_shot_indices") or []
    split, _, source = cache.load_data("mnist", "train")
    same_data = record.get("source") == source and record.get("n_images") == len(split)  # the indices mean the same
    train = split[np.array(idx, dtype=int)] if idx and same_data else np.zeros((0, 1, 28, 28), np.float32)
    return GANRun(name, its, images, to_u8(train), int(meta.get("iterations", 0)),
                  float(meta.get("wall_time_s", 0)) / 60)


# ------------------------------------------------------------------------------------------------ training live
@dataclass(frozen=True)
class LiveSpec:
    """Everything that determines a live run; a new spec starts a new run."""

    flow: str
    n_train: int  # the few-shot set of the shipped runs with this many digits
    iterations: int
    lr: float
    step: float  # δ (KL) or τ (JKO)
    penalty: float  # λ (JKO)
    seed: int
    frame_every: int = 5  # a particle frame every this many iterations
    n_particles: int = 64
    k_steps: int = 20

    def flow_config(self) -> FlowConfig:
        return FlowConfig(flow=self.flow, k_steps=self.k_steps, step=self.step, inner_steps=3, penalty=self.penalty)


@dataclass
class LiveTraining:
    """A FRAME model learning in this session; a ``Recording`` for the page's player (one frame per
    ``frame_every`` iterations: the first 16 particles)."""

    spec: LiveSpec
    learner: FlowLearner
    train: np.ndarray  # (m, 1, 28, 28) uint8, the digits it learns from
    rows: list[LearningRow] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # (16, 1, 28, 28) uint8 each
    frame_its: list[int] = field(default_factory=list)  # iteration of each frame
    failure: str | None = None  # why the run stopped early
    seconds: float = 0.0  # time spent training so far

    @classmethod
    def start(cls, spec: LiveSpec, train: np.ndarray) -> LiveTraining:
        """A fresh model (initialised from the seed) on ``train`` (m, 1, 28, 28) uint8."""
        with torch.random.fork_rng():  # the initial weights from the seed, without touching other sessions' RNG
            torch.manual_seed(spec.seed)
            model = FRAME(FRAMEConfig(n_snapshots=2, snapshot_size=1, keep_train=0))
        learner = FlowLearner(model, torch.from_numpy(from_u8(train)), spec.flow_config(),
                              torch.Generator().manual_seed(spec.seed), seed=spec.seed,
                              n_particles=spec.n_particles, batch_size=64, lr=spec.lr)
        live = cls(spec, learner, train)
        live._frame()
        return live

    def _frame(self) -> None:
        self.frames.append(to_u8(self.learner.particles[:16].detach().clamp(-1, 1)))
        self.frame_its.append(self.learner.iteration)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def done(self) -> bool:
        return self.failure is not None or self.learner.iteration >= self.spec.iterations

    def advance(self, max_seconds: float | None = None) -> None:
        """Train up to the next frame (or until ``max_seconds``, at least one iteration)."""
        t0 = time.monotonic()
        while not self.done:
            row = self.learner.step(measure_update=True)
            self.rows.append(row)
            if not np.isfinite([row.e_data, row.e_particles]).all() or not torch.isfinite(self.learner.particles).all():
                self.failure = (f"the energies became non-finite at iteration {row.iteration}: the run collapsed "
                                "(lower the learning rate or the step, or raise λ)")
            if self.failure is not None:  # no frame of non-finite particles
                break
            it = self.learner.iteration
            if it % self.spec.frame_every == 0 or self.done:
                self._frame()
                break
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                break
        self.seconds += time.monotonic() - t0

    def curves(self) -> Curves:
        return Curves.from_history([r.to_dict() for r in self.rows])

    def arrays(self) -> dict[str, np.ndarray]:
        """The run for export: particle frames with their iterations, and every logged curve."""
        curves = self.curves()
        return {"frame_iterations": np.array(self.frame_its), "particles": np.stack(self.frames),
                "curve_iteration": curves.iteration, **{f"curve_{k}": v for k, v in curves.values.items()}}


class LiveTrainingState(PlayerState):
    run = Slot(None)  # the LiveTraining of this session
    draws = Slot(0)  # frames drawn, for unique chart keys
