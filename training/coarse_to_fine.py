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
--ema d (a choice of this port, not the paper's): the checkpoint and the snapshots hold θ̄, a moving average of
the weights over the whole run (``training.ema``); the negatives always come from the trained θ. A new stage's
blocks get no gradient before it starts, so their θ̄ is their θ until then, and E_s at β = 0 under θ̄ is still
E_{s−1}(pool(x)) under θ̄.
The history row and the TensorBoard log (``training.board``) come every --log-every iterations of the whole run,
counted across stages; the log's energies, negatives and noise are at the current stage's side, and its sampler
norms are those of the current stage's chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.models.coarse_to_fine import (
    CascadeConfig,
    CoarseToFineConfig,
    CoarseToFineEBM,
    handoff,
    pyramid,
    upsample,
)
from ebmviz.sampling import LangevinConfig, sample, steps_for
from training.board import learning_rate
from training.cli import command, field
from training.run import Run, RunConfig

SNAPSHOT_BETAS = (0.0, 0.25, 0.5, 0.75)  # inside each transition, plus one at each stage's end


@dataclass(frozen=True)
class CoarseToFineTrainConfig(RunConfig):
    """CF-EBM training: per-stage transition + stable phases, cascade negatives from noise."""

    minutes: float = field(58.0, "stop after this wall time, time before a resume included (0: no limit); "
                                 "the stop is noted in meta")
    sample_every: int = field(250, "sample grid every n iterations of a stage")
    stage_iterations: tuple[int, int, int] = field((800, 1500, 2000),
                                                   "updates at 7, 14 and 28 px (transition included)")
    transition_iterations: tuple[int, int, int] = field((0, 500, 800), "updates over which β ramps 0 → 1 at each stage")
    batch_size: int = field(64, "data and negative samples per update")
    lr: float = field(3e-4, "Adam learning rate (a fresh Adam at every expansion)")
    beta1: float = field(0.0, "Adam β₁")
    clip_grad_norm: float = field(0.1, "clip the parameter-gradient norm")
    alpha: float = field(0.1, "weight of the E² regulariser")
    data_noise: float = field(0.01, "σ_data added to real images")
    k_steps: tuple[int, int, int] = field((20, 20, 20), "Langevin steps K_s at 7, 14 and 28 px")
    step_size: float = field(10.0, "Langevin step size s")
    noise_std: float = field(0.005, "Langevin noise σ")
    grad_clip: float = field(0.03, "clamp each input-gradient entry to ±grad_clip")
    handoff_noise: float = field(0.05, "std of the noise added to upsampled samples at a hand-off")
    channels: tuple[int, int, int] = field((12, 24, 48), "feature channels at 28, 14 and 7 px")
    ema: float = field(0.0, "ship θ̄, a moving average of the weights with this decay (0: the trained weights θ; "
                            "0.998 averages over about 500 updates)")


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
                      gen: torch.Generator, seed: int, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x⁻ (n, 1, R_s, R_s): the cascade from 7×7 noise up to ``stage``, final states only; with the last stage's
    mean per-chain ‖∇E‖ and ‖Δx‖ over its steps (0-d tensors)."""
    x = (torch.rand(n, 1, 7, 7, generator=gen) * 2 - 1).to(device)
    for s in range(stage):
        x = sample(model.stage_energy(s, 1.0), handoff(x, cfg.handoff_noise, gen) if s else x, cfg.stage_config(s),
                   seed=seed + s)
    if stage:
        x = handoff(x, cfg.handoff_noise, gen)
    grad_norm = step_norm = torch.zeros((), device=device)
    config = cfg.stage_config(stage)
    k = max(1, config.n_steps)
    for st in steps_for(model.stage_energy(stage, beta), x, config, seed=seed + stage):  # ``sample``, step by step
        x = st.x
        grad_norm = grad_norm + st.grad_norm.mean() / k
        step_norm = step_norm + st.step_norm.mean() / k
    return x.detach(), grad_norm, step_norm


def train(cfg: CoarseToFineTrainConfig) -> Path:
    run = Run(cfg, CoarseToFineEBM.kind)
    device = run.device
    plan = snapshot_plan(cfg.stage_iterations, cfg.transition_iterations)
    levels = [lv.to(device) for lv in pyramid(*run.shard(run.dataset("train").images))]  # data at 7, 14, 28 px
    model = CoarseToFineEBM(CoarseToFineConfig(channels=cfg.channels, n_snapshots=len(plan))).to(device)
    cascade = CascadeConfig(steps=cfg.k_steps, step_size=cfg.step_size, noise_std=cfg.noise_std,
                            grad_clip=cfg.grad_clip, handoff_noise=cfg.handoff_noise)
    app = LangevinConfig(n_steps=sum(cfg.k_steps), step_size=cfg.step_size, noise_std=cfg.noise_std,
                         grad_clip=cfg.grad_clip, record_every=2)
    new_adam = lambda: torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))  # noqa: E731
    opt = new_adam()
    ema = run.average(model, cfg.ema)
    it, first_stage, first_i, stopped_early = 0, 0, 0, False
    if resumed := run.resume(model, {"adam": opt}):  # the Adam of the stage the run stopped in
        it, first_stage, first_i = resumed.iteration, resumed.info["stage"], resumed.info["step"]
    net = run.objective(model, partial=True)  # one wrapper for every stage: the parameters exist from the start

    def checkpoint(stage: int, next_i: int) -> Path:
        """Checkpoint and state; a resumed run continues at update ``next_i`` of ``stage``."""
        return run.checkpoint(model, it, {"adam": opt}, info={"stage": stage, "step": next_i},
                              meta={"sampler": app.to_dict(), "cascade": cascade.to_dict(),
                                    "stopped_early": stopped_early})

    for stage in range(first_stage, 3):
        resuming = resumed is not None and stage == first_stage and first_i > 0
        if not resuming:
            if stage > 0:
                model.set_growth(stage, 0.0 if cfg.transition_iterations[stage] > 0 else 1.0)
            opt = new_adam()  # a fresh Adam at every expansion: the old moments belong to a smaller net
        data = levels[stage]
        n_stage = cfg.stage_iterations[stage]
        bar = tqdm(range(first_i if resuming else 0, n_stage + 1), desc=f"stage {stage} ({data.shape[-1]} px)",
                   mininterval=5, disable=not run.main)
        for i in bar:
            beta = beta_at(i, cfg.transition_iterations[stage]) if stage > 0 else 1.0
            model.set_growth(stage, beta)
            for k, (s_snap, i_snap) in enumerate(plan):
                if (s_snap, i_snap) == (stage, i):
                    with ema.applied():  # the weights a checkpoint taken now would hold
                        model.record_snapshot(k, it)
            if i == n_stage:
                break  # the end-of-stage snapshot is taken; no update
            if run.out_of_time():
                stopped_early = True
                break
            real = data[torch.randint(len(data), (cfg.batch_size,), generator=run.gen).to(device)]
            real = (real + cfg.data_noise * torch.randn_like(real)).clamp(-1, 1)
            model.requires_grad_(False)
            neg, chain_grad, chain_step = cascade_negatives(model, cfg.batch_size, stage, beta, cascade, run.gen,
                                    run.seed * 1_000_003 + it * 3, device)
            model.requires_grad_(True)
            terms = net.loss(real, neg, stage, beta, cfg.alpha)
            run.guard(it, "Lower --lr or --step-size (or raise --alpha)", {"loss": terms.loss},
                      {"e_real": terms.e_real, "e_fake": terms.e_fake})
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            param_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            opt.step()
            ema.update()
            if run.due(cfg.log_every, it):
                run.log(iteration=it, stage=stage, beta=beta, loss=terms.loss.item(), cd=terms.cd.item(),
                        e_real=terms.e_real.item(), e_fake=terms.e_fake.item())
                run.board.write(it, energy=model.stage_energy(stage, beta), real=real, neg=neg, loss=terms.loss,
                                grad_norm=param_norm, lr=learning_rate(opt), step_size=cfg.step_size,
                                sampler_grad_norm=chain_grad, step_norm=chain_step)
                bar.set_postfix(cd=f"{terms.cd.item():+.3f}", beta=f"{beta:.2f}")
            if run.due(cfg.sample_every, i):
                run.grid(upsample(upsample(neg)) if stage == 0 else upsample(neg) if stage == 1 else neg,
                         f"stage{stage}_{i:05d}")
            it += 1
            if run.due(cfg.checkpoint_every, it):
                checkpoint(stage, i + 1)
        bar.close()
        if stopped_early:
            checkpoint(stage, i)
            run.say(f"time limit of {cfg.minutes} min reached at stage {stage}, β = {model.beta:.2f}")
            break
        checkpoint(stage + 1, 0)
    return run.finish(run.out, f"{it} iterations")  # written at the end of the last stage run


main = command(CoarseToFineTrainConfig, train, CoarseToFineEBM.kind)
