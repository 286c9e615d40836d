"""Train the short-run Langevin EBM with a replay buffer (Du & Mordatch 2019; Lippe tutorial 8).

Per iteration (energy convention p ∝ exp(−E)):
  x⁺ = data + N(0, σ_data²), clamped to [-1, 1]
  x⁻ = K Langevin steps from replay-buffer states (each a fresh U(−1, 1) image with prob. 5%)
  L  = mean E(x⁺) − mean E(x⁻) + α·mean(E(x⁺)² + E(x⁻)²)     (contrastive divergence + L2)
Adam with β₁ = 0 and parameter-gradient norm clipping. ``--minutes`` bounds the wall time.
A killed run resumes from its last state file with ``--resume``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz import checkpoints
from ebmviz.data import load_dataset_with_source
from ebmviz.device import pick, seed_everything
from ebmviz.models.shortrun import ShortRunConfig, ShortRunEBM
from ebmviz.sampling import LangevinConfig, langevin_steps, to_uint8
from training.cli import field, parse_config
from training.common import (
    History,
    load_state,
    optimizer_tensors,
    provenance,
    restore_optimizer,
    save_grid,
    save_state,
)


@dataclass(frozen=True)
class ShortRunTrainConfig:
    """Short-run EBM training (replay buffer, short-run Langevin negatives, E² regulariser)."""

    out: str = field("checkpoints/shortrun-mnist.safetensors", "checkpoint to write")
    run_dir: str = field("runs/shortrun", "sample grids and the resumable state go here")
    dataset: str = field("mnist", "mnist or fashion-mnist")
    iterations: int = field(100000, "upper bound on parameter updates")
    minutes: float = field(45.0, "stop after this wall time (0: no limit)")
    batch_size: int = field(64, "data and negative samples per update")
    lr: float = field(1e-4, "Adam learning rate")
    beta1: float = field(0.0, "Adam β₁; momentum hurts EBM training (IGEBM, Lippe)")
    lr_decay: float = field(0.97, "multiply lr by this every 1000 iterations")
    clip_grad_norm: float = field(0.1, "clip the parameter-gradient norm")
    alpha: float = field(0.1, "weight of the E² regulariser")
    data_noise: float = field(0.005, "σ_data added to real images")
    buffer_size: int = field(8192, "replay buffer capacity")
    reinit: float = field(0.05, "share of negatives started from fresh uniform noise")
    k_steps: int = field(60, "Langevin steps per negative batch")
    step_size: float = field(10.0, "Langevin step size s")
    noise_std: float = field(0.005, "Langevin noise σ")
    grad_clip: float = field(0.03, "clamp each input-gradient entry to ±grad_clip")
    width: int = field(32, "energy net width")
    hidden: int = field(64, "energy net hidden units")
    seed: int = field(0, "seed for data order, buffer and noise")
    device: str = field("auto", "auto, cpu or cuda")
    log_every: int = field(25, "history row every n iterations")
    sample_every: int = field(500, "sample grid every n iterations")
    checkpoint_every: int = field(500, "checkpoint and resumable state every n iterations")
    keep: bool = field(False, "also keep each periodic checkpoint as run_dir/checkpoint_NNNNNN.safetensors")
    app_steps: int = field(256, "n_steps of the sampler the app starts with")
    resume: bool = field(False, "continue from run_dir/state.safetensors")


class ReplayBuffer:
    """Fixed-size store of past negatives as uint8 (N, 1, 28, 28); newest overwrite oldest."""

    def __init__(self, size: int, gen: torch.Generator):
        self.size, self.gen = size, gen
        self.data = torch.empty(0, 1, 28, 28, dtype=torch.uint8)
        self.head = 0

    def draw(self, n: int, reinit: float, device: torch.device) -> torch.Tensor:
        """n starts (n, 1, 28, 28) in [-1, 1]: buffer states, each fresh noise with prob. reinit."""
        fresh = torch.rand(n, 1, 28, 28, generator=self.gen) * 2 - 1
        if len(self.data) == 0:
            return fresh.to(device)
        idx = torch.randint(len(self.data), (n,), generator=self.gen)
        old = self.data[idx].float() / 127.5 - 1
        keep = (torch.rand(n, generator=self.gen) >= reinit).view(n, 1, 1, 1)
        return torch.where(keep, old, fresh).to(device)

    def push(self, x: torch.Tensor) -> None:
        u8 = to_uint8(x)
        if len(self.data) < self.size:
            self.data = torch.cat([self.data, u8])[: self.size]
            return
        n = len(u8)
        idx = (torch.arange(n) + self.head) % self.size
        self.data[idx] = u8
        self.head = int((self.head + n) % self.size)


def train(cfg: ShortRunTrainConfig) -> Path:
    seed_everything(cfg.seed)
    device = pick(cfg.device)
    run_dir = Path(cfg.run_dir)
    ds = load_dataset_with_source(cfg.dataset, "train")
    data = ds.images.to(device)
    model = ShortRunEBM(ShortRunConfig(width=cfg.width, hidden=cfg.hidden)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    gen = torch.Generator().manual_seed(cfg.seed)
    buffer = ReplayBuffer(cfg.buffer_size, gen)
    sampler = LangevinConfig(n_steps=cfg.k_steps, step_size=cfg.step_size,
                             noise_std=cfg.noise_std, grad_clip=cfg.grad_clip)
    history, start_it, elapsed0 = History(), 0, 0.0
    state_path = run_dir / "state.safetensors"
    if cfg.resume and state_path.exists():
        tensors, info = load_state(state_path)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizer(opt, tensors)
        buffer.data, buffer.head = tensors["buffer"], info["buffer_head"]
        history, start_it, elapsed0 = History(info["history"]), info["iteration"], info["elapsed"]
        print(f"resumed at iteration {start_it} ({elapsed0 / 60:.1f} min done)")
    t0 = time.time() - elapsed0

    def checkpoint(it: int) -> Path:
        model.replay.copy_(buffer.data[-model.config.replay_keep:].to(device)
                           if len(buffer.data) >= model.config.replay_keep else model.replay)
        save_state(state_path, {**{f"model.{k}": v for k, v in model.state_dict().items()},
                                **optimizer_tensors(opt), "buffer": buffer.data},
                   {"iteration": it, "elapsed": time.time() - t0, "history": history.rows,
                    "buffer_head": buffer.head})
        app_sampler = LangevinConfig(n_steps=cfg.app_steps, step_size=cfg.step_size,
                                     noise_std=cfg.noise_std, grad_clip=cfg.grad_clip,
                                     record_every=4)
        meta = {"dataset": {"name": cfg.dataset, "split": "train", "source": ds.source,
                            "n_images": len(ds)},
                "train_config": asdict(cfg), "wall_time_s": round(time.time() - t0, 1),
                "iterations": it, **provenance(device), "sampler": app_sampler.to_dict(),
                "history": history.downsample(300), "metrics": {},
                "title": "Short-run Langevin EBM with replay buffer"}
        path = checkpoints.save(model, cfg.out, meta)
        if cfg.keep:
            checkpoints.save(model, run_dir / f"checkpoint_{it:06d}.safetensors", meta)
        return path

    bar = tqdm(range(start_it, cfg.iterations), initial=start_it, total=cfg.iterations,
               desc="shortrun", mininterval=5)
    next_it = start_it  # iterations completed so far = the one a resumed run starts at
    for it in bar:
        if cfg.minutes and time.time() - t0 > cfg.minutes * 60:
            print(f"time limit of {cfg.minutes} min reached at iteration {it}")
            break
        for g in opt.param_groups:
            g["lr"] = cfg.lr * cfg.lr_decay ** (it // 1000)
        real = data[torch.randint(len(data), (cfg.batch_size,), generator=gen).to(device)]
        real = (real + cfg.data_noise * torch.randn_like(real)).clamp(-1, 1)
        x0 = buffer.draw(cfg.batch_size, cfg.reinit, device)
        model.requires_grad_(False)
        grad_norm = torch.zeros((), device=device)
        for st in langevin_steps(model, x0, sampler, seed=cfg.seed * 1_000_003 + it):
            neg = st.x
            grad_norm = grad_norm + st.grad_norm.mean() / cfg.k_steps
        model.requires_grad_(True)
        buffer.push(neg)
        e_pos, e_neg = model(real), model(neg)
        cd = e_pos.mean() - e_neg.mean()
        reg = cfg.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        loss = cd + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        opt.step()
        if it % cfg.log_every == 0:
            history.log(iteration=it, loss=loss.item(), cd=cd.item(), e_real=e_pos.mean().item(),
                        e_fake=e_neg.mean().item(), grad_norm=grad_norm.item(),
                        minutes=(time.time() - t0) / 60)
            bar.set_postfix(cd=f"{cd.item():+.3f}", e_real=f"{e_pos.mean().item():+.2f}")
        if it % cfg.sample_every == 0:
            save_grid(neg, run_dir / f"buffer_{it:06d}.png")
        next_it = it + 1
        if it and it % cfg.checkpoint_every == 0:
            checkpoint(next_it)
    path = checkpoint(next_it)
    print(f"wrote {path} after {next_it} iterations, {(time.time() - t0) / 60:.1f} min")
    return path


def main(argv: list[str], prog: str = "python -m training shortrun") -> int:
    train(parse_config(ShortRunTrainConfig, argv, prog))
    return 0
