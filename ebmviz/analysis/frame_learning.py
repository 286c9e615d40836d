"""FRAME learning, one iteration at a time: the persistent particles take K steps of their flow, then θ takes one
step (``ebmviz.models.frame``). The trainer (``python -m training frame``) and the learning-dynamics page's
"train live" both drive a ``FlowLearner``, so the page trains exactly as the shipped runs were trained.

    particles x (n, 1, 28, 28) ← K steps of the flow on U_θ      (Langevin: KL flow; proximal steps: JKO flow)
    θ ← Adam step on mean U_θ(data batch) − mean U_θ(x) [+ λ·mean‖∇_x U_θ(x)‖² for JKO]

Each iteration returns a ``LearningRow``: the energies of the data batch and of the particles, their gap, the
parameter-update norm ‖Δθ‖, the particles' mean step per particle step, and the JKO penalty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ebmviz.models.frame import FRAME, FlowConfig
from ebmviz.sampling import steps_for


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
