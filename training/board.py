"""A run's TensorBoard log: ``ebmviz.training_log``'s tags, written into run_dir as the trainer goes.

Every trainer calls ``run.board.write(step, …)`` where it logs a history row (every --log-every iterations), with
its own quantities by role. Energies E(x⁺), E(x⁻) and E(noise) are measured there, without gradients, with the
parameters after that step's update: one θ for all three. Under torchrun every process calls ``write`` (the scalars
are the mean over the processes, as the history's) and process 0 alone writes, its own negatives as the images.

Resuming: ``Run.resume`` sets ``start`` to the iteration the run continues from, and the writer opens with
``purge_step=start``, so readers drop whatever the killed run logged after its last checkpoint; ``Run.checkpoint``
flushes the log before it writes the state, so nothing logged before the checkpoint is lost. A new run (start 0)
purges from step 0: an earlier run's events in the same folder are dropped by readers too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ebmviz.training_log import MAX_IMAGES, EBMLogger, energy_stats, saturation
from training.distributed import Group

Energy = Callable[[torch.Tensor], torch.Tensor]


def grad_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """‖∇_θ‖ over the parameters that hold a gradient (0-d tensor, no host sync; 0 when none has one)."""
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def learning_rate(opt: torch.optim.Optimizer) -> float:
    """The learning rate of the optimiser's first parameter group."""
    return float(opt.param_groups[0]["lr"])


class Board:
    """The TensorBoard log of one run in ``run_dir``; ``images``: negatives (and replay states) per logged step,
    at most 64 (0: none)."""

    def __init__(self, run_dir: Path, group: Group, images: int = MAX_IMAGES):
        if not 0 <= images <= MAX_IMAGES:
            raise ValueError(f"--log-images {images}: between 0 and {MAX_IMAGES}")
        self.run_dir, self.group, self.n_images = Path(run_dir), group, images
        self.start = 0  # the iteration the log continues from (``Run.resume``)
        self.logger: EBMLogger | None = None

    def _log(self) -> EBMLogger:
        if self.logger is None:
            self.logger = EBMLogger(self.run_dir, purge_step=self.start)
        return self.logger

    def write(self, step: int, *, energy: Energy | None = None, real: torch.Tensor | None = None,
              neg: torch.Tensor | None = None, replay: torch.Tensor | None = None, **roles: float) -> None:
        """The scalars ``roles`` (values by ``training_log`` role, floats or 0-d tensors) at ``step``, and:

        ``energy`` with ``real`` x⁺ (B, …) and ``neg`` x⁻ (B', …): the energy roles and E of a fixed set of
        uniform-noise images of x⁺'s shape; ``neg``: the first images and the saturation share; ``replay``: replay
        states (B, …) in [−1, 1] or uint8. A collective under torchrun: every process calls it at the same steps.
        """
        values = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in roles.items()}
        if energy is not None and real is not None and neg is not None:
            with torch.no_grad():
                values |= energy_stats(energy(real), energy(neg))
        if neg is not None:
            values["saturation"] = saturation(neg)
        values = self.group.mean(values)
        if not self.group.main:
            return
        log = self._log()
        if energy is not None and real is not None:
            log.noise_energy(step, energy, tuple(real.shape[1:]), device=real.device)
        log.scalars(step, **values)
        if neg is not None and self.n_images:
            log.images(step, "negatives", neg, self.n_images)
        if replay is not None and self.n_images:
            log.images(step, "replay", replay, self.n_images)
        log.flush()  # on disk now: a monitor following the run sees the step at once (once per --log-every)

    def flush(self) -> None:
        if self.logger is not None:
            self.logger.flush()

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
            self.logger = None
