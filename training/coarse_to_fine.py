"""Train the coarse-to-fine EBM stage by stage: 7×7, then 14×14, then 28×28 (Zhao, Xie & Li 2021).

Per iteration at stage s with fade weight β (energy convention p ∝ exp(−E)):
  x⁺ = mean-pooled data at side R_s + N(0, σ_data²), clamped to [-1, 1]
  x⁻ = the cascade from U(−1, 1) at 7×7: K_0 steps on E_0, upsample + noise, K_1 steps on E_1, …,
       K_s steps on E_s at β (the paper's smooth MCMC initialisation, run from the beginning)
  L  = mean E_s(x⁺) − mean E_s(x⁻) + α·mean(E_s(x⁺)² + E_s(x⁻)²)
A stage s > 0 starts with a transition in which β ramps linearly 0 → 1, then a stable phase at
β = 1. Each expansion gets a fresh Adam (the old moments belong to a smaller net). Snapshots of the
parameters are stored in the model at the end of every stage and at β = 0, ¼, ½, ¾ of every
transition, so the app can replay the growth.
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
from ebmviz.models.coarse_to_fine import (
    CascadeConfig,
    CoarseToFineConfig,
    CoarseToFineEBM,
    handoff,
    pyramid,
    upsample,
)
from ebmviz.sampling import LangevinConfig, sample
from training.cli import field, parse_config
from training.common import History, provenance, save_grid

SNAPSHOT_BETAS = (0.0, 0.25, 0.5, 0.75)  # inside each transition, plus one at each stage's end


@dataclass(frozen=True)
class CoarseToFineTrainConfig:
    """CF-EBM training: per-stage transition + stable phases, cascade negatives from noise."""

    out: str = field("checkpoints/coarse_to_fine-mnist.safetensors", "checkpoint to write")
    run_dir: str = field("runs/coarse_to_fine", "sample grids go here")
    dataset: str = field("mnist", "mnist or fashion-mnist")
    stage_iterations: str = field("800,1500,2000", "updates at 7, 14 and 28 px (transition included)")
    transition_iterations: str = field("0,500,800", "updates over which β ramps 0 → 1 at each stage")
    minutes: float = field(58.0, "stop after this wall time (0: no limit); the stop is noted in meta")
    batch_size: int = field(64, "data and negative samples per update")
    lr: float = field(3e-4, "Adam learning rate (a fresh Adam at every expansion)")
    beta1: float = field(0.0, "Adam β₁")
    clip_grad_norm: float = field(0.1, "clip the parameter-gradient norm")
    alpha: float = field(0.1, "weight of the E² regulariser")
    data_noise: float = field(0.01, "σ_data added to real images")
    k_steps: str = field("20,20,20", "Langevin steps K_s at 7, 14 and 28 px")
    step_size: float = field(10.0, "Langevin step size s")
    noise_std: float = field(0.005, "Langevin noise σ")
    grad_clip: float = field(0.03, "clamp each input-gradient entry to ±grad_clip")
    handoff_noise: float = field(0.05, "std of the noise added to upsampled samples at a hand-off")
    channels: str = field("12,24,48", "feature channels at 28, 14 and 7 px")
    seed: int = field(0, "seed for data order and noise")
    device: str = field("auto", "auto, cpu or cuda")
    log_every: int = field(25, "history row every n iterations")
    sample_every: int = field(250, "sample grid every n iterations")


def _ints(text: str, n: int = 3) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != n:
        raise SystemExit(f"expected {n} comma-separated integers, got {text!r}")
    return values


def beta_at(i: int, transition: int) -> float:
    """β after i updates of a stage whose transition lasts ``transition`` updates."""
    return 1.0 if transition <= 0 else min(1.0, i / transition)


def snapshot_plan(stage_its: tuple[int, ...], trans_its: tuple[int, ...]) -> list[tuple[int, int]]:
    """(stage, iteration within the stage) at which snapshots are taken, in order."""
    plan = []
    for stage, (n, t) in enumerate(zip(stage_its, trans_its, strict=True)):
        if stage > 0 and t > 0:
            plan += sorted({(stage, round(b * t)) for b in SNAPSHOT_BETAS} - {(stage, n)})
        plan.append((stage, n))  # end of the stage
    return plan


def cascade_negatives(model: CoarseToFineEBM, n: int, stage: int, beta: float, cfg: CascadeConfig,
                      gen: torch.Generator, seed: int, device: torch.device) -> torch.Tensor:
    """x⁻ (n, 1, R_s, R_s): the cascade from 7×7 noise up to ``stage``, final states only."""
    x = (torch.rand(n, 1, 7, 7, generator=gen) * 2 - 1).to(device)
    for s in range(stage + 1):
        if s > 0:
            x = handoff(x, cfg.handoff_noise, gen)
        x = sample(model.stage_energy(s, beta if s == stage else 1.0), x, cfg.stage_config(s), seed=seed + s)
    return x


def train(cfg: CoarseToFineTrainConfig) -> Path:
    seed_everything(cfg.seed)
    device = pick(cfg.device)
    stage_its, trans_its, k_steps = _ints(cfg.stage_iterations), _ints(cfg.transition_iterations), _ints(cfg.k_steps)
    plan = snapshot_plan(stage_its, trans_its)
    ds = load_dataset_with_source(cfg.dataset, "train")
    levels = [lv.to(device) for lv in pyramid(ds.images)]  # data at 7, 14, 28 px
    model = CoarseToFineEBM(CoarseToFineConfig(channels=_ints(cfg.channels), n_snapshots=len(plan))).to(device)
    cascade = CascadeConfig(steps=k_steps, step_size=cfg.step_size, noise_std=cfg.noise_std,
                            grad_clip=cfg.grad_clip, handoff_noise=cfg.handoff_noise)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, t0, it, stopped_early = History(), time.time(), 0, False
    run_dir = Path(cfg.run_dir)

    def checkpoint() -> Path:
        app = LangevinConfig(n_steps=sum(k_steps), step_size=cfg.step_size, noise_std=cfg.noise_std,
                             grad_clip=cfg.grad_clip, record_every=2)
        meta = {"dataset": {"name": cfg.dataset, "split": "train", "source": ds.source, "n_images": len(ds)},
                "train_config": asdict(cfg), "wall_time_s": round(time.time() - t0, 1), "iterations": it,
                **provenance(device), "sampler": app.to_dict(), "cascade": cascade.to_dict(),
                "history": history.downsample(400), "metrics": {}, "stopped_early": stopped_early,
                "title": "Coarse-to-fine EBM, 7 → 14 → 28 px"}
        return checkpoints.save(model, cfg.out, meta)

    for stage in range(3):
        if stage > 0:
            model.set_growth(stage, 0.0 if trans_its[stage] > 0 else 1.0)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        data = levels[stage]
        bar = tqdm(range(stage_its[stage] + 1), desc=f"stage {stage} ({data.shape[-1]} px)", mininterval=5)
        for i in bar:
            beta = beta_at(i, trans_its[stage]) if stage > 0 else 1.0
            model.set_growth(stage, beta)
            for k, (s_snap, i_snap) in enumerate(plan):
                if (s_snap, i_snap) == (stage, i):
                    model.record_snapshot(k, it)
            if i == stage_its[stage]:
                break  # the end-of-stage snapshot is taken; no update
            if cfg.minutes and time.time() - t0 > cfg.minutes * 60:
                stopped_early = True
                break
            real = data[torch.randint(len(data), (cfg.batch_size,), generator=gen).to(device)]
            real = (real + cfg.data_noise * torch.randn_like(real)).clamp(-1, 1)
            model.requires_grad_(False)
            neg = cascade_negatives(model, cfg.batch_size, stage, beta, cascade, gen, cfg.seed * 1_000_003 + it * 3,
                                    device)
            model.requires_grad_(True)
            e_pos, e_neg = model.energy(real, stage, beta), model.energy(neg, stage, beta)
            cd = e_pos.mean() - e_neg.mean()
            loss = cd + cfg.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            opt.step()
            if i % cfg.log_every == 0:
                history.log(iteration=it, stage=stage, beta=beta, loss=loss.item(), cd=cd.item(),
                            e_real=e_pos.mean().item(), e_fake=e_neg.mean().item(),
                            minutes=(time.time() - t0) / 60)
                bar.set_postfix(cd=f"{cd.item():+.3f}", beta=f"{beta:.2f}")
            if i % cfg.sample_every == 0:
                save_grid(upsample(upsample(neg)) if stage == 0 else upsample(neg) if stage == 1 else neg,
                          run_dir / f"stage{stage}_{i:05d}.png")
            it += 1
        bar.close()
        checkpoint()
        if stopped_early:
            print(f"time limit of {cfg.minutes} min reached at stage {stage}, β = {model.beta:.2f}")
            break
    path = checkpoint()
    print(f"wrote {path} after {it} iterations, {(time.time() - t0) / 60:.1f} min")
    return path


def main(argv: list[str], prog: str = "python -m training coarse_to_fine") -> int:
    train(parse_config(CoarseToFineTrainConfig, argv, prog))
    return 0
