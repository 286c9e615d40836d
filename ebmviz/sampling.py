"""Langevin samplers (ULA and MALA) with per-step diagnostics.

Convention: an energy is any callable ``energy(x) -> (B,)`` tensor and ``p(x) ∝ exp(-E(x))``.

The update is the decoupled form used by image EBMs (Du & Mordatch 2019; Nijkamp et al. 2020):

    x_{t+1} = x_t − s·g(x_t) + σ·ξ_t,   ξ_t ~ N(0, I),   g = clip(∇E)

with step size ``s`` and noise ``σ`` set separately. Such a chain behaves like exact Langevin on the
tempered density exp(−E/T) with the *effective temperature* T = σ²/(2s); ``at_temperature`` picks σ
for a wanted T (T = 1 is exact unadjusted Langevin on exp(−E)). MALA adds a Metropolis–Hastings
accept/reject against exp(−E/T) so that the chain is exact for that tempered target; with ``clamp``
it targets the density restricted to the box (proposals that leave it are rejected).

``langevin_steps`` is the streaming form (one ``LangevinStep`` of device tensors per step, no host
sync); ``langevin`` consumes it into a numpy ``Trajectory``; ``sample`` returns the final state only
(for training). A chain that meets a non-finite value stops, keeps its last finite state and is
reported in ``diverged_at``; nothing raises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.images import to_u8
from ebmviz.settings import JsonSettings

Energy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LangevinConfig(JsonSettings):
    """Settings of one Langevin run. Frozen, so it is a cache key and a checkpoint field."""

    n_steps: int = 60  # K, number of updates; short-run image EBMs use 40–256
    step_size: float = 10.0  # s, multiplies the (clipped) energy gradient
    noise_std: float = 0.005  # σ, std of the Gaussian noise added per step
    metropolis: bool = False  # MALA: accept/reject each proposal against exp(−E/T)
    grad_clip: float | None = 0.03  # clamp each gradient entry to ±grad_clip (None: off)
    clamp: tuple[float, float] | None = (-1.0, 1.0)  # keep states in this box (None: off)
    record_every: int = 1  # keep a frame every k steps (the first and last are always kept)

    @classmethod
    def at_temperature(cls, step_size: float, T: float, **kwargs) -> LangevinConfig:
        """Config whose noise gives effective temperature ``T``: σ = sqrt(2·s·T)."""
        return cls(step_size=step_size, noise_std=math.sqrt(2.0 * step_size * T), **kwargs)

    @property
    def temperature(self) -> float:
        """Effective temperature T = σ²/(2s) of the decoupled update."""
        return self.noise_std**2 / (2.0 * self.step_size)

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        if not isinstance(self.n_steps, int) or self.n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer, got {self.n_steps!r}")
        if not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ValueError(f"step_size must be positive and finite, got {self.step_size!r}")
        if not (self.noise_std >= 0 and math.isfinite(self.noise_std)):
            raise ValueError(f"noise_std must be ≥ 0 and finite, got {self.noise_std!r}")
        if self.metropolis and self.noise_std == 0:
            raise ValueError("MALA needs noise_std > 0 (the proposal must be a density)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip!r}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise ValueError(f"clamp must be (low, high) with low < high, got {self.clamp!r}")
        if not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"record_every must be an integer ≥ 1, got {self.record_every!r}")


@dataclass(frozen=True)
class LangevinStep:
    """One step of the streaming sampler; tensors live on the sampling device (B = chains).

    ``x`` is the state *after* step ``t`` (1-based), ``energy`` is E(x_t) before the step,
    ``grad_norm`` ‖∇E(x_t)‖ before clipping, ``step_norm`` ‖x_{t} − x_{t−1}‖, ``accept`` the
    MALA acceptance (0/1, None for ULA), ``alive`` False once a chain has diverged.
    """

    t: int
    x: torch.Tensor  # (B, ...)
    energy: torch.Tensor  # (B,)
    grad_norm: torch.Tensor  # (B,)
    step_norm: torch.Tensor  # (B,)
    accept: torch.Tensor | None  # (B,) float 0/1
    alive: torch.Tensor  # (B,) bool
    diverged_at: torch.Tensor  # (B,) int64, -1 while finite


@dataclass(frozen=True)
class Trajectory:
    """A recorded run of B chains over T steps, as numpy arrays (cheap to cache and plot).

    ``frames`` are uint8 images (pixel = round((x+1)/2·255), for states in [-1, 1]) unless the run
    asked for float32 frames. F = number of recorded frames (x_0, every k-th step, and x_T).
    """

    final: np.ndarray  # (B, ...) float32, the last state
    frames: np.ndarray  # (F, B, ...) uint8 or float32
    frame_steps: np.ndarray  # (F,) int, step index of each frame
    energy: np.ndarray  # (T+1, B) E(x_0) … E(x_T)
    grad_norm: np.ndarray  # (T, B) ‖∇E(x_t)‖ (r_t of Nijkamp et al. 2020)
    step_norm: np.ndarray  # (T, B) ‖x_{t+1} − x_t‖
    accept: np.ndarray | None  # (T, B) MALA accept indicator, None for ULA
    diverged_at: np.ndarray  # (B,) step at which the chain stopped, −1 where finite
    config: LangevinConfig

    @property
    def n_diverged(self) -> int:
        return int((self.diverged_at >= 0).sum())

    @property
    def grad_evals(self) -> int:
        """Energy-gradient evaluations per chain: one per step run."""
        return int(self.grad_norm.shape[0])


def energy_and_grad(energy: Energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E(x) (B,) and ∇ₓE(x) (B, ...), detached. Works under ``torch.no_grad`` callers."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def _per_chain_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1)


def _bcast(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def langevin_steps(
    energy: Energy, x0: torch.Tensor, config: LangevinConfig, seed: int = 0
) -> Iterator[LangevinStep]:
    """Yield one ``LangevinStep`` per update, lazily (no host sync inside the loop).

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states; not modified.
        config: a validated ``LangevinConfig``.
        seed: seeds the noise (and MALA's uniforms) on x0's device.
    """
    config.validate()
    s, sigma, T = config.step_size, config.noise_std, config.temperature
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    x = x0.detach().clone()
    if config.clamp is not None:
        x = x.clamp(*config.clamp)
    B = x.shape[0]
    alive = torch.ones(B, dtype=torch.bool, device=x.device)
    diverged_at = torch.full((B,), -1, dtype=torch.long, device=x.device)
    e = g = gn = None  # E, ∇E and ‖∇E‖ at the current x, computed when a step needs them

    def drift(grad: torch.Tensor) -> torch.Tensor:
        if config.grad_clip is not None:
            grad = grad.clamp(-config.grad_clip, config.grad_clip)
        return grad.mul(s)

    # Finiteness is read off per-chain norms (a norm is finite iff every entry is), which keeps
    # the loop to a few cheap (B,) ops on top of the network's forward and backward passes.
    for t in range(1, config.n_steps + 1):
        if e is None:
            e, g = energy_and_grad(energy, x)
            gn = _per_chain_norm(g)
        e_cur, g_cur, gn_cur = e, g, gn
        ok = alive & torch.isfinite(e_cur) & torch.isfinite(gn_cur)
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        mean_fwd = x - drift(g_cur)
        prop = mean_fwd.add(noise, alpha=sigma)
        accept = None
        if config.metropolis:
            inside = torch.ones_like(ok)
            if config.clamp is not None:
                lo, hi = config.clamp
                inside = ((prop >= lo) & (prop <= hi)).flatten(1).all(dim=1)
                prop = prop.clamp(lo, hi)  # rejected anyway when it was outside
            e_prop, g_prop = energy_and_grad(energy, prop)
            gn_prop = _per_chain_norm(g_prop)
            # log q(x|x') − log q(x'|x) for q(a|b) = N(a; b − s·g(b), σ²I)
            mean_bwd = prop - drift(g_prop)
            log_q_bwd = -((x - mean_bwd) ** 2).flatten(1).sum(1) / (2 * sigma**2)
            log_q_fwd = -((prop - mean_fwd) ** 2).flatten(1).sum(1) / (2 * sigma**2)
            log_alpha = -(e_prop - e_cur) / T + log_q_bwd - log_q_fwd
            u = torch.rand(B, generator=gen, device=x.device, dtype=log_alpha.dtype)
            prop_ok = torch.isfinite(e_prop) & torch.isfinite(gn_prop) & torch.isfinite(log_alpha)
            # a non-finite proposal is simply rejected: MALA never diverges through it
            acc = ok & inside & prop_ok & (torch.log(u) < log_alpha)
            new_x = torch.where(_bcast(acc, x), prop, x)
            e = torch.where(acc, e_prop, e_cur)
            g = torch.where(_bcast(acc, x), g_prop, g_cur)
            gn = torch.where(acc, gn_prop, gn_cur)
            accept = acc.to(x.dtype)
            step_norm = _per_chain_norm(new_x - x)
        else:
            if config.clamp is not None:
                prop = prop.clamp_(*config.clamp)
            step_norm = _per_chain_norm(prop - x)
            ok = ok & torch.isfinite(step_norm)
            new_x = torch.where(_bcast(ok, x), prop, x)
            step_norm = torch.where(ok, step_norm, torch.zeros_like(step_norm))
        newly_dead = alive & ~ok
        diverged_at = torch.where(newly_dead, torch.full_like(diverged_at, t - 1), diverged_at)
        alive = alive & ok
        x = new_x
        if not config.metropolis:
            e = None  # the state moved: its energy is computed at the next step, if any
        yield LangevinStep(
            t=t,
            x=x,
            energy=e_cur,
            grad_norm=gn_cur,
            step_norm=step_norm,
            accept=accept,
            alive=alive,
            diverged_at=diverged_at,
        )


class LiveRun:
    """B chains advanced on demand, recording as they go: the collector behind ``langevin``.

    Each ``advance`` call pulls steps from ``langevin_steps`` and copies that chunk's diagnostics
    to the host once, so a UI can draw between chunks (Play / Pause / Step) without restarting
    the chain; ``trajectory()`` returns what ran so far.
    """

    def __init__(self, energy: Energy, x0: torch.Tensor, config: LangevinConfig, seed: int = 0,
                 *, frame_format: str = "uint8"):
        if frame_format not in ("uint8", "float32"):
            raise ValueError(f"frame_format must be 'uint8' or 'float32', got {frame_format!r}")
        config.validate()
        self.config, self._energy_fn = config, energy
        self._grab = to_u8 if frame_format == "uint8" else (lambda v: v.detach().float().cpu())
        x0 = x0.detach() if config.clamp is None else x0.detach().clamp(*config.clamp)
        self._steps = langevin_steps(energy, x0, config, seed)
        self.t, self.x = 0, x0
        self.frames: list[np.ndarray] = [self._grab(x0).numpy()]  # each (B, ...)
        self.frame_steps: list[int] = [0]
        self._rows: dict[str, list[torch.Tensor]] = {"energy": [], "grad_norm": [],
                                                     "step_norm": [], "accept": []}
        self._diverged = torch.full((x0.shape[0],), -1, dtype=torch.long)
        self._final_energy: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.t >= self.config.n_steps

    def advance(self, max_steps: int | None = None, max_seconds: float | None = None) -> int:
        """Run up to ``max_steps`` steps (default: to the end) or for ``max_seconds``; return
        the number of steps run. Host syncs happen only at recorded frames and chunk ends."""
        start, ran, chunk = time.perf_counter(), 0, {k: [] for k in self._rows}
        while not self.done and (max_steps is None or ran < max_steps):
            st = next(self._steps)
            ran += 1
            self.t, self.x, self._diverged = st.t, st.x, st.diverged_at
            chunk["energy"].append(st.energy)
            chunk["grad_norm"].append(st.grad_norm)
            chunk["step_norm"].append(st.step_norm)
            if st.accept is not None:
                chunk["accept"].append(st.accept)
            if st.t % self.config.record_every == 0 or st.t == self.config.n_steps:
                self.frames.append(self._grab(st.x).numpy())
                self.frame_steps.append(st.t)
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

    def current_energy(self) -> np.ndarray:
        """(B,) E(x_t) of the current states (one forward pass, cached until the next step)."""
        if self._final_energy is None:
            with torch.no_grad():
                self._final_energy = self._energy_fn(self.x).detach().float().cpu().numpy()
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
            accept=self.rows("accept") if self.config.metropolis else None,
            diverged_at=self.diverged_at,
            config=self.config,
        )


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


def sample(energy: Energy, x0: torch.Tensor, config: LangevinConfig, seed: int = 0) -> torch.Tensor:
    """Final state only (B, ...), on x0's device; for training loops (records nothing)."""
    x = x0
    for st in langevin_steps(energy, x0, config, seed):
        x = st.x
    return x.detach()


def annealed_langevin(
    energy_at: Callable[[torch.Tensor, float], torch.Tensor],
    x0: torch.Tensor,
    sigmas: list[float],
    step: float,
    seed: int = 0,
    *,
    record_every: int = 1,
    clamp: tuple[float, float] | None = (-1.0, 1.0),
) -> Trajectory:
    """Annealed Langevin (Song & Ermon 2019) on a family of energies E(·, σ): step t targets exp(−E(·, σ_t)),

        x_{t+1} = x_t − η_t ∇E(x_t, σ_t) + √(2η_t)·ξ_t,   η_t = step·σ_t²,

    so the step follows the energy's 1/σ² curvature. ``energy_at(x, σ)`` (B, ...) -> (B,); ``sigmas`` (T,) the
    level of each step (constant: plain Langevin at temperature 1). Records uint8 frames every ``record_every``
    steps; ``energy`` row t is E(x_t, σ_t) (the last row E(x_T, σ_T)). ``config`` holds the first step's
    settings. A chain that meets a non-finite value stops and is reported in ``diverged_at``.
    """
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be positive and finite, got {step!r}")
    T = len(sigmas)
    first = step * (sigmas[0] if T else 1.0) ** 2
    config = LangevinConfig(n_steps=T, step_size=first, noise_std=math.sqrt(2 * first), grad_clip=None,
                            clamp=clamp, record_every=record_every)
    config.validate()
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    x = x0.detach().clone() if clamp is None else x0.detach().clamp(*clamp)
    B = x.shape[0]
    alive = torch.ones(B, dtype=torch.bool, device=x.device)
    diverged_at = torch.full((B,), -1, dtype=torch.long, device=x.device)
    frames, frame_steps, rows = [to_u8(x).numpy()], [0], {"energy": [], "grad_norm": [], "step_norm": []}
    for t, sigma in enumerate(sigmas, start=1):
        e, g = energy_and_grad(lambda v, s=sigma: energy_at(v, s), x)
        gn = _per_chain_norm(g)
        eta = step * sigma**2
        prop = x - eta * g + math.sqrt(2 * eta) * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        if clamp is not None:
            prop = prop.clamp_(*clamp)
        sn = _per_chain_norm(prop - x)
        ok = alive & torch.isfinite(e) & torch.isfinite(gn) & torch.isfinite(sn)
        diverged_at = torch.where(alive & ~ok, torch.full_like(diverged_at, t - 1), diverged_at)
        alive = ok
        x = torch.where(_bcast(ok, x), prop, x)
        rows["energy"].append(e)
        rows["grad_norm"].append(gn)
        rows["step_norm"].append(torch.where(ok, sn, torch.zeros_like(sn)))
        if t % record_every == 0 or t == T:
            frames.append(to_u8(x).numpy())
            frame_steps.append(t)
    with torch.no_grad():
        last = energy_at(x, sigmas[-1] if T else 1.0).detach()

    def stack(key: str) -> np.ndarray:
        return torch.stack(rows[key]).float().cpu().numpy() if rows[key] else np.zeros((0, B), np.float32)

    return Trajectory(
        final=x.detach().float().cpu().numpy(), frames=np.stack(frames),
        frame_steps=np.asarray(frame_steps, dtype=np.int64),
        energy=np.concatenate([stack("energy"), last.float().cpu().numpy()[None]]),
        grad_norm=stack("grad_norm"), step_norm=stack("step_norm"), accept=None,
        diverged_at=diverged_at.cpu().numpy(), config=config)
