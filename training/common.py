"""Pieces every training loop shares: history, sample grids, resumable state, provenance."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

from ebmviz.checkpoints import write_safetensors
from ebmviz.sampling import to_uint8


class History:
    """Rows of scalars logged during training; ``downsample`` keeps ≤ n evenly spaced rows."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows = list(rows or [])

    def log(self, **values: float) -> None:
        self.rows.append({k: float(v) for k, v in values.items()})

    def downsample(self, n: int = 300) -> list[dict]:
        if len(self.rows) <= n:
            return self.rows
        idx = np.linspace(0, len(self.rows) - 1, n).round().astype(int)
        return [self.rows[i] for i in idx]


def save_grid(x: torch.Tensor, path: Path | str, ncol: int = 8) -> None:
    """Tile images (B, 1, 28, 28) in [-1, 1] into one PNG."""
    u8 = to_uint8(x)[:, 0].numpy()  # (B, 28, 28)
    b = u8.shape[0]
    nrow = (b + ncol - 1) // ncol
    grid = np.zeros((nrow * 30, ncol * 30), dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, ncol)
        grid[r * 30 + 1 : r * 30 + 29, c * 30 + 1 : c * 30 + 29] = u8[i]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


def provenance(device: torch.device) -> dict:
    """Command line, git commit, machine and device, for the checkpoint's metadata."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "command": "python -m training " + " ".join(sys.argv[1:]),
        "git_commit": sha,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
    }


def save_state(path: Path | str, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Resumable training state (weights, optimiser moments, buffers) as safetensors + JSON."""
    write_safetensors(path, tensors, {"info": json.dumps(info)})


def load_state(path: Path | str) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["info"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    return tensors, info


def optimizer_tensors(opt: torch.optim.Adam) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as flat named tensors (no pickle)."""
    out = {}
    for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        for k, v in opt.state.get(p, {}).items():
            out[f"opt.{i}.{k}"] = torch.as_tensor(v)
    return out


def restore_optimizer(opt: torch.optim.Adam, tensors: dict[str, torch.Tensor]) -> None:
    for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        state = {k.split(".", 2)[2]: v.to(p.device) for k, v in tensors.items()
                 if k.startswith(f"opt.{i}.")}
        if state:
            opt.state[p] = state
