"""What every trainer shares: the flags of a run and the ``Run`` that serves them.

A method's config extends ``RunConfig`` with its own fields (and may give a shared field another
default). Its trainer opens a ``Run`` and keeps its own loop, calling the run for the rest:

    run = Run(cfg, kind)                       seeds, device, process group, the run's torch.Generator ``run.gen``
    data = run.dataset("train")                the training data, recorded for the checkpoint
    (x,) = run.shard(data.images)              this rank's share of it (all of it in one process)
    resumed = run.resume(model, optimizers)    with --resume: weights, moments, RNGs, history, iteration
    net = run.objective(model)                 losses through DistributedDataParallel: net.loss(...)
    run.out_of_time()                          the --minutes budget, counting time before a resume
    run.guard(it, hint, losses, energies)      stop on a non-finite loss or energies above --max-energy
    ema = run.average(module, cfg.ema)         --ema: a moving average of the weights (``training.ema``), which
                                               the checkpoint holds; call ``ema.update()`` after each step
    run.log(...); run.grid(x, name)            history rows; sample grids in run_dir
    run.board.write(it, energy=…, real=…, …)   the TensorBoard log in run_dir, by ``ebmviz.training_log`` role
                                               (``training.board``), where the trainer logs a history row
    run.checkpoint(model, it, optimizers, …)   the checkpoint (--out; with --keep also run_dir/
                                               checkpoint_NNNNNN) and the resumable state, together
    return run.finish(path, "120 iterations")  after the last checkpoint: say what was written, leave the
                                               process group (``run.close()``), hand back the path

Under torchrun (``training.distributed``) every process runs the same trainer: rank 0 writes the checkpoint,
grids, TensorBoard log and messages; every rank keeps its own resumable state (state.safetensors,
state.rank<r>.safetensors).
"""

from __future__ import annotations

import os
import platform
import re
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
from ebmviz.figures.images import tile
from ebmviz.images import to_u8
from ebmviz.models import Model
from training.board import Board
from training.cli import field
from training.distributed import RANK_SEED_STRIDE, Group, Objective
from training.ema import PREFIX as EMA_PREFIX, Ema
from training.state import load_state, save_state


@dataclass(frozen=True)
class RunConfig:
    """Flags every trainer takes."""

    out: str = field("", "checkpoint to write ('': <run_dir>/<method>-<dataset>.safetensors, which ebmviz run "
                         "--checkpoints <run_dir> adds to the app; --out checkpoints/… replaces a shipped model)")
    run_dir: str = field("", "sample grids, kept checkpoints and the resumable state ('': runs/<method>)")
    dataset: str = field("mnist", "mnist or fashion-mnist")
    minutes: float = field(45.0, "stop after this wall time, time before a resume included (0: no limit)")
    seed: int = field(0, "seed for data order, initial weights and noise")
    device: str = field("auto", "auto (cuda when there is one), cpu or cuda")
    log_every: int = field(25, "history row and TensorBoard scalars every n iterations")
    log_images: int = field(64, "negatives (and replay states) in the TensorBoard log at each --log-every step, "
                                "at most 64 (0: none)")
    sample_every: int = field(500, "sample grid every n iterations")
    checkpoint_every: int = field(500, "checkpoint and resumable state every n iterations")
    keep: bool = field(False, "also keep each checkpoint as run_dir/checkpoint_NNNNNN.safetensors")
    resume: bool = field(False, "continue from run_dir/state.safetensors (a killed or finished run)")
    max_energy: float = field(1e6, "stop when a logged energy's magnitude exceeds this (0: only non-finite values)")


def init_weights(model: Model, name: str, what: str) -> None:
    """--init: copy checkpoint ``name``'s weights into ``model``, which must be of its kind and architecture.

    Raises ``ValueError`` "--init NAME: not WHAT (it is …)" otherwise; ``what`` names the model and its size flags.
    """
    start = checkpoints.load(name)
    if not isinstance(start, type(model)) or start.config != model.config:
        raise ValueError(f"--init {name}: not {what} (it is {start.kind}, {start.config})")
    model.load_state_dict(start.state_dict())

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


COUNTERS = ("iteration", "epoch", "stage", "round", "beta")  # history columns that are positions, not measurements


class Diverged(RuntimeError):
    """Training stopped on a non-finite loss or exploding energies; the message says what and which setting."""


def learning_rates(cfg: RunConfig) -> dict[str, float]:
    """The config's learning-rate fields (``lr``, ``lr_d``, …) by name."""
    return {k: v for k, v in asdict(cfg).items() if (k == "lr" or k.startswith("lr_")) and isinstance(v, float)
            and k not in ("lr_decay", "lr_gamma", "lr_end")}


class Run:
    """One training run of ``kind``: device, seeds, process group, data, clock, history, checkpoints, state."""

    def __init__(self, cfg: RunConfig, kind: str):
        self.group, self.device = Group.join(pick(cfg.device))
        self.seed = cfg.seed + RANK_SEED_STRIDE * self.group.rank  # cfg.seed in one process and on rank 0
        seed_everything(self.seed)
        self.cfg, self.kind = cfg, kind
        self.run_dir = Path(cfg.run_dir or f"runs/{kind}")
        self.out = Path(cfg.out or self.run_dir / f"{kind}-{cfg.dataset}.safetensors")
        suffix = f".rank{self.group.rank}" if self.group.rank else ""
        self.state_path = self.run_dir / f"state{suffix}.safetensors"
        self.gen = torch.Generator().manual_seed(self.seed)  # data order, negatives' starts, latent draws
        self.history = History()
        self.board = Board(self.run_dir, self.group, cfg.log_images)  # opened at its first write
        self.data_info: dict = {}
        self.last_checkpoint: int | None = None  # iteration of the last checkpoint this run wrote or resumed from
        self.ema = Ema(torch.nn.Module(), 0.0)  # the weight average the checkpoint holds: none until ``average``
        self.resume_called = False  # ``average`` must come before ``resume``
        self._t0 = time.time()
        self.remove_partial_writes()
        if self.group.distributed:
            self.say(self.scale_report())

    @property
    def main(self) -> bool:
        """True on the process that writes the checkpoint, the grids and the messages (always in one process)."""
        return self.group.main

    def say(self, message: str) -> None:
        if self.main:
            print(message, flush=True)

    def scale_report(self) -> str:
        """World size, backend, per-rank and effective batch, and the learning rates (used as given)."""
        g, batch = self.group, getattr(self.cfg, "batch_size", None)
        eff = f"batch {batch} per rank × {g.world} ranks = effective batch {batch * g.world}; " if batch else ""
        lrs = ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in learning_rates(self.cfg).items())
        return (f"DistributedDataParallel over {g.world} processes ({g.backend}); {eff}learning rates as given "
                f"({lrs}): gradients are averaged over the ranks, so scale them yourself for a larger batch")

    def close(self) -> None:
        """Close the TensorBoard log and leave the process group (every trainer's last call, through ``finish``)."""
        self.board.close()
        self.group.leave()

    def finish(self, path: Path, after: str | None = None, metrics: dict | None = None) -> Path:
        """Every trainer's last lines, once its last checkpoint ``path`` is written: say so (rank 0), ``close``,
        return ``path``. The line is ``wrote <path> after <after>, <minutes> min`` (``after`` how far the run got:
        "120 iterations", "12 rounds", …) and then ``: <metrics>`` when given."""
        done = f" after {after}, {self.elapsed / 60:.1f} min" if after is not None else ""
        self.say(f"wrote {path}{done}" + (f": {metrics}" if metrics is not None else ""))
        self.close()
        return path

    # ----------------------------------------------------------------- data and clock
    def dataset(self, split: str = "train") -> Dataset:
        """``cfg.dataset``'s split; the first one loaded is what the checkpoint says it was trained on."""
        ds = load_dataset_with_source(self.cfg.dataset, split)
        if not self.group.same(len(ds)):  # e.g. torchvision's 60,000 digits on one node, the embedded 5,000 on another
            raise SystemExit(f"the ranks loaded different {self.cfg.dataset} {split} sets (this rank: {len(ds)} images "
                             f"from {ds.source}); give every node the same data")
        if not self.data_info:
            self.data_info = {"name": self.cfg.dataset, "split": split, "source": ds.source, "n_images": len(ds)}
        return ds

    def training_images(self, n: int = 0) -> torch.Tensor:
        """The training split's images (N, 1, 28, 28), or a few-shot set of ``n`` of them drawn with the run's
        generator (its first draw, so every trainer with the same seed gets the same n digits); the chosen
        indices go into the checkpoint's dataset record. Every rank gets the same n digits (rank 0's draw)."""
        images = self.dataset("train").images
        if not n:
            return images
        if not 0 < n <= len(images):
            raise ValueError(f"--n-train {n}: the training set has {len(images)} images")
        gen = self.gen if self.main else torch.Generator().manual_seed(self.cfg.seed)  # rank 0's first draw
        idx = torch.randperm(len(images), generator=gen)[:n]
        self.data_info["few_shot_indices"] = idx.tolist()
        return images[idx]

    def shard(self, *items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's share of each (N, …) tensor (``Group.shard``); the tensors themselves in one process."""
        return self.group.shard(*items)

    def objective(self, model: torch.nn.Module, partial: bool = False) -> Objective:
        """``model``'s losses computed so that their gradients are averaged over the ranks (call after ``resume``);
        ``partial``: some losses reach only some of the parameters (``Objective``)."""
        return Objective(model, self.group, partial)

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, those before a resume included."""
        return time.time() - self._t0

    def out_of_time(self) -> bool:
        """The --minutes budget is spent (on any rank: all ranks stop together)."""
        return self.group.any(bool(self.cfg.minutes) and self.elapsed > self.cfg.minutes * 60)

    def due(self, every: int, it: int) -> bool:
        """True on every ``every``-th iteration (0 included)."""
        return every > 0 and it % every == 0

    def guard(self, it: int, hint: str, losses: dict, energies: dict | None = None) -> None:
        """Raise ``Diverged`` (on every rank) when a loss or energy is not finite, or an energy's magnitude is above
        --max-energy. Called before anything of iteration ``it`` is written, so the last checkpoint stays the last
        good one; ``hint`` names the settings to lower."""
        energies = energies or {}
        bad = None
        for name, v in {**losses, **energies}.items():
            v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            if not np.isfinite(v):
                bad = f"{name} = {v}"
                break
            if name in energies and self.cfg.max_energy and abs(v) > self.cfg.max_energy:
                bad = f"|{name}| = {abs(v):.3g} > --max-energy {self.cfg.max_energy:g}"
                break
        if not self.group.any(bad is not None):
            return
        where = f"on rank {self.group.rank}: {bad}" if bad else "on another rank"
        self.board.flush()  # the log up to the divergence stays readable
        kept = (f"the last good checkpoint, {self.out} after {self.last_checkpoint} iterations, is kept"
                if self.last_checkpoint is not None else f"no checkpoint was written yet ({self.out} is untouched)")
        raise Diverged(f"{self.kind} training diverged at iteration {it} ({where}); {kept}. {hint}, then start "
                       f"again or continue with --resume from the state of that checkpoint.")

    def remove_partial_writes(self) -> list[Path]:
        """Delete the temp files a run killed while writing left behind (this rank's state; rank 0 also the
        checkpoint's). The files they were replacing are intact: writes are a temp file, then a rename."""
        targets = [self.state_path] + ([self.out] if self.main else [])
        gone = []
        for target in targets:
            pattern = re.compile(rf"^\.{re.escape(target.stem)}\.[^.]+\.tmp$")  # storage.write's temp names
            if target.parent.is_dir():
                for p in target.parent.iterdir():
                    if pattern.match(p.name):
                        p.unlink(missing_ok=True)
                        gone.append(p)
        if gone:
            print(f"removed {len(gone)} partial write(s) of a killed run: {', '.join(p.name for p in gone)}")
        return gone

    def average(self, module: torch.nn.Module, decay: float) -> Ema:
        """Keep θ̄, a moving average of ``module``'s weights with ``decay`` (0: off), for this run's checkpoints and
        state. Call before ``resume``, which restores θ̄ too; the trainer calls ``update()`` after each step."""
        if self.resume_called:
            raise RuntimeError("Run.average must be called before Run.resume, or a resumed run loses its θ̄")
        self.ema = Ema(module, decay)
        return self.ema

    # ----------------------------------------------------------------- records
    def log(self, **values: float) -> None:
        """A history row; with several ranks each measured value is the mean over the ranks (every rank calls
        this); counters (iteration, epoch, stage, round, β) are the same on every rank and kept as they are."""
        counters = {k: v for k, v in values.items() if k in COUNTERS}
        measured = self.group.mean({k: v for k, v in values.items() if k not in COUNTERS})
        self.history.log(**counters, **measured, minutes=self.elapsed / 60)

    def grid(self, x: torch.Tensor, name: str, ncol: int = 8) -> None:
        """Images (B, 1, H, W) in [-1, 1] tiled into run_dir/<name>.png (rank 0's)."""
        if not self.main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile(to_u8(x).numpy(), ncol=ncol)).save(self.run_dir / f"{name}.png")

    # ----------------------------------------------------------------- checkpoints and state
    def checkpoint(self, model: Model, iteration: int, optimizers: dict[str, torch.optim.Optimizer],
                   schedulers: dict | None = None, meta: dict | None = None,
                   tensors: dict[str, torch.Tensor] | None = None, info: dict | None = None) -> Path:
        """Write the checkpoint after ``iteration`` updates (rank 0) and this rank's state to resume from there.

        ``meta`` adds to the checkpoint's metadata (sampler settings, metrics, …); ``tensors`` and
        ``info`` are the trainer's own state, handed back by ``resume``. With ``average`` on, the checkpoint holds
        θ̄ (and says so in ``meta["weights"]``) and the state holds both θ and θ̄.
        """
        tensors = {**(tensors or {}), **self.ema.tensors()}
        self.board.flush()  # every step logged so far is on disk before the state a resumed run starts from
        save_state(self.state_path, model, optimizers, schedulers or {}, self.gen, tensors,
                   {"iteration": iteration, "elapsed": self.elapsed, "history": self.history.rows,
                    "world_size": self.group.world, "ema": self.ema.decay,
                    "trainer": info or {}})
        self.last_checkpoint = iteration
        if not self.main:
            return self.out
        scale = {}
        if self.group.distributed:
            batch = getattr(self.cfg, "batch_size", None)
            scale = {"distributed": {"world_size": self.group.world, "backend": self.group.backend,
                                     "batch_per_rank": batch, "effective_batch": batch and batch * self.group.world,
                                     "learning_rates": learning_rates(self.cfg)}}
        meta = {"dataset": self.data_info, "train_config": asdict(self.cfg), "wall_time_s": round(self.elapsed, 1),
                "iterations": iteration, **provenance(self.device), **scale, "history": self.history.downsample(),
                "metrics": {}, **(meta or {})}
        if self.ema.on:
            meta["weights"] = f"exponential moving average of the trained weights, decay {self.ema.decay:g}"
        with self.ema.applied():
            path = checkpoints.save(model, self.out, meta)
            if self.cfg.keep:
                checkpoints.save(model, self.run_dir / f"checkpoint_{iteration:06d}.safetensors", meta)
        return path

    def resume(self, model: Model, optimizers: dict[str, torch.optim.Optimizer],
               schedulers: dict | None = None) -> Resumed | None:
        """With --resume and a state file: restore it into the given objects and the run; else None."""
        self.resume_called = True
        if not self.cfg.resume:
            return None
        found = self.state_path.exists()
        tensors, info = ({}, {}) if not found else load_state(self.state_path, model, optimizers, schedulers or {},
                                                               self.gen)
        world = info.get("world_size", 1)
        # every rank must continue from the same iteration: a stale or missing rank file (a kill between two ranks'
        # writes, a node that lost its files) stops all of them with one message instead of a run that diverges
        if not self.group.same(info["iteration"] if found and world == self.group.world else -1 - found):
            raise SystemExit(f"--resume: the {self.group.world} processes' states do not agree (this one, rank "
                             f"{self.group.rank}: {self.state_path} "
                             f"{'at iteration ' + str(info['iteration']) if found else 'missing'}, written by "
                             f"{world} process(es)); resume with the number of processes that wrote them, or start "
                             f"again without --resume")
        if not found:
            self.say(f"--resume: no {self.state_path} yet; starting a new run")
            return None
        if world != self.group.world:
            raise SystemExit(f"--resume: {self.state_path} was written by a run of {world} "
                             f"processes; resume it with the same number (this run has {self.group.world})")
        before = info.get("ema", 0.0)
        self.ema.load(tensors)  # θ̄ ← θ when the state holds no average
        if self.ema.decay != before:
            kept = lambda d: f"a weight average with decay {d:g}" if d else "no weight average"  # noqa: E731
            self.say(f"--resume: the state's run kept {kept(before)}; this run goes on with {kept(self.ema.decay)}")
        tensors = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}  # θ̄ is the run's
        self.history = History(info["history"])
        self._t0 = time.time() - info["elapsed"]
        self.last_checkpoint = self.board.start = info["iteration"]  # the log continues at this step
        self.say(f"resumed at iteration {info['iteration']} ({info['elapsed'] / 60:.1f} min done)")
        return Resumed(iteration=info["iteration"], tensors=tensors, info=info["trainer"])
