"""Deep FRAME and its particle flows (Xie et al. 2016; Cai, Wu, Li, Chen & Lin, "FRAME Revisited: An Interpretation
View Based on Particle Evolution", AAAI 2019).

The model is p_θ(x) = exp(f_θ(x))·q(x)/Z(θ) with a Gaussian reference q = N(0, s²I) and a ConvNet f_θ, so its
energy (p ∝ exp(−U)) is

    U_θ(x) = −f_θ(x) + ‖x‖²/(2s²)            (``model(x)``, shape (B,), for x (B, 1, 28, 28))

Learning moves a set of persistent particles and the parameters in turn. Two flows:
- **KL flow (FRAME, maximum likelihood):** K Langevin steps x ← x − δ·∇U(x) + √(2δ)·ξ on the particles, then
  θ ← θ − γ·∇_θ[mean U(data) − mean U(particles)].
- **JKO flow (wFRAME):** the paper's own update equations could not be recovered (checkpoints/README.md, FRAME);
  ebmviz's reconstruction takes K proximal particle steps (``ebmviz.sampling.jko``: gradient steps on
  U(y) + ‖y − x‖²/(2τ), then √(2τ)·ξ) and adds a transport penalty to the parameter step,
  λ·mean‖∇_x U(particles)‖², the one-step-Langevin form of λ·mean‖x^{k+1} − x^k‖² (``particle_loss``).

``FRAME`` stores the particles at regular iterations (``snapshots``) and, for few-shot runs, its training digits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ebmviz.images import from_u8, to_u8
from ebmviz.models.base import Model
from ebmviz.models.nets import ConvEnergyNet
from ebmviz.models.snapshots import SnapshotSlots
from ebmviz.sampling import JKOConfig, LangevinConfig, SamplerConfig, steps_for

FLOWS = ("kl", "jko")


@dataclass(frozen=True)
class FRAMEConfig:
    width: int = 32  # channels of f_θ's second conv (``ConvEnergyNet``)
    hidden: int = 64  # hidden units of f_θ's head
    ref_std: float = 1.0  # s, the reference q = N(0, s²I)
    n_snapshots: int = 40  # slots for the particles over training
    snapshot_size: int = 32  # particles per snapshot
    keep_train: int = 20  # training digits stored with a few-shot run (0: none)


@dataclass(frozen=True)
class FlowConfig:
    """One flow's particle and parameter updates."""

    flow: str = "kl"  # "kl" (FRAME) or "jko" (wFRAME, ebmviz's reconstruction)
    k_steps: int = 20  # K particle steps per parameter update
    step: float = 0.01  # δ of the Langevin step (KL) or τ of the proximal step (JKO)
    inner_steps: int = 3  # JKO: gradient steps toward the proximal point
    penalty: float = 0.1  # JKO: λ of the transport penalty mean‖∇_x U(particles)‖²

    def particle_config(self) -> SamplerConfig:
        """The particle update as a sampler config: Langevin at T = 1 (KL) or proximal JKO steps."""
        if self.flow not in FLOWS:
            raise ValueError(f"unknown flow {self.flow!r}; one of {FLOWS}")
        if self.flow == "jko":
            return JKOConfig(n_steps=self.k_steps, tau=self.step, inner_steps=self.inner_steps)
        return LangevinConfig.at_temperature(self.step, 1.0, n_steps=self.k_steps, grad_clip=None, clamp=None)


@dataclass(frozen=True)
class ParameterTerms:
    """One parameter update's terms; ``loss`` is what the optimiser minimises."""

    loss: torch.Tensor
    e_data: torch.Tensor  # mean U(data)
    e_particles: torch.Tensor  # mean U(particles)
    penalty: torch.Tensor  # mean ‖∇_x U(particles)‖² (0 for the KL flow's loss, but logged)

    @property
    def gap(self) -> float:
        """mean U(particles) − mean U(data): > 0 while the particles sit above the data in energy."""
        return float(self.e_particles - self.e_data)


class FRAME(SnapshotSlots, Model):
    kind = "frame"
    Config = FRAMEConfig
    title = "Deep FRAME with a Gaussian reference (trained by the KL or the JKO flow)"
    # Langevin at T = 1 from U(−1, 1) noise; a trained checkpoint ships its own flow's settings in meta["sampler"]
    draw_default = LangevinConfig.at_temperature(0.01, 1.0, n_steps=200, grad_clip=None, clamp=(-1.0, 1.0),
                                                 record_every=4)

    def __init__(self, config: FRAMEConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        c = self.config
        self.f = ConvEnergyNet(c.width, c.hidden)
        self.register_snapshots(c.n_snapshots, c.snapshot_size)
        self.register_buffer("train_images", torch.zeros(c.keep_train, 1, 28, 28, dtype=torch.uint8))
        self.register_buffer("n_train_images", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """U_θ(x) = −f_θ(x) + ‖x‖²/(2s²): (B, 1, 28, 28) -> (B,), p ∝ exp(−U)."""
        return -self.f(x) + (x.flatten(1) ** 2).sum(1) / (2 * self.config.ref_std**2)

    def reference(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n draws (n, 1, 28, 28) of q = N(0, s²I): where the particles start."""
        return torch.randn(n, 1, 28, 28, generator=gen) * self.config.ref_std

    def parameter_terms(self, data: torch.Tensor, particles: torch.Tensor, flow: FlowConfig) -> ParameterTerms:
        """The parameter step's loss on data (B, 1, 28, 28) and the particles after their update (B', …).

        KL: mean U(data) − mean U(particles) (its θ-gradient is the negative log-likelihood gradient). JKO adds
        λ·mean‖∇_x U(particles)‖², differentiated through ∇_x (create_graph).
        """
        e_data = self(data)
        x = particles.detach().requires_grad_(flow.flow == "jko")
        e_part = self(x)
        penalty = torch.zeros((), device=data.device)
        if flow.flow == "jko":
            (g,) = torch.autograd.grad(e_part.sum(), x, create_graph=True)
            penalty = (g.flatten(1) ** 2).sum(1).mean()
        loss = e_data.mean() - e_part.mean() + (flow.penalty * penalty if flow.flow == "jko" else 0.0)
        return ParameterTerms(loss=loss, e_data=e_data.mean().detach(), e_particles=e_part.mean().detach(),
                              penalty=penalty.detach())

    def keep_training_images(self, images: torch.Tensor) -> None:
        """Store a few-shot run's training digits (n ≤ keep_train, 1, 28, 28) in [-1, 1]."""
        n = min(len(images), self.config.keep_train)
        self.train_images[:n] = to_u8(images[:n]).to(self.train_images.device)
        self.n_train_images.fill_(n)

    def training_images(self) -> torch.Tensor:
        """The stored training digits (n, 1, 28, 28) in [-1, 1] (n = 0 for a run on the full set)."""
        return from_u8(self.train_images[: int(self.n_train_images)])


# Learning, one iteration at a time: the persistent particles take K steps of their flow on U_θ, then θ takes one
# step. The trainer (python -m training frame) and the learning-dynamics page's "train live" both drive a
# ``FlowLearner``, so the page trains exactly as the shipped runs were trained. Each iteration returns a
# ``LearningRow``: the energies of the data batch and of the particles, their gap, the parameter-update norm ‖Δθ‖,
# the particles' mean step per particle step, and the JKO penalty.


@dataclass(frozen=True)
class LearningRow:
    """What one iteration did (energies are means over the batch or the particles)."""

    iteration: int
    e_data: float  # mean U(data batch)
    e_particles: float  # mean U(particles) after their K steps
    gap: float  # e_particles − e_data
    update_norm: float  # ‖Δθ‖ of this iteration's parameter step (NaN when not measured)
    particle_step: float  # mean over the K steps of the particles' mean ‖x_{t+1} − x_t‖
    penalty: float  # mean ‖∇_x U(particles)‖² (logged for KL too, trained on only by JKO)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class FlowLearner:
    """One FRAME model learning by one flow from ``data`` (N, 1, 28, 28) in [-1, 1].

    ``gen`` draws the data batches (the particles start from ``model.reference`` with it); the particle noise of
    iteration i is seeded ``seed·1,000,003 + i``, so a run is reproducible from (seed, data, settings) and a
    resumed one continues as an unbroken one would.
    """

    def __init__(self, model: FRAME, data: torch.Tensor, flow: FlowConfig, gen: torch.Generator, *, seed: int = 0,
                 n_particles: int = 64, batch_size: int = 64, lr: float = 3e-4, beta1: float = 0.5,
                 objective: Callable | None = None):
        if len(data) == 0:
            raise ValueError("FRAME learning needs at least one training image")
        self.model, self.flow, self.gen, self.seed = model, flow, gen, seed
        self.device = next(model.parameters()).device
        self.data = data.to(self.device)
        self.batch_size = batch_size
        self.particle_config = flow.particle_config()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))
        self.particles = model.reference(n_particles, gen).to(self.device)
        self.iteration = 0
        # objective(fn, *args) computes fn(model, *args); a trainer with several processes passes one that averages
        # the parameter gradients over them (training.distributed.Objective)
        self.objective = objective or (lambda fn, *args: fn(model, *args))

    def step(self, measure_update: bool = True) -> LearningRow:
        """One iteration: K particle steps, one parameter step. ``measure_update`` copies θ to measure ‖Δθ‖."""
        model, it = self.model, self.iteration
        model.requires_grad_(False)
        step_sum = torch.zeros((), device=self.device)
        for st in steps_for(model, self.particles, self.particle_config, seed=self.seed * 1_000_003 + it):
            self.particles = st.x
            step_sum = step_sum + st.step_norm.mean()
        model.requires_grad_(True)
        batch = self.data[torch.randint(len(self.data), (self.batch_size,), generator=self.gen).to(self.device)]
        before = torch.cat([p.detach().flatten() for p in model.parameters()]) if measure_update else None
        terms = self.objective(type(model).parameter_terms, batch, self.particles, self.flow)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.optimizer.step()
        norm = float("nan")
        if before is not None:
            norm = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()
        self.iteration += 1
        return LearningRow(iteration=it, e_data=terms.e_data.item(), e_particles=terms.e_particles.item(),
                           gap=terms.gap, update_norm=norm, particle_step=(step_sum / self.flow.k_steps).item(),
                           penalty=terms.penalty.item())
