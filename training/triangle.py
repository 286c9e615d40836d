"""Train the divergence triangle: energy E_α, generator g_θ and inference q_φ jointly (Han et al. 2019).

Per iteration, as Algorithm 1 and the public code order the updates (each term is re-evaluated
with the current networks just before its step):
  E step  min_α  mean E(x) − mean E(g(z))                          (max_α KL(P‖Π) − KL(Q‖Π))
  I step  min_φ  ‖g(z̃) − x‖² + w·KL_z + 0.1·(−log q_φ(z|g(z)))   (KL(Q‖P), sleep phase)
  G step  min_θ  ‖g(z̃) − x‖² + mean E(g(z)) + 0.1·(−log q_φ(z|g(z)))         (KL(Q‖P) + KL(P‖Π))
with z ~ N(0, I), z̃ = μ_φ(x) + σ_φ(x)·ε, w = 1 (the ELBO; the public code's element mean is w = 1/d).
Adam (β₁ = 0.5) per network, gradient norms clipped at 100, learning rates decayed per epoch. The
history logs KL(Q‖P) (up to constants), the energy gap E_P[E] − E_Q[E], the sleep NLL, the
reconstruction error and each step's loss.

With --occlusion NAME the run learns from incomplete images, as the paper's Section 4.3: every
training image keeps one fixed occlusion; its hidden pixels start at the mean of the observed ones
and, after each batch's G step, are replaced by the current reconstruction g(μ_φ(x)). The three
steps see these gradually recovered images; the history logs the recovery error on hidden pixels
(Table III's mean |x − x*| relative to the pixel range); only that score ever reads the true pixels.

The TensorBoard log (``training.board``) has E_α of the batch (x⁺) and of g_θ at the fixed latent batch drawn as
the app draws them (x⁻, batch norm on running statistics), the noise energy, the E step's loss, gradient norm
(before clipping) and lr, and those samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.models.base import ContrastiveLoss
from ebmviz.models.triangle import (
    GeneratorTerms,
    InferenceTerms,
    TriangleConfig,
    TriangleModel,
    TriangleWeights,
    recovery_error,
)
from ebmviz.transforms import OCCLUSIONS, occlusion
from training.board import learning_rate
from training.cli import command, field
from training.distributed import Group, Objective
from training.run import Epochs, Run, RunConfig

OPTIMIZERS = ("energy", "inference", "generator")  # the E, I and G steps, in the order they are taken


@dataclass(frozen=True)
class TriangleTrainConfig(RunConfig):
    """Divergence-triangle training (E, I, G steps per batch)."""

    minutes: float = field(40.0, "stop after this wall time, time before a resume included (0: no limit)")
    log_every: int = field(20, "history row every n iterations")
    checkpoint_every: int = field(1000, "checkpoint and resumable state every n iterations")
    epochs: int = field(200, "passes over the training images (upper bound)")
    batch_size: int = field(100, "images per update")
    lr_e: float = field(1e-4, "Adam learning rate of E")
    lr_g: float = field(3e-4, "Adam learning rate of G")
    lr_i: float = field(3e-4, "Adam learning rate of I")
    beta1: float = field(0.5, "Adam β₁ of all three")
    weight_decay_g: float = field(5e-4, "weight decay of G")
    lr_gamma: float = field(0.998, "learning-rate decay per epoch")
    clip_grad_norm: float = field(100.0, "clip each network's parameter-gradient norm")
    sleep_weight: float = field(0.1, "weight of the sleep-phase NLL in the I and G steps")
    energy_l2: float = field(0.0, "weight of an E² regulariser in the E step (0: as the paper)")
    occlusion: str = field("", "learn from incomplete images: P.5, P.7, MB10, B9 or B13 ('' = complete)")
    kl_weight: float = field(1.0, "weight of KL(q_φ(z|x)‖N(0, I)) summed over z; the public code's "
                                  "element mean is 1/nz")
    nz: int = field(32, "latent dimension d")
    width: int = field(32, "conv channels c")
    hidden: int = field(256, "fully connected units")

    @property
    def weights(self) -> TriangleWeights:
        return TriangleWeights(sleep_weight=self.sleep_weight, kl_weight=self.kl_weight, energy_l2=self.energy_l2)


def init_weights(module: torch.nn.Module) -> None:
    """N(0, 0.02) weights (BatchNorm: N(1, 0.02)), zero biases, as the public code."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            torch.nn.init.normal_(m.weight, 1.0, 0.02)
            torch.nn.init.zeros_(m.bias)


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float) -> torch.Tensor:
    """One optimiser step on ``loss`` over the optimiser's own parameters, their gradient norm clipped; returns
    that norm before clipping."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], clip)
    opt.step()
    return norm


def update(model: TriangleModel, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor, z: torch.Tensor,
           eps: torch.Tensor, w: TriangleWeights, clip: float,
           net: Objective | None = None
           ) -> tuple[ContrastiveLoss, InferenceTerms, GeneratorTerms, dict[str, torch.Tensor]]:
    """One iteration: the E, I and G steps in turn, each on its loss from the model, evaluated afresh; the fourth
    value is each step's parameter-gradient norm (before clipping) by optimiser name.

    x (B, 1, 28, 28) data, z (B, d) prior draws, ε (B, d) for z̃ = μ + σ·ε; ``opts`` by ``OPTIMIZERS``.
    ``net``: the losses through the run's ``Objective`` (several processes), else the model's own.
    """
    net = net or Objective(model, Group())
    with torch.no_grad():
        fake = model.generator(z)
    e_terms = net.energy_step(x, fake, w)  # push energy down on data, up on generator samples
    norms = {"energy": step(opts["energy"], e_terms.loss, clip)}
    i_terms = net.inference_step(x, z, fake, eps, w)  # variational (KL(Q‖P)) and sleep-phase learning of q_φ
    norms["inference"] = step(opts["inference"], i_terms.loss, clip)
    g_terms = net.generator_step(x, z, eps, w)  # reconstruct data, and chase the energy model
    norms["generator"] = step(opts["generator"], g_terms.loss, clip)
    return e_terms, i_terms, g_terms, norms


def train(cfg: TriangleTrainConfig) -> Path:
    run = Run(cfg, TriangleModel.kind)
    device = run.device
    (clean,) = run.shard(run.dataset("train").images.to(device))
    data, hidden = clean, None
    if cfg.occlusion:
        if cfg.occlusion not in OCCLUSIONS:
            raise SystemExit(f"--occlusion: unknown {cfg.occlusion!r}; choose one of {', '.join(OCCLUSIONS)}")
        _, hidden = occlusion(cfg.occlusion, clean.cpu(), seed=cfg.seed)
        hidden = hidden.to(device)
        observed_mean = (clean * ~hidden).sum(0, keepdim=True) / (~hidden).sum(0, keepdim=True).clamp_min(1)
        data = torch.where(hidden, observed_mean.expand_as(clean), clean)  # filled in as training goes
    model = TriangleModel(TriangleConfig(nz=cfg.nz, width=cfg.width, hidden=cfg.hidden)).to(device)
    init_weights(model)
    model.data_mean.copy_(run.group.average(data.mean(0, keepdim=True)))  # occluded: of observed pixels; all ranks
    lrs = {"energy": cfg.lr_e, "inference": cfg.lr_i, "generator": cfg.lr_g}
    nets = {"energy": model.energy_net, "inference": model.inference, "generator": model.generator}
    opts = {k: torch.optim.Adam(nets[k].parameters(), lr=lrs[k], betas=(cfg.beta1, 0.999),
                                weight_decay=cfg.weight_decay_g if k == "generator" else 0.0) for k in OPTIMIZERS}
    scheds = {k: torch.optim.lr_scheduler.ExponentialLR(o, cfg.lr_gamma) for k, o in opts.items()}
    fixed_z = torch.randn(64, cfg.nz, generator=run.gen).to(device)
    batches = Epochs(len(data), cfg.batch_size, run.gen)
    n_batches, it = batches.per_epoch, 0
    if resumed := run.resume(model, opts, scheds):
        it, batches.order = resumed.iteration, resumed.tensors.get("order")
        if hidden is not None:
            data = resumed.tensors["data"].to(device)
    net = run.objective(model, partial=True)

    def checkpoint() -> Path:
        metrics = {}
        if hidden is not None:
            metrics = {"occlusion": cfg.occlusion, "hidden_share": float(hidden.float().mean()),
                       "recovery_error": float(recovery_error(data, clean, hidden).mean())}
        extra = {} if batches.order is None else {"order": batches.order}  # to resume mid-epoch
        if hidden is not None:
            extra["data"] = data  # the training images as recovered so far
        return run.checkpoint(model, it, opts, scheds, tensors=extra,
                              meta={"epochs": round(it / n_batches, 2), "metrics": metrics,
                                    "sampler": TriangleModel.draw_default.to_dict()})

    bar = tqdm(total=cfg.epochs * n_batches, initial=it, desc="triangle", mininterval=5, disable=not run.main)
    while it < cfg.epochs * n_batches:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached in epoch {it // n_batches}")
            break
        epoch, idx = batches(it)
        idx = idx.to(device)
        x = data[idx]
        z = torch.randn(len(x), cfg.nz, generator=run.gen).to(device)
        eps = torch.randn(len(x), cfg.nz, generator=run.gen).to(device)
        e_terms, i_terms, g_terms, norms = update(model, opts, x, z, eps, cfg.weights, cfg.clip_grad_norm, net)
        run.guard(it, "Lower --lr-e, --lr-i and --lr-g", {"loss_e": e_terms.loss, "loss_i": i_terms.loss,
                                                         "loss_g": g_terms.loss},
                  {"e_real": e_terms.e_real, "e_fake": e_terms.e_fake})
        if hidden is not None:  # one round of recovery: hidden pixels <- the current reconstruction
            with torch.no_grad():
                data[idx] = torch.where(hidden[idx], model.reconstruct(x), x)
        if run.due(cfg.log_every, it):
            with torch.no_grad():
                e_real = model.energy_net(x).mean()
                mse = ((model.reconstruct(x) - x) / 2).pow(2).mean()  # [0, 1] scale
            gap = (g_terms.e_fake - e_real).item()
            extra = {}
            if hidden is not None:
                extra = {"recovery_error": float(recovery_error(data[idx], clean[idx], hidden[idx]).mean())}
            run.log(iteration=it, epoch=epoch, recon=i_terms.recon.item(), kl_z=i_terms.kl_z.item(),
                    kl_qp=model.kl_qp(i_terms).item(), sleep_nll=i_terms.sleep_nll.item(), e_real=e_real.item(),
                    e_fake=g_terms.e_fake.item(), energy_gap=gap, mse=mse.item(), **extra)
            model.eval()  # g_θ's batch norm on running statistics, as the app draws
            with torch.no_grad():
                fakes = model.generator(fixed_z)
            model.train()
            run.board.write(it, energy=model.energy_net, real=x, neg=fakes, loss=e_terms.loss,
                            grad_norm=norms["energy"], lr=learning_rate(opts["energy"]))
            bar.set_postfix(mse=f"{mse.item():.4f}", gap=f"{gap:+.2f}")
        if run.due(cfg.sample_every, it):
            with torch.no_grad():
                model.eval()
                run.grid(model.generator(fixed_z), f"samples_{it:06d}")
                run.grid(torch.cat([x[:32], model.reconstruct(x[:32])]), f"recon_{it:06d}")
                model.train()
        it += 1  # iterations done; checkpoints record this count
        bar.update()
        if it % n_batches == 0:
            for s in scheds.values():
                s.step()
        if run.due(cfg.checkpoint_every, it):
            checkpoint()
    bar.close()
    model.eval()
    return run.finish(checkpoint(), f"{it} iterations ({it / n_batches:.2f} epochs)")


main = command(TriangleTrainConfig, train, TriangleModel.kind)
