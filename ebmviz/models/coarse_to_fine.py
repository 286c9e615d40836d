"""Coarse-to-fine EBM (CF-EBM; Zhao, Xie & Li, ICLR 2021) on a mean-pooled pyramid 7 → 14 → 28.

Stage s ∈ {0, 1, 2} models images of side R_s = 7·2^s with the energy E_s (p_s ∝ exp(−E_s)). One
network holds every stage's blocks; stage s uses the bottom block of its own resolution and every
coarser block above it:

    stage 0:  E_0(x) = head(in_7(x))                                      x: (B, 1, 7, 7)
    stage s:  h = Expand(x) = β·Primal(x) + (1−β)·Fade(x)                 x: (B, 1, R_s, R_s)
              Primal(x) = down_{R_s}(in_{R_s}(x))      (the new, randomly initialised block)
              Fade(x)   = in_{R_{s−1}}(pool(x))        (the previous stage's first layer)
              E_s(x) = head(down_{14}(… h …))          (the remaining coarser blocks)

``pool`` is 2×2 mean pooling, so at β = 0 the expanded energy is exactly the previous one on the
pooled image, E_s(x) = E_{s−1}(pool(x)): growing the net does not disturb what was learnt. β ramps
0 → 1 during a transition. Sampling a stage starts from the previous stage's samples, upsampled
(nearest) plus noise, so a full sample is the cascade 7 → 14 → 28 (``sample_cascade``).

The module also carries training snapshots (its parameters at chosen iterations, with stage, β
and iteration) so the app can replay how the model grew. ``model.draw`` is the cascade with the
settings the checkpoint ships (``meta["cascade"]``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ebmviz.models.base import ContrastiveLoss, Model, contrastive_loss
from ebmviz.sampling import LangevinConfig, Trajectory, langevin

SIDES = (7, 14, 28)  # R_s for stage s = 0, 1, 2


def pool(x: torch.Tensor) -> torch.Tensor:
    """2×2 mean pooling (B, 1, R, R) -> (B, 1, R/2, R/2): the pyramid's Down operator."""
    return F.avg_pool2d(x, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest ×2 upsampling (B, 1, R, R) -> (B, 1, 2R, 2R); ``pool(upsample(x)) == x``."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """28×28 images -> [x^(0) 7×7, x^(1) 14×14, x^(2) 28×28] by repeated mean pooling."""
    levels = [x]
    while levels[0].shape[-1] > SIDES[0]:
        levels.insert(0, pool(levels[0]))
    return levels


class ResDown(nn.Module):
    """Residual block that halves the side: (B, c_in, R, R) -> (B, c_out, R/2, R/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        # strided first conv: the full-resolution side costs one cheap conv (Langevin runs it a lot)
        self.main = nn.Sequential(nn.Conv2d(c_in, c_out, 2, stride=2), nn.SiLU(),
                                  nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (self.main(h) + self.skip(h)) / math.sqrt(2.0)


@dataclass(frozen=True)
class CoarseToFineConfig:
    channels: tuple[int, int, int] = (12, 24, 48)  # feature channels at sides 28, 14, 7
    n_snapshots: int = 0  # training snapshots stored in the module

    def __post_init__(self):  # JSON metadata gives lists; keep the config hashable
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


@dataclass(frozen=True)
class Snapshot:
    """A training snapshot stored in the model: its parameters as they were at ``iteration``."""

    index: int  # row in ``snapshot_params``
    stage: int  # 0, 1, 2 ↔ 7, 14, 28 px
    beta: float  # fade weight β of that stage
    iteration: int  # updates done when it was taken


# --------------------------------------------------------------------- cascade settings and result
@dataclass(frozen=True)
class CascadeConfig:
    """Settings of a 7 → 14 → 28 cascade; each stage is a Langevin run (``LangevinConfig``)."""

    steps: tuple[int, int, int] = (30, 30, 30)  # K_s, Langevin steps at 7, 14, 28 px
    step_size: float = 10.0  # s of every stage
    noise_std: float = 0.005  # σ of every stage
    grad_clip: float | None = 0.03
    handoff_noise: float = 0.05  # std of the Gaussian noise added to upsampled samples
    record_every: int = 2

    def __post_init__(self):
        object.__setattr__(self, "steps", tuple(int(k) for k in self.steps))
        if len(self.steps) != 3 or min(self.steps) < 0:
            raise ValueError(f"steps must be three non-negative integers, got {self.steps!r}")

    def stage_config(self, stage: int) -> LangevinConfig:
        return LangevinConfig(n_steps=self.steps[stage], step_size=self.step_size,
                              noise_std=self.noise_std, grad_clip=self.grad_clip,
                              record_every=self.record_every)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = list(self.steps)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CascadeConfig:
        return cls(**d)


@dataclass(frozen=True)
class Cascade:
    """One cascade run of n chains. Trajectory frames stay at each stage's own side."""

    final: np.ndarray  # (n, 1, R_top, R_top) float32 finished samples in [-1, 1]
    trajectories: list[Trajectory]  # one per stage run, coarse first
    handoffs: list[tuple[np.ndarray, np.ndarray]]  # per hand-off: (coarse end (n,1,R,R), fine start (n,1,2R,2R))
    grad_evals: int  # energy-gradient evaluations per chain, Σ_s K_s
    beta: float  # β of the top stage



class CoarseToFineEBM(Model):
    """Energies E_0, E_1, E_2 of 7×7, 14×14 and 28×28 images in [-1, 1], sharing one network.

    ``model(x)`` is the energy of the stage whose side matches x (B,); the current top stage
    uses ``model.beta``, lower stages β = 1. ``stage_energy(s, β)`` gives any stage at any β.
    """

    kind = "coarse_to_fine"
    Config = CoarseToFineConfig
    title = "Coarse-to-fine EBM, 7 → 14 → 28 px"
    draw_key = "cascade"
    Draws = Cascade
    DrawConfig = CascadeConfig
    draw_default = CascadeConfig()

    def __init__(self, config: CoarseToFineConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        config = self.config
        c28, c14, c7 = config.channels
        # index i ↔ side SIDES[2 − i]: in_[0] reads 28×28, in_[1] 14×14, in_[2] 7×7 (1×1 convs)
        self.inputs = nn.ModuleList([nn.Conv2d(1, c, 1) for c in (c28, c14, c7)])
        self.downs = nn.ModuleList([ResDown(c28, c14), ResDown(c14, c7)])  # 28→14, 14→7
        self.head = nn.Sequential(nn.Conv2d(c7, c7, 3, padding=1), nn.SiLU(), nn.Flatten(),
                                  nn.Linear(c7 * 49, 1))
        # (stage, β) the model is at; a buffer so checkpoints carry it
        self.register_buffer("growth", torch.tensor([0.0, 1.0]))
        n_params = sum(p.numel() for p in self.parameters())
        # snapshots: flat parameter vectors (S, P) and (stage, β, iteration) rows, iteration −1 = unused
        self.register_buffer("snapshot_params", torch.zeros(config.n_snapshots, n_params))
        self.register_buffer("snapshot_info", torch.full((config.n_snapshots, 3), -1.0))

    # ----------------------------------------------------------------- growth state
    @property
    def stage(self) -> int:
        return int(self.growth[0])

    @property
    def beta(self) -> float:
        return float(self.growth[1])

    def set_growth(self, stage: int, beta: float) -> None:
        if stage not in (0, 1, 2) or not 0.0 <= beta <= 1.0:
            raise ValueError(f"stage must be 0, 1 or 2 and β in [0, 1], got {stage}, {beta}")
        self.growth.copy_(torch.tensor([float(stage), 1.0 if stage == 0 else float(beta)]))

    # ----------------------------------------------------------------- energies
    def energy(self, x: torch.Tensor, stage: int, beta: float = 1.0) -> torch.Tensor:
        """E_stage(x) at fade weight β: x (B, 1, R_s, R_s) -> (B,)."""
        side = SIDES[stage]
        if x.shape[-1] != side:
            raise ValueError(f"stage {stage} takes {side}×{side} images, got {tuple(x.shape[-2:])}")
        level = 2 - stage  # index into inputs; downs[level] is this stage's new bottom block
        if stage == 0:
            h = self.inputs[2](x)
        else:
            h = None
            if beta > 0.0:  # Primal: the new bottom block on the full-resolution input
                h = beta * self.downs[level](self.inputs[level](x))
            if beta < 1.0:  # Fade: the previous stage's first layer on the pooled input
                fade = (1.0 - beta) * self.inputs[level + 1](pool(x))
                h = fade if h is None else h + fade
            for block in self.downs[level + 1:]:
                h = block(h)
        return self.head(h).squeeze(-1)

    def expand_parts(self, x: torch.Tensor, stage: int, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image norms (B,) of the two terms of Expand(x): ‖β·Primal(x)‖ and ‖(1−β)·Fade(x)‖."""
        if stage == 0:
            raise ValueError("stage 0 has no Expand block")
        level = 2 - stage
        primal = beta * self.downs[level](self.inputs[level](x))
        fade = (1.0 - beta) * self.inputs[level + 1](pool(x))
        return primal.flatten(1).norm(dim=1), fade.flatten(1).norm(dim=1)

    def stage_energy(self, stage: int, beta: float = 1.0):
        """E_stage at β as a plain energy callable for ``ebmviz.sampling``."""
        return lambda x: self.energy(x, stage, beta)

    def draw(self, n: int, seed: int = 0, config: CascadeConfig | None = None) -> Cascade:
        """n samples by the cascade 7 → … → the grown stage from noise (``sample_cascade``, shipped settings)."""
        return sample_cascade(self, n, seed, config)

    def loss(self, real: torch.Tensor, fake: torch.Tensor, stage: int, beta: float, alpha: float) -> ContrastiveLoss:
        """The training update of E_stage at β on data x⁺ and cascade samples x⁻, both (B, 1, R_s, R_s)."""
        return contrastive_loss(self.energy(real, stage, beta), self.energy(fake.detach(), stage, beta), alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energy of x at the stage its side names; (B, 1, R, R) with R ∈ {7, 14, 28} -> (B,)."""
        if x.shape[-1] not in SIDES:
            raise ValueError(f"CF-EBM takes sides {SIDES}, got {tuple(x.shape[-2:])}")
        stage = SIDES.index(x.shape[-1])
        if stage > self.stage:
            raise ValueError(f"the model has grown to stage {self.stage} only ({SIDES[self.stage]} px)")
        return self.energy(x, stage, self.beta if stage == self.stage else 1.0)

    # ----------------------------------------------------------------- snapshots
    def _param_vector(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])

    def record_snapshot(self, index: int, iteration: int) -> None:
        """Store the current parameters, stage and β as snapshot ``index``."""
        self.snapshot_params[index] = self._param_vector()
        self.snapshot_info[index] = torch.tensor([self.stage, self.beta, float(iteration)])

    def snapshots(self) -> list[Snapshot]:
        """Recorded snapshots in the order they were taken."""
        rows = [Snapshot(index=i, stage=int(s), beta=float(b), iteration=int(it))
                for i, (s, b, it) in enumerate(self.snapshot_info.tolist()) if it >= 0]
        return sorted(rows, key=lambda r: r.iteration)

    def snapshot_model(self, index: int) -> CoarseToFineEBM:
        """A copy of the model as it was at snapshot ``index`` (no snapshots of its own)."""
        stage, beta, it = self.snapshot_info[index].tolist()
        if it < 0:
            raise ValueError(f"snapshot {index} was never recorded")
        copy = CoarseToFineEBM(replace(self.config, n_snapshots=0), self.meta).to(self.growth.device)
        torch.nn.utils.vector_to_parameters(self.snapshot_params[index].clone(), copy.parameters())
        copy.set_growth(int(stage), beta)
        return copy.eval().requires_grad_(False)


def handoff(x: torch.Tensor, noise_std: float, gen: torch.Generator) -> torch.Tensor:
    """Smooth MCMC initialisation: previous-stage samples, upsampled, plus N(0, noise_std²), in [-1, 1]."""
    up = upsample(x)
    noise = torch.randn(up.shape, generator=gen).to(up.device)
    return (up + noise_std * noise).clamp(-1.0, 1.0)


def sample_cascade(model: CoarseToFineEBM, n: int, seed: int = 0, config: CascadeConfig | None = None,
                   top: int | None = None, beta: float | None = None,
                   x0: torch.Tensor | None = None) -> Cascade:
    """Sample n images by the cascade 7 → … → R_top, from U(−1, 1) noise at 7×7.

    ``config`` defaults to the checkpoint's settings (``model.draw_config()``), ``top`` to the
    model's stage and ``beta`` (of the top stage) to the model's β. ``x0`` (n, 1, 7, 7)
    replaces the noise start.
    """
    config = model.draw_config() if config is None else config
    top = model.stage if top is None else top
    beta = (model.beta if top == model.stage else 1.0) if beta is None else beta
    device = model.device
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 7, 7, generator=gen) * 2 - 1 if x0 is None else x0.cpu()
    x = x.to(device)
    trajectories, handoffs = [], []
    for stage in range(top + 1):
        if stage > 0:
            coarse = x
            x = handoff(coarse, config.handoff_noise, gen)
            handoffs.append((coarse.cpu().numpy(), x.cpu().numpy()))
        energy = model.stage_energy(stage, beta if stage == top else 1.0)
        traj = langevin(energy, x, config.stage_config(stage), seed=seed * 7 + stage)
        trajectories.append(traj)
        x = torch.from_numpy(traj.final).to(device)
    return Cascade(final=x.cpu().numpy(), trajectories=trajectories, handoffs=handoffs,
                   grad_evals=sum(config.steps[: top + 1]), beta=beta)
