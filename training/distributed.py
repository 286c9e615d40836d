"""Scale-out training on PyTorch's own engine: torchrun's process group and DistributedDataParallel.

A plain ``python -m training <method>`` has no process group and wraps nothing: the run is the same as before
this module existed. Under ``torchrun --nproc_per_node=N`` (or torchrun's multi-node rendezvous; N = 1 too) every
process reads RANK, LOCAL_RANK and WORLD_SIZE, joins the group (NCCL on GPUs, gloo on CPU) and

- trains on its own shard of the data (``Group.shard``: the strided split DistributedSampler makes, padded by
  wrapping round so every rank holds the same number of items);
- draws its own negatives, replay buffer, noise and data order (``training.run.Run`` seeds rank r with
  seed + RANK_SEED_STRIDE·r);
- computes each loss through ``Objective``, a DistributedDataParallel module, so ``loss.backward()`` averages the
  gradients over the ranks and every optimiser step is the same step on every rank (the parameters stay equal);
- takes decisions together: ``Group.any`` (out of time, diverged) and ``Group.mean`` (the logged values are the
  mean over the ranks, i.e. over the effective batch).

Rank 0 alone writes the checkpoint, the sample grids and the log lines; every rank writes its own resumable state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

RANK_SEED_STRIDE = 10_007  # rank r's seed is seed + stride·r, so that ranks draw different negatives


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank (0 … world − 1), local rank on its node, world size, backend."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    backend: str | None = None  # "gloo" | "nccl" when a process group is up

    @property
    def main(self) -> bool:
        """True on the process that writes checkpoints, grids and log lines."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True under torchrun (a process group is up, even of one process)."""
        return self.backend is not None

    @classmethod
    def join(cls, device: torch.device) -> tuple[Group, torch.device]:
        """The group torchrun described in the environment (joined here), and this process's device.

        Without torchrun's variables: no group, world size 1 and ``device`` as given. On CUDA each process takes the
        GPU of its local rank and the group uses NCCL; elsewhere gloo.
        """
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return cls(), device
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            backend = "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        return cls(rank=rank, local_rank=local_rank, world=world, backend=backend), device

    def leave(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    # ----------------------------------------------------------------- data
    def shard(self, *items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's share of each (N, …) tensor: items r, r + W, r + 2W, … of the list padded by wrapping
        round to a multiple of W (DistributedSampler's split without shuffling), so every rank gets ⌈N / W⌉."""
        if not self.distributed:
            return items
        n = len(items[0])
        padded = -(-n // self.world) * self.world
        idx = torch.arange(self.rank, padded, self.world) % n
        return tuple(x[idx.to(x.device)] for x in items)

    # ----------------------------------------------------------------- agreement
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (a stop all ranks take together)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def same(self, value: float) -> bool:
        """True on every rank when every rank passed the same ``value`` (a collective: all ranks call it)."""
        if not self.distributed:
            return True
        t = torch.tensor([float(value), -float(value)], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t[0].item() == -t[1].item())

    def average(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of ``x`` over the ranks (a collective); ``x`` itself in one process."""
        if not self.distributed:
            return x
        x = x.clone()
        dist.all_reduce(x)
        return x / self.world

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (every rank must call this at the same point)."""
        if not self.distributed or not values:
            return values
        t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return dict(zip(values, (t / self.world).tolist(), strict=True))

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


class _Call(torch.nn.Module):
    """Holds the model so that DistributedDataParallel's forward can compute any function of it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn: Callable, *args, **kwargs):
        return fn(self.model, *args, **kwargs)


class Objective:
    """``objective(fn, *args)`` = ``fn(model, *args)``; with several ranks it runs inside DistributedDataParallel's
    forward, so the backward of what it returns averages the gradients of ``model``'s parameters over the ranks.

    ``objective.name(*args)`` is short for ``objective(type(model).name, *args)`` (a loss method of the model).
    Each backward must follow exactly one objective call. ``partial``: some losses leave some parameters out
    (another optimiser's net, a stage not yet grown), so DDP looks for them at every call
    (``find_unused_parameters``). Buffers are rank 0's at the start, and batch-norm statistics follow rank 0's at
    every call (stored snapshots and replay samples stay each rank's own; rank 0's are saved). The input-gradient
    passes of the samplers use ``model`` itself, with its parameters' ``requires_grad`` off, and never touch the
    wrapper.
    """

    def __init__(self, model: torch.nn.Module, group: Group, partial: bool = False):
        self.model, self.group = model, group
        self.ddp = None
        if group.distributed:
            ids = [group.local_rank] if group.backend == "nccl" else None
            # broadcasts rank 0's parameters and buffers: every rank starts from the same weights; afterwards
            # only batch-norm statistics need rank 0's at every call (snapshots and replay samples are large)
            norms = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
            self.ddp = DistributedDataParallel(_Call(model), device_ids=ids, find_unused_parameters=partial,
                                               broadcast_buffers=norms)

    def __call__(self, fn: Callable, *args, **kwargs):
        if self.ddp is None:
            return fn(self.model, *args, **kwargs)
        return self.ddp(fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Callable:
        method = getattr(type(self.model), name)
        return lambda *args, **kwargs: self(method, *args, **kwargs)
