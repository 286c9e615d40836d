"""Resumable training state as one safetensors file: tensors plus a JSON ``info`` entry, never pickle.

Tensor names: ``model.<key>`` (the module's state_dict), ``opt.<name>.<i>.<key>`` (Adam's per-parameter
moments of optimiser ``name``), ``rng.gen`` and ``rng.torch`` (the run's generator and torch's global
CPU generator), ``extra.<key>`` (what the trainer adds: a replay buffer, the epoch's order, …).
``info`` holds the iteration, elapsed time, history rows, learning rates, scheduler states and the
trainer's own JSON values.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ebmviz import storage


def optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimiser's per-parameter state as flat named tensors."""
    out = {}
    for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        for k, v in opt.state.get(p, {}).items():
            out[f"opt.{name}.{i}.{k}"] = torch.as_tensor(v)
    return out


def restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    prefix = f"opt.{name}."
    for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        state = {k[len(f"{prefix}{i}."):]: v.to(p.device) for k, v in tensors.items() if k.startswith(f"{prefix}{i}.")}
        if state:
            if "step" in state:  # Adam keeps its step count on the CPU
                state["step"] = state["step"].cpu()
            opt.state[p] = state


def save_state(path: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
               schedulers: dict, gen: torch.Generator, extra: dict[str, torch.Tensor], info: dict) -> None:
    """Write everything a killed run needs to continue (atomically: temp file + rename)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for name, opt in optimizers.items():
        tensors.update(optimizer_tensors(name, opt))
    tensors["rng.gen"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors.update({f"extra.{k}": v for k, v in extra.items()})
    info = {**info, "lr": {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in schedulers.items()}}
    storage.write(path, tensors, {"info": json.dumps(info)})


def load_state(path: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
               schedulers: dict, gen: torch.Generator) -> tuple[dict[str, torch.Tensor], dict]:
    """Restore what ``save_state`` wrote into the given objects; return the trainer's extra tensors and info."""
    metadata, tensors = storage.read_tensors(path)
    info = json.loads(metadata["info"])
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    for name, opt in optimizers.items():
        restore_optimizer(name, opt, tensors)
        for group, lr in zip(opt.param_groups, info["lr"][name], strict=True):
            group["lr"] = lr
    for name, sched in schedulers.items():
        sched.load_state_dict(info["schedulers"][name])
    gen.set_state(tensors["rng.gen"])
    torch.set_rng_state(tensors["rng.torch"])
    return {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}, info
