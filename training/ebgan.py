"""Train an EBGAN (Zhao, Mathieu & LeCun 2017): autoencoder discriminator D and generator G, alternately.

Per iteration, on a batch x of data and z ~ N(0, I):
  D step  min_D  mean D(x) + mean [m − D(G(z))]⁺                (``EBGAN.discriminator_step``)
  G step  min_G  mean D(G(z)) + λ_PT·f_PT(Enc(G(z)))             (``EBGAN.generator_step``; --no-pt: λ_PT = 0)
Adam for each (lr 2e-4, β = (0.5, 0.999), as the public ports; --lr-end < 1 lowers both learning rates
linearly over the --epochs iterations, a choice of this port, not the paper's). The history logs L_D, L_G, D(real),
D(fake), the share of fakes at or above the margin (they give D no gradient) and f_PT (logged in
--no-pt runs too, as a measure of how alike the generator's samples are).
--translate N (a choice of this port, not the paper's): DiffAugment's translation (Zhao et al. 2020) against D
memorising a small training set. D sees every real digit and every fake, in both steps, moved by its own random
shift of up to N pixels each way, the gradients to G passing through the move. Generator samples at a fixed
latent batch are stored in the model every ``--sample-every`` iterations (``EBGAN.record_snapshot``).
The TensorBoard log (``training.board``) has D's energies of the batch (x⁺) and of G's samples at the fixed latent
batch drawn as the app draws them (x⁻, batch norm on running statistics), the noise energy, L_D, D's gradient norm
and lr, and those samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.models.ebgan import EBGAN, DiscriminatorTerms, EBGANConfig, GeneratorTerms
from ebmviz.transforms import random_shifts, translate
from training.board import grad_norm, learning_rate
from training.cli import command, field
from training.distributed import Group, Objective
from training.run import Epochs, Run, RunConfig

OPTIMIZERS = ("discriminator", "generator")  # the D and G steps, in the order they are taken


@dataclass(frozen=True)
class EBGANTrainConfig(RunConfig):
    """EBGAN training (a D step and a G step per batch)."""

    minutes: float = field(25.0, "stop after this wall time, time before a resume included (0: no limit)")
    log_every: int = field(20, "history row every n iterations")
    sample_every: int = field(250, "sample grid and stored generator snapshot every n iterations")
    checkpoint_every: int = field(1000, "checkpoint and resumable state every n iterations")
    epochs: int = field(400, "passes over the training images (upper bound)")
    batch_size: int = field(64, "images per update")
    pt: bool = field(True, "pulling-away term in G's loss (EBGAN-PT); --no-pt for plain EBGAN")
    pt_weight: float = field(0.1, "λ_PT, the pulling-away term's weight")
    margin: float = field(0.1, "m, in D's units (per-pixel squared error on the [0, 1] scale)")
    lr_d: float = field(2e-4, "Adam learning rate of D")
    lr_g: float = field(2e-4, "Adam learning rate of G")
    beta1: float = field(0.5, "Adam β₁ of both")
    lr_end: float = field(1.0, "learning rates fall linearly, per iteration, to this fraction of their start at "
                               "the end of --epochs (1: constant)")
    nz: int = field(32, "latent dimension of G")
    width: int = field(32, "conv channels c")
    hidden: int = field(256, "G's fully connected units")
    n_train: int = field(0, "train on this many digits drawn with the seed (5: the few-shot contrast of the "
                                "learning-dynamics page, the same digits as FRAME's 5-digit runs); 0: the whole set")
    code: int = field(32, "dimension of D's code S")
    translate: int = field(0, "DiffAugment: D sees real and fake images moved by up to this many pixels each way, "
                              "a fresh random shift per image and step (0: off)")


def step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """One optimiser step on ``loss``; returns the gradient norm of the optimiser's parameters it stepped on."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = grad_norm(p for g in opt.param_groups for p in g["params"])
    opt.step()
    return norm


def update(model: EBGAN, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor, z: torch.Tensor, margin: float,
           pt_weight: float, net: Objective | None = None,
           shifts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
           ) -> tuple[DiscriminatorTerms, GeneratorTerms, dict[str, torch.Tensor]]:
    """One iteration: the D step on data x (B, 1, 28, 28) and G(z) (z (B, nz)), then the G step on the same z; the
    third value is each step's parameter-gradient norm by optimiser name.
    ``net``: the losses through the run's ``Objective`` (several processes), else the model's own. ``shifts``: (B, 2)
    pixel moves of the real images, of the fakes in D's step and of the fakes in G's step (DiffAugment), or None."""
    net = net or Objective(model, Group())
    with torch.no_grad():
        fake = model.generator(z)
        if shifts is not None:
            x, fake = translate(x, shifts[0]), translate(fake, shifts[1])
    d_terms = net.discriminator_step(x, fake, margin)
    norms = {"discriminator": step(opts["discriminator"], d_terms.loss)}
    g_shift = None if shifts is None else shifts[2]
    g_terms = net.generator_step(z, pt_weight, g_shift)  # D's parameters get gradients here too; D's step zeroes them
    norms["generator"] = step(opts["generator"], g_terms.loss)
    return d_terms, g_terms, norms


def train(cfg: EBGANTrainConfig) -> Path:
    run = Run(cfg, EBGAN.kind)
    device = run.device
    data = run.training_images(cfg.n_train)
    if cfg.n_train:  # a few-shot set, repeated so that an epoch holds 10 batches (every rank the same digits)
        data = data.repeat(math.ceil(10 * cfg.batch_size / len(data)), 1, 1, 1)
    else:
        (data,) = run.shard(data)
    data = data.to(device)
    model = EBGAN(EBGANConfig(nz=cfg.nz, width=cfg.width, hidden=cfg.hidden, code=cfg.code)).to(device)
    nets = {"discriminator": model.discriminator, "generator": model.generator}
    lrs = {"discriminator": cfg.lr_d, "generator": cfg.lr_g}
    opts = {k: torch.optim.Adam(nets[k].parameters(), lr=lrs[k], betas=(cfg.beta1, 0.999)) for k in OPTIMIZERS}
    fixed_z = torch.randn(model.config.snapshot_size, cfg.nz, generator=run.gen).to(device)
    batches = Epochs(len(data), cfg.batch_size, run.gen)
    n_batches, it = batches.per_epoch, 0
    scheds = {k: torch.optim.lr_scheduler.LinearLR(o, 1.0, cfg.lr_end, cfg.epochs * n_batches) for k, o in opts.items()}
    pt_weight = cfg.pt_weight if cfg.pt else 0.0
    if resumed := run.resume(model, opts, scheds):
        it, batches.order = resumed.iteration, resumed.tensors.get("order")
    net = run.objective(model, partial=True)

    def checkpoint() -> Path:
        extra = {} if batches.order is None else {"order": batches.order}
        return run.checkpoint(model, it, opts, scheds, tensors=extra,
                              meta={"epochs": round(it / n_batches, 2), "pt": cfg.pt, "n_train": cfg.n_train,
                                    "margin": cfg.margin, "translate": cfg.translate,
                                    "refinement": EBGAN.draw_default.to_dict()})

    def samples() -> torch.Tensor:
        """G(fixed z) (snapshot_size, 1, 28, 28), as the app draws: batch norm on its running statistics."""
        model.eval()
        with torch.no_grad():
            images = model.generator(fixed_z)
        model.train()
        return images

    def snapshot() -> None:
        images = samples()
        run.grid(images, f"samples_{it:06d}")
        if model.snapshot_due(it):  # by the cadence only, so a resumed run stores what an unbroken one does
            model.record_snapshot(it, images)

    bar = tqdm(total=cfg.epochs * n_batches, initial=it, desc="ebgan", mininterval=5, disable=not run.main)
    while it < cfg.epochs * n_batches:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached in epoch {it // n_batches}")
            break
        epoch, idx = batches(it)
        x = data[idx.to(device)]
        z = torch.randn(len(x), cfg.nz, generator=run.gen).to(device)
        shifts = None if not cfg.translate else tuple(
            random_shifts(len(x), cfg.translate, run.gen).to(device) for _ in range(3))
        d_terms, g_terms, norms = update(model, opts, x, z, cfg.margin, pt_weight, net, shifts)
        run.guard(it, "Lower --lr-d and --lr-g", {"loss_d": d_terms.loss, "loss_g": g_terms.loss},
                  {"d_real": d_terms.d_real.mean(), "d_fake": d_terms.d_fake.mean()})
        if run.due(cfg.log_every, it):
            run.log(iteration=it, epoch=epoch, loss_d=d_terms.loss.item(), loss_g=g_terms.loss.item(),
                    d_real=d_terms.d_real.mean().item(), d_fake=d_terms.d_fake.mean().item(),
                    above_margin=d_terms.above_margin, pt=g_terms.pt.item())
            run.board.write(it, energy=model, real=x, neg=samples(), loss=d_terms.loss,
                            grad_norm=norms["discriminator"], lr=learning_rate(opts["discriminator"]))
            bar.set_postfix(d_real=f"{d_terms.d_real.mean().item():.4f}", d_fake=f"{d_terms.d_fake.mean().item():.3f}",
                            pt=f"{g_terms.pt.item():.3f}")
        if run.due(cfg.sample_every, it):
            snapshot()
        it += 1  # iterations done; checkpoints record this count
        for s in scheds.values():
            s.step()
        bar.update()
        if run.due(cfg.checkpoint_every, it):
            checkpoint()
    bar.close()
    model.eval()
    return run.finish(checkpoint(), f"{it} iterations ({it / n_batches:.2f} epochs)")


main = command(EBGANTrainConfig, train, EBGAN.kind)
