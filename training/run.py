"""What every trainer shares: the flags of a run and the ``Run`` that serves them.

A method's config extends ``RunConfig`` with its own fields (and may give a shared field another
default). Its trainer opens a ``Run`` and keeps its own loop, calling the run for the rest:

    run = Run(cfg, kind)                       seeds, device, the run's torch.Generator ``run.gen``
    data = run.dataset("train")                the training data, recorded for the checkpoint
    resumed = run.resume(model, optimizers)    with --resume: weights, moments, RNGs, history, iteration
    run.out_of_time()                          the --minutes budget, counting time before a resume
    run.log(...); run.grid(x, name)            history rows; sample grids in run_dir
    run.checkpoint(model, it, optimizers, …)   the checkpoint (--out; with --keep also run_dir/
                                               checkpoint_NNNNNN) and the resumable state, together
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ebmviz import checkpoints
from ebmviz.data import Dataset, load_dataset_with_source
from ebmviz.device import pick, seed_everything
from ebmviz.figures import tile
from ebmviz.images import to_u8
from ebmviz.models import Model
from training.cli import field
from training.state import load_state, save_state


@dataclass(frozen=True)
class RunConfig:
    """Flags every trainer takes."""

    out: str = field("", "checkpoint to write ('': checkpoints/<method>-<dataset>.safetensors)")
    run_dir: str = field("", "sample grids, kept checkpoints and the resumable state ('': runs/<method>)")
    dataset: str = field("mnist", "mnist or fashion-mnist")
    minutes: float = field(45.0, "stop after this wall time, time before a resume included (0: no limit)")
    seed: int = field(0, "seed for data order, initial weights and noise")
    device: str = field("auto", "auto (cuda when there is one), cpu or cuda")
    log_every: int = field(25, "history row every n iterations")
    sample_every: int = field(500, "sample grid every n iterations")
    checkpoint_every: int = field(500, "checkpoint and resumable state every n iterations")
    keep: bool = field(False, "also keep each checkpoint as run_dir/checkpoint_NNNNNN.safetensors")
    resume: bool = field(False, "continue from run_dir/state.safetensors (a killed or finished run)")


class History:
    """Rows of scalars logged during training; ``downsample`` keeps ≤ n evenly spaced rows."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows = list(rows or [])

    def log(self, **values: float) -> None:
        self.rows.append({k: float(v) for k, v in values.items()})

    def downsample(self, n: int = 400) -> list[dict]:
        if len(self.rows) <= n:
            return self.rows
        idx = np.linspace(0, len(self.rows) - 1, n).round().astype(int)
        return [self.rows[i] for i in idx]


class Epochs:
    """Minibatches by iteration: each epoch visits the n items in a fresh order drawn from ``gen``.

    ``order`` (the current epoch's permutation) belongs in the resumable state, so that a resumed
    run finishes the epoch it stopped in.
    """

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, drop_last: bool = True,
                 order: torch.Tensor | None = None):
        self.n, self.batch_size, self.gen, self.order = n, batch_size, gen, order
        self.per_epoch = n // batch_size if drop_last else -(-n // batch_size)

    def __call__(self, it: int) -> tuple[int, torch.Tensor]:
        """(epoch, indices (≤ batch_size,) on the CPU) of iteration ``it``."""
        epoch, b = divmod(it, self.per_epoch)
        if b == 0 or self.order is None:
            self.order = torch.randperm(self.n, generator=self.gen)
        return epoch, self.order[b * self.batch_size:(b + 1) * self.batch_size]


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run continues: the iteration to run next and the trainer's own saved values."""

    iteration: int
    tensors: dict[str, torch.Tensor]  # the ``tensors`` given to ``Run.checkpoint``
    info: dict  # the ``info`` given to ``Run.checkpoint``


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


class Run:
    """One training run of ``kind``: device, seeds, data, clock, history, checkpoints and resumable state."""

    def __init__(self, cfg: RunConfig, kind: str):
        seed_everything(cfg.seed)
        self.cfg, self.kind = cfg, kind
        self.device = pick(cfg.device)
        self.out = Path(cfg.out or f"checkpoints/{kind}-{cfg.dataset}.safetensors")
        self.run_dir = Path(cfg.run_dir or f"runs/{kind}")
        self.state_path = self.run_dir / "state.safetensors"
        self.gen = torch.Generator().manual_seed(cfg.seed)  # data order, negatives' starts, latent draws
        self.history = History()
        self.data_info: dict = {}
        self._t0 = time.time()

    # ----------------------------------------------------------------- data and clock
    def dataset(self, split: str = "train") -> Dataset:
        """``cfg.dataset``'s split; the first one loaded is what the checkpoint says it was trained on."""
        ds = load_dataset_with_source(self.cfg.dataset, split)
        if not self.data_info:
            self.data_info = {"name": self.cfg.dataset, "split": split, "source": ds.source, "n_images": len(ds)}
        return ds

    def training_images(self, n: int = 0) -> torch.Tensor:
        """The training split's images (N, 1, 28, 28), or a few-shot set of ``n`` of them drawn with the run's
        generator (its first draw, so every trainer with the same seed gets the same n digits); the chosen
        indices go into the checkpoint's dataset record."""
        images = self.dataset("train").images
        if not n:
            return images
        if not 0 < n <= len(images):
            raise ValueError(f"--n-train {n}: the training set has {len(images)} images")
        idx = torch.randperm(len(images), generator=self.gen)[:n]
        self.data_info["few_shot_indices"] = idx.tolist()
        return images[idx]

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, those before a resume included."""
        return time.time() - self._t0

    def out_of_time(self) -> bool:
        return bool(self.cfg.minutes) and self.elapsed > self.cfg.minutes * 60

    def due(self, every: int, it: int) -> bool:
        """True on every ``every``-th iteration (0 included)."""
        return every > 0 and it % every == 0

    # ----------------------------------------------------------------- records
    def log(self, **values: float) -> None:
        self.history.log(**values, minutes=self.elapsed / 60)

    def grid(self, x: torch.Tensor, name: str, ncol: int = 8) -> None:
        """Images (B, 1, H, W) in [-1, 1] tiled into run_dir/<name>.png."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile(to_u8(x).numpy(), ncol=ncol)).save(self.run_dir / f"{name}.png")

    # ----------------------------------------------------------------- checkpoints and state
    def checkpoint(self, model: Model, iteration: int, optimizers: dict[str, torch.optim.Optimizer],
                   schedulers: dict | None = None, meta: dict | None = None,
                   tensors: dict[str, torch.Tensor] | None = None, info: dict | None = None) -> Path:
        """Write the checkpoint after ``iteration`` updates and the state to resume from there.

        ``meta`` adds to the checkpoint's metadata (sampler settings, metrics, …); ``tensors`` and
        ``info`` are the trainer's own state, handed back by ``resume``.
        """
        save_state(self.state_path, model, optimizers, schedulers or {}, self.gen, tensors or {},
                   {"iteration": iteration, "elapsed": self.elapsed, "history": self.history.rows,
                    "trainer": info or {}})
        meta = {"dataset": self.data_info, "train_config": asdict(self.cfg), "wall_time_s": round(self.elapsed, 1),
                "iterations": iteration, **provenance(self.device), "history": self.history.downsample(),
                "metrics": {}, **(meta or {})}
        path = checkpoints.save(model, self.out, meta)
        if self.cfg.keep:
            checkpoints.save(model, self.run_dir / f"checkpoint_{iteration:06d}.safetensors", meta)
        return path

    def resume(self, model: Model, optimizers: dict[str, torch.optim.Optimizer],
               schedulers: dict | None = None) -> Resumed | None:
        """With --resume and a state file: restore it into the given objects and the run; else None."""
        if not self.cfg.resume:
            return None
        if not self.state_path.exists():
            print(f"--resume: no {self.state_path} yet; starting a new run")
            return None
        tensors, info = load_state(self.state_path, model, optimizers, schedulers or {}, self.gen)
        self.history = History(info["history"])
        self._t0 = time.time() - info["elapsed"]
        print(f"resumed at iteration {info['iteration']} ({info['elapsed'] / 60:.1f} min done)")
        return Resumed(iteration=info["iteration"], tensors=tensors, info=info["trainer"])
