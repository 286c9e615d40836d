"""Langevin dynamics, unadjusted (ULA) or Metropolis-adjusted (MALA), as a step generator.

Convention: an energy is any callable ``energy(x) -> (B,)`` tensor and ``p(x) ∝ exp(-E(x))``.

The update is the decoupled form used by image EBMs (Du & Mordatch 2019; Nijkamp et al. 2020):

    x_{t+1} = x_t − s·g(x_t) + σ·ξ_t,   ξ_t ~ N(0, I),   g = clip(∇E)

with step size ``s`` and noise ``σ`` set separately. Such a chain behaves like exact Langevin on the
tempered density exp(−E/T) with the *effective temperature* T = σ²/(2s); ``at_temperature`` picks σ
for a wanted T (T = 1 is exact unadjusted Langevin on exp(−E)). MALA adds a Metropolis–Hastings
accept/reject against exp(−E/T) so that the chain is exact for that tempered target.

With ``clamp`` the states stay in a box. ULA clamps each update (projected Langevin, as image EBMs do). MALA
targets the tempered density restricted to the box and *reflects* its proposal at the box's walls: the
Gaussian proposal folded back into the box, whose density (a sum over the mirror images, ``reflected_log_q``)
enters the Metropolis–Hastings ratio. Rejecting every proposal that leaves the box would also be exact, but on
images it never moves: MNIST backgrounds sit exactly at −1, so nearly every proposal has some pixel outside.

``langevin_steps`` is the streaming form (one ``Step`` of device tensors per step, no host sync);
``ebmviz.sampling.langevin`` consumes it into a numpy ``Trajectory``; ``sample`` returns the final state
only (for training). A chain that meets a non-finite value stops, keeps its last finite state and is
reported in ``diverged_at``; nothing raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ebmviz.sampling.chains import Energy, Step, energy_and_grad, per_chain, per_chain_norm
from ebmviz.settings import JsonSettings, check_box, check_count, check_positive


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

    @property
    def grad_evals_per_step(self) -> int:
        """Energy gradients per update: one (MALA reuses the accepted proposal's)."""
        return 1

    def validate(self) -> None:
        """Raise ``ValueError`` with a readable reason when a field is out of range."""
        check_count("n_steps", self.n_steps)
        check_positive("step_size", self.step_size)
        if not (self.noise_std >= 0 and math.isfinite(self.noise_std)):
            raise ValueError(f"noise_std must be ≥ 0 and finite, got {self.noise_std!r}")
        if self.metropolis and self.noise_std == 0:
            raise ValueError("MALA needs noise_std > 0 (the proposal must be a density)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip!r}")
        check_box(self.clamp)
        check_count("record_every", self.record_every, 1)



def reflect(z: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Fold ``z`` into [lo, hi] by reflecting at the walls (as often as needed): the mirror of a point past a wall."""
    w = hi - lo
    u = torch.remainder(z - lo, 2 * w)  # in [0, 2w)
    return lo + torch.where(u <= w, u, 2 * w - u)


def reflected_log_q(y: torch.Tensor, mean: torch.Tensor, sigma: float | torch.Tensor, lo: float, hi: float
                    ) -> torch.Tensor:
    """(B,) log-density of y (B, …) in [lo, hi] under the reflected Gaussian proposal ``reflect(mean + σ·ξ)``.

    A point y has the preimages y + 2wn and 2·lo − y + 2wn (w = hi − lo, n ∈ ℤ), so per coordinate
    q(y) = Σ_n [φ_σ(y + 2wn − m) + φ_σ(2·lo − y + 2wn − m)]. Each family is summed over the preimages within
    12σ of the mean m, wherever m lies (images further away add less than e⁻⁷² each); the Gaussian's constant is
    left out (it cancels in the MH ratio). For σ > 2w the proposal is uniform on the box to within 3·10⁻⁹ (its
    first Fourier term is e^{−(πσ/w)²/2}), and a constant is returned. ``sigma`` is a number or (B,) per chain.
    """
    w = hi - lo
    top = float(sigma.max()) if isinstance(sigma, torch.Tensor) else sigma
    if top > 2 * w and not isinstance(sigma, torch.Tensor):
        return torch.zeros(y.shape[0], device=y.device, dtype=y.dtype)
    n = math.ceil(12 * min(top, 2 * w) / (2 * w)) + 1
    shape = (-1,) + (1,) * y.dim()
    shifts = (2 * w * torch.arange(-n, n + 1, device=y.device, dtype=y.dtype)).view(shape)  # (2n+1, 1, …)
    images = []
    for family in (y, 2 * lo - y):  # the preimage of each family nearest the mean, and its neighbours
        nearest = family + 2 * w * torch.round((mean - family) / (2 * w))
        images.append(nearest.unsqueeze(0) + shifts)
    var = 2 * (sigma.view(1, -1, *([1] * (y.dim() - 1))) if isinstance(sigma, torch.Tensor) else sigma) ** 2
    log_phi = -((torch.cat(images) - mean.unsqueeze(0)) ** 2) / var  # (2(2n+1), B, …)
    log_q = torch.logsumexp(log_phi, dim=0).flatten(1).sum(1)
    if isinstance(sigma, torch.Tensor):  # chains whose proposal is uniform on the box: a constant
        log_q = torch.where(sigma > 2 * w, 0.0, log_q)
    return log_q


def per_chain_settings(step_size: torch.Tensor, noise_std: torch.Tensor, x0: torch.Tensor, metropolis: bool
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Check per-chain step sizes s (B,) and noises σ (B,) against x0 (B, ...) and return them on its device and dtype.

    Raises ``ValueError`` naming the problem: a length other than B, a step size that is not positive and finite, a
    noise that is negative or non-finite (or zero under MALA, whose proposal must be a density).
    """
    B = x0.shape[0]
    out = []
    for name, v in (("step_size", step_size), ("noise_std", noise_std)):
        v = torch.as_tensor(v, dtype=x0.dtype, device=x0.device).reshape(-1)
        if v.numel() != B:
            raise ValueError(f"per-chain {name} has {v.numel()} values for {B} chains")
        out.append(v)
    s, sigma = out
    if not bool((torch.isfinite(s) & (s > 0)).all()):
        raise ValueError("every per-chain step_size must be positive and finite")
    if not bool((torch.isfinite(sigma) & (sigma >= (1e-30 if metropolis else 0))).all()):
        raise ValueError("every per-chain noise_std must be finite and ≥ 0 (> 0 under MALA)")
    return s, sigma


class LangevinChains:
    """B chains of one Langevin run, split at the energy evaluation: ``points()`` says where E and ∇E are needed
    next, ``take(e, g)`` takes them there and makes the update. ``langevin_steps`` evaluates each point itself; a
    shared loop (``ebmviz.sampling.shared``) evaluates the points of many runs in one batch. The random numbers are
    drawn in the same order either way (the update's noise, then MALA's uniforms), so a run's chains do not depend
    on which others share its batch.

    ULA needs E, ∇E at the current x at every step. MALA needs them once at its start (that evaluation makes no
    step: ``take`` returns None) and then at each proposal, whose E and ∇E it keeps when it accepts.
    """

    def __init__(self, x0: torch.Tensor, config: LangevinConfig, seed: int = 0, *,
                 step_size: torch.Tensor | None = None, noise_std: torch.Tensor | None = None):
        config.validate()
        self.config = config
        s, sigma, T = config.step_size, config.noise_std, config.temperature
        if (step_size is None) != (noise_std is None):
            raise ValueError("per-chain step_size and noise_std come together")
        if step_size is not None:
            s, sigma = per_chain_settings(step_size, noise_std, x0, config.metropolis)
            T = sigma**2 / (2 * s)  # (B,)
        self.s, self.sigma, self.T = s, sigma, T
        self.vector = isinstance(s, torch.Tensor)
        self.s_x = per_chain(s, x0) if self.vector else s  # s and σ broadcast against the states (B, ...)
        self.sigma_x = per_chain(sigma, x0) if self.vector else sigma
        self.gen = torch.Generator(device=x0.device).manual_seed(int(seed))
        x = x0.detach().clone()
        self.x = x.clamp(*config.clamp) if config.clamp is not None else x
        B = x.shape[0]
        self.t = 0
        self.alive = torch.ones(B, dtype=torch.bool, device=x.device)
        self.diverged_at = torch.full((B,), -1, dtype=torch.long, device=x.device)
        self.e = self.g = self.gn = None  # MALA: E, ∇E and ‖∇E‖ at the current x, once evaluated
        self.on_cpu = x.device.type == "cpu"
        self._prop = self._mean_fwd = None  # MALA: the proposal whose E and ∇E were asked for, and its mean

    @property
    def done(self) -> bool:
        return self.t >= self.config.n_steps

    def _drift(self, grad: torch.Tensor) -> torch.Tensor:
        if self.config.grad_clip is not None:
            grad = grad.clamp(-self.config.grad_clip, self.config.grad_clip)
        return grad.mul(self.s_x)

    def _noisy(self, mean: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(mean.shape, generator=self.gen, device=mean.device, dtype=mean.dtype)
        return mean.addcmul(noise, self.sigma_x) if self.vector else mean.add(noise, alpha=self.sigma)

    def points(self) -> torch.Tensor:
        """(B, ...) where E and ∇E are needed next: the current x, or MALA's next proposal (drawing its noise)."""
        if not self.config.metropolis or self.e is None:
            return self.x
        if self._prop is None:
            self._mean_fwd = self.x - self._drift(self.g)
            prop = self._noisy(self._mean_fwd)
            self._prop = reflect(prop, *self.config.clamp) if self.config.clamp is not None else prop
        return self._prop

    def take(self, e: torch.Tensor, g: torch.Tensor) -> Step | None:
        """E (B,) and ∇E (B, ...) at ``points()``: make the next update and return its ``Step`` (None when the
        evaluation only started MALA)."""
        gn = per_chain_norm(g)
        if not self.config.metropolis:
            return self._ula(e, g, gn)
        if self.e is None:
            self.e, self.g, self.gn = e, g, gn
            return None
        return self._mala(e, g, gn)

    def _ula(self, e: torch.Tensor, g: torch.Tensor, gn: torch.Tensor) -> Step:
        x, cfg = self.x, self.config
        ok = self.alive & torch.isfinite(e) & torch.isfinite(gn)
        prop = self._noisy(x - self._drift(g))
        if cfg.clamp is not None:
            prop = prop.clamp_(*cfg.clamp)
        step_norm = per_chain_norm(prop - x)
        ok = ok & torch.isfinite(step_norm)
        # keep a stopped chain where it was; on the CPU, reading ``ok`` costs nothing, and skips this
        # full-size select (a tenth of the sampler's own work per step) while every chain is alive
        new_x = prop if self.on_cpu and bool(ok.all()) else torch.where(per_chain(ok, x), prop, x)
        return self._advance(new_x, ok, e, gn, torch.where(ok, step_norm, 0.0), None)

    def _mala(self, e_prop: torch.Tensor, g_prop: torch.Tensor, gn_prop: torch.Tensor) -> Step:
        x, cfg, sigma = self.x, self.config, self.sigma
        e_cur, g_cur, gn_cur, prop, mean_fwd = self.e, self.g, self.gn, self._prop, self._mean_fwd
        self._prop = self._mean_fwd = None
        ok = self.alive & torch.isfinite(e_cur) & torch.isfinite(gn_cur)
        # log q(x|x') − log q(x'|x), q(a|b) the proposal from b: N(b − s·g(b), σ²I), reflected into the box
        mean_bwd = prop - self._drift(g_prop)
        if cfg.clamp is None:
            log_q_bwd = -((x - mean_bwd) ** 2).flatten(1).sum(1) / (2 * sigma**2)
            log_q_fwd = -((prop - mean_fwd) ** 2).flatten(1).sum(1) / (2 * sigma**2)
        else:
            log_q_bwd = reflected_log_q(x, mean_bwd, sigma, *cfg.clamp)
            log_q_fwd = reflected_log_q(prop, mean_fwd, sigma, *cfg.clamp)
        log_alpha = -(e_prop - e_cur) / self.T + log_q_bwd - log_q_fwd
        u = torch.rand(x.shape[0], generator=self.gen, device=x.device, dtype=log_alpha.dtype)
        prop_ok = torch.isfinite(e_prop) & torch.isfinite(gn_prop) & torch.isfinite(log_alpha)
        # a non-finite proposal is simply rejected: MALA never diverges through it
        acc = ok & prop_ok & (torch.log(u) < log_alpha)
        new_x = torch.where(per_chain(acc, x), prop, x)
        self.e = torch.where(acc, e_prop, e_cur)
        self.g = torch.where(per_chain(acc, x), g_prop, g_cur)
        self.gn = torch.where(acc, gn_prop, gn_cur)
        return self._advance(new_x, ok, e_cur, gn_cur, per_chain_norm(new_x - x), acc.to(x.dtype))

    def _advance(self, new_x, ok, e_cur, gn_cur, step_norm, accept) -> Step:
        self.t += 1
        newly_dead = self.alive & ~ok
        self.diverged_at = torch.where(newly_dead, self.t - 1, self.diverged_at)
        self.alive = self.alive & ok
        self.x = new_x
        return Step(t=self.t, x=new_x, energy=e_cur, grad_norm=gn_cur, step_norm=step_norm, accept=accept,
                    alive=self.alive, diverged_at=self.diverged_at, temperature=self.T)


def langevin_steps(
    energy: Energy, x0: torch.Tensor, config: LangevinConfig, seed: int = 0, *,
    step_size: torch.Tensor | None = None, noise_std: torch.Tensor | None = None,
) -> Iterator[Step]:
    """Yield one ``LangevinStep`` per update, lazily (no host sync inside the loop).

    Args:
        energy: callable (B, ...) -> (B,), p ∝ exp(−E).
        x0: (B, ...) start states; not modified.
        config: a validated ``LangevinConfig``.
        seed: seeds the noise (and MALA's uniforms) on x0's device.
        step_size, noise_std: (B,) per-chain s and σ, given together, in place of the config's: chains with
            different settings share every forward and backward pass (a phase map's cells). Each chain b then
            targets its own T_b = σ_b²/(2·s_b), and the steps' ``temperature`` is that (B,) tensor.
    """
    chains = LangevinChains(x0, config, seed, step_size=step_size, noise_std=noise_std)
    while not chains.done:
        # Finiteness is read off per-chain norms (a norm is finite iff every entry is), which keeps the loop to a
        # few cheap (B,) ops on top of the network's forward and backward passes.
        step = chains.take(*energy_and_grad(energy, chains.points()))
        if step is not None:
            yield step
