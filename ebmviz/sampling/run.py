"""The collector every sampler shares: ``LiveRun`` pulls steps from a sampler's step generator and records them;
``langevin``, ``hmc`` and ``annealed`` run one to the end and return the ``Trajectory``.

Which generator runs is decided by the config's type: ``LangevinConfig`` (ULA / MALA), ``HMCConfig``,
``AnnealedConfig`` or ``JKOConfig`` (proximal particle steps).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from ebmviz.images import to_u8
from ebmviz.sampling.annealing import AnnealedConfig, annealed_steps
from ebmviz.sampling.chains import Energy, Step, Trajectory
from ebmviz.sampling.hmc import HMCConfig, hmc_steps
from ebmviz.sampling.jko import JKOConfig, jko_steps
from ebmviz.sampling.langevin_dynamics import LangevinConfig, langevin_steps
from ebmviz.sampling.sampler_process import ProcessSampler
from ebmviz.sampling.shared import SharedSampler

SamplerConfig = LangevinConfig | HMCConfig | AnnealedConfig | JKOConfig


def steps_for(energy: Energy, x0: torch.Tensor, config: SamplerConfig, seed: int = 0) -> Iterator[Step]:
    """The step generator that ``config`` asks for (HMC keeps the leapfrog paths of recorded updates when
    ``config.record_paths``)."""
    if isinstance(config, HMCConfig):
        every, last = config.record_every, config.n_steps
        keep = (lambda t: t % every == 0 or t == last) if config.record_paths else None
        return hmc_steps(energy, x0, config, seed, record_path=keep)
    if isinstance(config, AnnealedConfig):
        return annealed_steps(energy, x0, config, seed)
    if isinstance(config, JKOConfig):
        return jko_steps(energy, x0, config, seed)
    if isinstance(config, LangevinConfig):
        return langevin_steps(energy, x0, config, seed)
    raise TypeError(f"no sampler takes a {type(config).__name__}")


class LiveRun:
    """B chains advanced on demand, recording as they go: the collector behind ``langevin``.

    Each ``advance`` call pulls steps from ``langevin_steps`` and copies that chunk's diagnostics
    to the host once, so a UI can draw between chunks (Play / Pause / Step) without restarting
    the chain; ``trajectory()`` returns what ran so far. With ``sampler`` (a ``SharedSampler`` or ``ProcessSampler``
    of the same energy), a Langevin run's steps come from that shared loop, batched with other runs': the same chains
    to float rounding.
    """

    def __init__(self, energy: Energy, x0: torch.Tensor, config: SamplerConfig, seed: int = 0,
                 *, frame_format: str = "uint8", stop_on_error: bool = False,
                 sampler: SharedSampler | ProcessSampler | None = None):
        if frame_format not in ("uint8", "float32"):
            raise ValueError(f"frame_format must be 'uint8' or 'float32', got {frame_format!r}")
        config.validate()
        self.config, self._energy_fn = config, energy
        self._grab = to_u8 if frame_format == "uint8" else (lambda v: v.detach().float().cpu())
        x0 = x0.detach() if config.clamp is None else x0.detach().clamp(*config.clamp)
        # a Langevin run may take its steps from a loop shared with other runs on the same energy (one batch for all)
        shared = sampler is not None and isinstance(config, LangevinConfig)
        self._steps = sampler.steps(x0, config, seed) if shared else steps_for(energy, x0, config, seed)
        self.t, self.x = 0, x0
        self.frames: list[np.ndarray] = [self._grab(x0).numpy()]  # each (B, ...)
        self.frame_steps: list[int] = [0]
        self._rows: dict[str, list[torch.Tensor]] = {"energy": [], "grad_norm": [],
                                                     "step_norm": [], "accept": []}
        self.paths: list[np.ndarray] = []  # HMC: (L+1, B, ...) leapfrog path of each recorded update
        self.temperatures: list[float] = []  # T of each step run
        self._diverged = torch.full((x0.shape[0],), -1, dtype=torch.long)
        self._final_energy: np.ndarray | None = None
        self.record_every = config.record_every  # a player may record more often for slow motion (the last step
        #                                          is always recorded)
        # an energy that raises (a user's model on an input it cannot take): with ``stop_on_error`` the run ends
        # there and ``error`` says why, instead of the exception reaching the app
        self.stop_on_error, self.error = stop_on_error, None

    @property
    def done(self) -> bool:
        return self.t >= self.config.n_steps or self.error is not None

    def advance(self, max_steps: int | None = None, max_seconds: float | None = None) -> int:
        """Run up to ``max_steps`` steps (default: to the end) or for ``max_seconds``; return
        the number of steps run. Host syncs happen only at recorded frames and chunk ends."""
        start, ran, chunk = time.perf_counter(), 0, {k: [] for k in self._rows}
        while not self.done and (max_steps is None or ran < max_steps):
            try:
                st = next(self._steps)
            except Exception as exc:
                if not self.stop_on_error:
                    raise
                self.error = f"{type(exc).__name__}: {exc}"
                if self.frame_steps[-1] != self.t:  # the last state the energy took, on screen
                    self.frames.append(self._grab(self.x).numpy())
                    self.frame_steps.append(self.t)
                break
            ran += 1
            self.t, self.x, self._diverged = st.t, st.x, st.diverged_at
            chunk["energy"].append(st.energy)
            chunk["grad_norm"].append(st.grad_norm)
            chunk["step_norm"].append(st.step_norm)
            if st.accept is not None:
                chunk["accept"].append(st.accept)
            self.temperatures.append(st.temperature)
            if st.t % self.record_every == 0 or st.t == self.config.n_steps:
                self.frames.append(self._grab(st.x).numpy())
                self.frame_steps.append(st.t)
                if st.path is not None:
                    self.paths.append(st.path.detach().float().cpu().numpy())
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
        for k, rows in chunk.items():
            if rows:
                self._rows[k].append(torch.stack(rows).cpu())
        self._final_energy = None
        return ran

    @property
    def diverged_at(self) -> np.ndarray:
        return self._diverged.cpu().numpy()

    def rows(self, key: str) -> np.ndarray:
        """(t, B) per-step record so far: "energy", "grad_norm", "step_norm" or "accept"."""
        parts = self._rows[key]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.x.shape[0]), np.float32)

    def row(self, key: str, t: int) -> np.ndarray:
        """(B,) the record of step t + 1 alone (``rows(key)[t]`` without joining every chunk: a live page calls this
        per frame)."""
        for part in self._rows[key]:
            if t < len(part):
                return part[t].numpy()
            t -= len(part)
        raise IndexError("no such step recorded yet")

    def mean(self, key: str, steps: int) -> float:
        """The mean of the first ``steps`` rows of ``key`` over steps and chains (e.g. the acceptance so far)."""
        total, count, left = 0.0, 0, steps
        for part in self._rows[key]:
            if left <= 0:
                break
            part = part[:left]
            total, count, left = total + float(part.sum()), count + part.numel(), left - len(part)
        return total / count if count else float("nan")

    def current_energy(self) -> np.ndarray:
        """(B,) E(x_t) of the current states (one forward pass, cached until the next step)."""
        if self._final_energy is None:
            try:
                with torch.no_grad():
                    self._final_energy = self._energy_fn(self.x).detach().float().cpu().numpy()
            except Exception:
                if self.error is None:
                    raise
                self._final_energy = np.full(self.x.shape[0], np.nan, np.float32)  # the state the energy refused
        return self._final_energy

    def trajectory(self) -> Trajectory:
        """What ran so far as a ``Trajectory`` (``energy`` has t + 1 rows)."""
        return Trajectory(
            final=self.x.detach().float().cpu().numpy(),
            frames=np.stack(self.frames),
            frame_steps=np.asarray(self.frame_steps, dtype=np.int64),
            energy=np.concatenate([self.rows("energy"), self.current_energy()[None]]),
            grad_norm=self.rows("grad_norm"),
            step_norm=self.rows("step_norm"),
            accept=self.rows("accept") if self.adjusted else None,
            diverged_at=self.diverged_at,
            config=self.config,
            leapfrog=np.stack(self.paths) if self.paths else None,
            temperature=np.asarray(self.temperatures, dtype=np.float32),
        )

    @property
    def adjusted(self) -> bool:
        """Whether the sampler has an accept/reject step (MALA, HMC): then ``rows("accept")`` is its record."""
        return isinstance(self.config, HMCConfig) or bool(getattr(self.config, "metropolis", False))


def langevin(
    energy: Energy,
    x0: torch.Tensor,
    config: LangevinConfig,
    seed: int = 0,
    *,
    frame_format: str = "uint8",
) -> Trajectory:
    """Run ``config.n_steps`` Langevin updates from ``x0`` and return the recorded ``Trajectory``.

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states (images: (B, 1, 28, 28) in [-1, 1]).
        config: sampler settings; ``record_every`` thins the frames.
        seed: noise seed; same seed, config and x0 give the same frames.
        frame_format: "uint8" (images in [-1, 1]) or "float32" (any state space).
    """
    run = LiveRun(energy, x0, config, seed, frame_format=frame_format)
    run.advance()
    return run.trajectory()


def hmc(energy: Energy, x0: torch.Tensor, config: HMCConfig, seed: int = 0, *,
        frame_format: str = "uint8") -> Trajectory:
    """Run ``config.n_steps`` HMC updates from ``x0`` and return the recorded ``Trajectory`` (``accept`` holds
    each update's accept/reject; ``leapfrog`` the paths of recorded updates when ``config.record_paths``)."""
    run = LiveRun(energy, x0, config, seed, frame_format=frame_format)
    run.advance()
    return run.trajectory()


def annealed(energy: Energy, x0: torch.Tensor, config: AnnealedConfig, seed: int = 0, *,
             frame_format: str = "uint8") -> Trajectory:
    """Run Langevin down ``config``'s temperature ladder and return the ``Trajectory`` (``temperature`` (T,)
    holds each step's T)."""
    run = LiveRun(energy, x0, config, seed, frame_format=frame_format)
    run.advance()
    return run.trajectory()


def sample(energy: Energy, x0: torch.Tensor, config: SamplerConfig, seed: int = 0) -> torch.Tensor:
    """Final state only (B, ...), on x0's device; for training loops (records nothing)."""
    x = x0
    for st in steps_for(energy, x0, config, seed):
        x = st.x
    return x.detach()
