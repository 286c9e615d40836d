"""Train the short-run Langevin EBM with a replay buffer (Du & Mordatch 2019; Lippe tutorial 8).

Per iteration (energy convention p ∝ exp(−E)):
  x⁺ = data + N(0, σ_data²), clamped to [-1, 1]
  x⁻ = K Langevin steps from replay-buffer states (each a fresh U(−1, 1) image with prob. 5%)
  L  = mean E(x⁺) − mean E(x⁻) + α·mean(E(x⁺)² + E(x⁻)²)     (contrastive divergence + L2)
Adam with β₁ = 0 and parameter-gradient norm clipping. ``--minutes`` bounds the wall time.
A killed run resumes from its last state file with ``--resume``. The TensorBoard log (``training.board``) holds
every training_log role: the energies, loss, gradient norm, lr, the sampler's s and mean ‖∇E‖ and ‖Δx‖, the
negatives and 64 replay-buffer states.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.images import from_u8, to_u8
from ebmviz.models.shortrun import ShortRunConfig, ShortRunEBM
from ebmviz.sampling import LangevinConfig, langevin_steps
from ebmviz.transforms import NEGATIVE_AUGMENTATIONS
from training.board import learning_rate
from training.cli import command, field
from training.run import Run, RunConfig, init_weights


@dataclass(frozen=True)
class ShortRunTrainConfig(RunConfig):
    """Short-run EBM training (replay buffer, short-run Langevin negatives, E² regulariser)."""

    iterations: int = field(100000, "upper bound on parameter updates")
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
    init: str = field("", "start from this checkpoint's weights (a shipped short-run model's name or a path)")
    nda: str = field("", "negative data augmentation: comma-separated transformations of real digits ("
                         + ", ".join(NEGATIVE_AUGMENTATIONS) + ") kept at least --nda-margin above the digits")
    nda_margin: float = field(1.0, "m of the augmentation hinge mean [E(x) − E(t(x)) + m]⁺ (with --nda)")
    nda_weight: float = field(1.0, "weight of the augmentation hinge in the loss (with --nda)")
    app_steps: int = field(256, "n_steps of the sampler the app starts with")


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
        old = from_u8(self.data[idx])
        keep = (torch.rand(n, generator=self.gen) >= reinit).view(n, 1, 1, 1)
        return torch.where(keep, old, fresh).to(device)

    def push(self, x: torch.Tensor) -> None:
        u8 = to_u8(x)
        if len(self.data) < self.size:
            self.data = torch.cat([self.data, u8])[: self.size]
            return
        n = len(u8)
        idx = (torch.arange(n) + self.head) % self.size
        self.data[idx] = u8
        self.head = int((self.head + n) % self.size)


DIVERGENCE_HINT = "Lower --lr or --step-size (or raise --alpha, which bounds the energies)"


def objective(model: ShortRunEBM, real: torch.Tensor, neg: torch.Tensor, aug: torch.Tensor | None,
              cfg: ShortRunTrainConfig):
    """(the contrastive terms, the augmentation hinge mean [E(x) − E(t(x)) + m]⁺ (0 without --nda)): t(x) kept at
    least m above the digit x in energy."""
    terms = model.loss(real, neg, cfg.alpha)
    if aug is None:
        return terms, torch.zeros((), device=real.device)
    return terms, torch.relu(model(real) - model(aug) + cfg.nda_margin).mean()


def train(cfg: ShortRunTrainConfig) -> Path:
    run = Run(cfg, ShortRunEBM.kind)
    device = run.device
    (data,) = run.shard(run.dataset("train").images.to(device))
    model = ShortRunEBM(ShortRunConfig(width=cfg.width, hidden=cfg.hidden)).to(device)
    if cfg.init:
        init_weights(model, cfg.init, f"a short-run EBM with --width {cfg.width} --hidden {cfg.hidden}")
    names = [n.strip() for n in cfg.nda.split(",") if n.strip()]
    if unknown := [n for n in names if n not in NEGATIVE_AUGMENTATIONS]:
        raise ValueError(f"--nda: unknown {', '.join(unknown)}; choose from {', '.join(NEGATIVE_AUGMENTATIONS)}")
    augment = [NEGATIVE_AUGMENTATIONS[n] for n in names]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    buffer = ReplayBuffer(cfg.buffer_size, run.gen)
    sampler = LangevinConfig(n_steps=cfg.k_steps, step_size=cfg.step_size,
                             noise_std=cfg.noise_std, grad_clip=cfg.grad_clip)
    app_sampler = LangevinConfig(n_steps=cfg.app_steps, step_size=cfg.step_size, noise_std=cfg.noise_std,
                                 grad_clip=cfg.grad_clip, record_every=4)
    start_it = 0
    if resumed := run.resume(model, {"adam": opt}):
        buffer.data, buffer.head, start_it = resumed.tensors["buffer"], resumed.info["buffer_head"], resumed.iteration
    net = run.objective(model)

    def checkpoint(it: int) -> Path:
        keep = model.config.replay_keep
        if len(buffer.data) >= keep:
            model.replay.copy_(buffer.data[-keep:].to(device))
        return run.checkpoint(model, it, {"adam": opt}, meta={"sampler": app_sampler.to_dict()},
                              tensors={"buffer": buffer.data}, info={"buffer_head": buffer.head})

    bar = tqdm(range(start_it, cfg.iterations), initial=start_it, total=cfg.iterations,
               desc="shortrun", mininterval=5, disable=not run.main)
    done = start_it  # iterations completed so far = the one a resumed run starts at
    for it in bar:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached at iteration {it}")
            break
        for g in opt.param_groups:
            g["lr"] = cfg.lr * cfg.lr_decay ** (it // 1000)
        real = data[torch.randint(len(data), (cfg.batch_size,), generator=run.gen).to(device)]
        real = (real + cfg.data_noise * torch.randn_like(real)).clamp(-1, 1)
        x0 = buffer.draw(cfg.batch_size, cfg.reinit, device)
        model.requires_grad_(False)
        grad_norm = step_norm = torch.zeros((), device=device)
        for st in langevin_steps(model, x0, sampler, seed=run.seed * 1_000_003 + it):
            neg = st.x
            grad_norm = grad_norm + st.grad_norm.mean() / cfg.k_steps
            step_norm = step_norm + st.step_norm.mean() / cfg.k_steps
        model.requires_grad_(True)
        buffer.push(neg)
        aug = None
        if augment:  # each digit's transform t(x), t drawn per digit
            pick = torch.randint(len(augment), (len(real),), generator=run.gen).tolist()
            aug = torch.cat([augment[k](real[i:i + 1]) for i, k in enumerate(pick)])
        terms, hinge = net(objective, real, neg, aug, cfg)
        loss = terms.loss + cfg.nda_weight * hinge
        run.guard(it, DIVERGENCE_HINT, {"loss": loss}, {"e_real": terms.e_real, "e_fake": terms.e_fake})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        param_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        lr = learning_rate(opt)
        opt.step()
        if run.due(cfg.log_every, it):
            run.log(iteration=it, loss=terms.loss.item(), cd=terms.cd.item(), e_real=terms.e_real.item(),
                    e_fake=terms.e_fake.item(), grad_norm=grad_norm.item(), nda_hinge=hinge.item())
            shown = torch.randperm(len(buffer.data), generator=torch.Generator().manual_seed(it))  # not run.gen
            run.board.write(it, energy=model, real=real, neg=neg, replay=buffer.data[shown[:cfg.log_images]],
                            loss=loss, grad_norm=param_norm, lr=lr, step_size=cfg.step_size,
                            sampler_grad_norm=grad_norm, step_norm=step_norm)
            bar.set_postfix(cd=f"{terms.cd.item():+.3f}", e_real=f"{terms.e_real.item():+.2f}")
        if run.due(cfg.sample_every, it):
            run.grid(neg, f"buffer_{it:06d}")
        done = it + 1
        if it and run.due(cfg.checkpoint_every, it):
            checkpoint(done)
    return run.finish(checkpoint(done), f"{done} iterations")


main = command(ShortRunTrainConfig, train, ShortRunEBM.kind)
