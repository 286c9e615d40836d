"""Train a Denoising-EBM by Algorithm 1 of Zeng (2023): reconstruction updates, then maximum-likelihood updates.

One round, with σ_i drawn per image from the ladder σ_1 = 1 > … > σ_S = 0.01 (S = 128, geometric):
  lines 2–6    L times: φ by the DAE loss (eq. 1, weighted 1/σ²: mean 2·U_c(x, σ)), γ by eq. 13 on f_α(x̃, σ)
  lines 7–13   n chains: K Langevin steps on U_s from z⁰ ~ N(0, I), then T steps on U_c from x⁰ = h_γ(z_K)
  lines 14–15  γ by  mean U_s(f_α(x̃), σ) − mean U_s(z_K, σ)     (φ held fixed)
  lines 16–17  φ by  mean U_c(x, σ) − mean U_c(x_T, σ)           (γ held fixed)
Adam for φ and for γ (the paper's learning rate is 5e-5 for far longer runs; this port's default 2e-4 suits
a CPU hour). K and T default to 20 and 10 (the paper: 20 and 90): each pixel step costs a U-net forward and
backward pass over the chains, and 90 of them per round would leave a CPU hour a few hundred rounds. The two
maximum-likelihood losses carry a weight and an α·(U⁺² + U⁻²) term (as base.contrastive_loss): without them the
DAE learned to make U_c of its own samples unboundedly large (10¹⁵ within 200 rounds, the DAE loss with it).

Departure (``--codes``, the default): eq. 13's gradient also trains the encoder f_α, and φ and γ take one step on
the sum of the two reconstruction losses. With U-net skips the DAE denoises without its bottleneck, so when γ
alone learns (the paper's eq. 13, ``--no-codes``) z carries little of the digit: in the first shipped model
h_γ(f_α(x̃, σ)) was read as a confident digit for 2.6% of test digits at σ = 0.05, and the semantic stage could
only find the few codes h had learned to draw.

The TensorBoard log (``training.board``) has the image energy E(x) = U_c(x, σ₀) of the round's data and of its
chains' x_T (the negatives), the noise energy, the DAE loss, φ's last gradient norm and lr, and the x_T.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.models.base import contrastive_loss
from ebmviz.models.denoising import DenoisingConfig, DenoisingEBM, TwoStageConfig, training_chains
from training.board import grad_norm, learning_rate
from training.cli import command, field
from training.distributed import Group, Objective
from training.run import Epochs, Run, RunConfig, init_weights

OPTIMIZERS = ("dae", "decoder")  # φ = (α, β) and γ


@dataclass(frozen=True)
class DenoisingTrainConfig(RunConfig):
    """Denoising-EBM training (Algorithm 1)."""

    minutes: float = field(55.0, "stop after this wall time, time before a resume included (0: no limit)")
    log_every: int = field(10, "history row every n rounds")
    sample_every: int = field(200, "two-stage sample grid every n rounds")
    checkpoint_every: int = field(200, "checkpoint and resumable state every n rounds")
    rounds: int = field(100_000, "rounds of Algorithm 1 (upper bound; --minutes usually ends the run)")
    recon_steps: int = field(3, "L, reconstruction updates per round (the paper's 3)")
    batch_size: int = field(64, "images per reconstruction update")
    chains: int = field(32, "n, chains (and data images) per maximum-likelihood update")
    k_steps: int = field(20, "K, latent Langevin steps per round (the paper's 20)")
    latent_step: float = field(0.1, "η₁ (the paper's 0.1)")
    t_steps: int = field(10, "T, pixel Langevin steps per round (the paper: 90)")
    texture_step: float = field(0.5, "ε₂, pixel steps η₂ = ε₂·σ²")
    ml: bool = field(True, "the maximum-likelihood updates (lines 7–17); --no-ml trains the DAE and decoder only")
    ml_weight: float = field(0.1, "weight of φ's maximum-likelihood loss (lines 16–17) against the reconstruction "
                                  "ones")
    latent_ml_weight: float = field(0.1, "weight of γ's maximum-likelihood loss (lines 14–15)")
    ml_alpha: float = field(5e-4, "α of the α·(U⁺² + U⁻²) term that bounds both energies (at most 1/(2α) on samples)")
    codes: bool = field(True, "eq. 13 also trains the encoder f_α, so the code z carries what h_γ needs "
                              "(--no-codes: γ alone, as the paper)")
    uniformity: float = field(0.0, "weight of the codes' uniformity term on the sphere (with --codes)")
    project_codes: bool = field(True, "h_γ normalises any z as the codes are, so N(0, I) starts decode from the "
                                      "codes' sphere")
    lr: float = field(2e-4, "Adam learning rate of φ and γ")
    nz: int = field(16, "latent dimension")
    width: int = field(16, "U-net channels c")
    hidden: int = field(256, "h_γ's fully connected units")
    init: str = field("", "start from this checkpoint's weights (a Denoising-EBM's name or path, of the same sizes)")


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, opts: dict[str, torch.optim.Optimizer]) -> None:
    """Zero every optimiser's gradients, backpropagate ``loss`` and step ``opt`` alone (the others' parameters
    are held fixed, as lines 14–17 ask)."""
    for o in opts.values():
        o.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def reconstruction_update(model: DenoisingEBM, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor,
                          sigma: torch.Tensor, noise: torch.Tensor, codes: bool = False,
                          uniformity: float = 0.0, net: Objective | None = None) -> tuple[float, float, float]:
    """Lines 3–5 on a batch x (B, 1, 28, 28), σ (B,), ε (B, 1, 28, 28): (DAE loss, eq. 13, code uniformity).

    With ``codes`` eq. 13 is backpropagated into the encoder too (plus ``uniformity`` × the codes' uniformity) and
    one step updates φ and γ on the sum; the uniformity is NaN without ``codes``. ``net``: the losses through the
    run's ``Objective`` (several processes), else the model's own.
    """
    net = net or Objective(model, Group())
    if codes:
        dae, dec, uni = net(lambda m: (m.dae_loss(x, sigma, noise), *m.code_losses(x, sigma, noise)))
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        (dae + dec + uniformity * uni).backward()
        for o in opts.values():
            o.step()
        return dae.item(), dec.item(), uni.item()
    dae = net.dae_loss(x, sigma, noise)
    step(opts["dae"], dae, opts)
    dec = net.decoder_loss(x, sigma, noise)
    step(opts["decoder"], dec, opts)
    return dae.item(), dec.item(), float("nan")


def likelihood_update(model: DenoisingEBM, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor,
                      sigma: torch.Tensor, cfg: DenoisingTrainConfig, gen: torch.Generator,
                      net: Objective | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """Lines 7–17 on data x (n, 1, 28, 28) with σ (n,): the chains, then γ's and φ's maximum-likelihood steps.
    Returns the mean energies by name and the chains' x_T (n, 1, 28, 28)."""
    n, dev = len(x), x.device
    net = net or Objective(model, Group())
    z_k, x_t = training_chains(model, n, sigma, cfg.k_steps, cfg.latent_step, cfg.t_steps, cfg.texture_step, gen)
    e = [torch.randn(n, 1, 28, 28, generator=gen).to(dev) for _ in range(5)]  # the corruptions ε, in order
    with torch.no_grad():
        z_data = model.encode(x + sigma.view(-1, 1, 1, 1) * e[0], sigma)
    us_data, us_fake = net(lambda m: (m.semantic_energy(z_data, sigma, e[1]), m.semantic_energy(z_k, sigma, e[2])))
    step(opts["decoder"], cfg.latent_ml_weight * contrastive_loss(us_data, us_fake, cfg.ml_alpha).loss, opts)
    uc_data, uc_fake = net(lambda m: (m.texture_energy(x, sigma, e[3]), m.texture_energy(x_t, sigma, e[4])))
    step(opts["dae"], cfg.ml_weight * contrastive_loss(uc_data, uc_fake, cfg.ml_alpha).loss, opts)
    return {"us_data": us_data.mean().item(), "us_fake": us_fake.mean().item(),
            "uc_data": uc_data.mean().item(), "uc_fake": uc_fake.mean().item()}, x_t


def train(cfg: DenoisingTrainConfig) -> Path:
    run = Run(cfg, DenoisingEBM.kind)
    device = run.device
    (data,) = run.shard(run.dataset("train").images.to(device))
    model = DenoisingEBM(DenoisingConfig(nz=cfg.nz, width=cfg.width, hidden=cfg.hidden,
                                         project_codes=cfg.project_codes)).to(device)
    if cfg.init:
        init_weights(model, cfg.init, f"a Denoising-EBM with --nz {cfg.nz} --width {cfg.width} --hidden "
                                      f"{cfg.hidden} and project_codes={cfg.project_codes}")
    nets = {"dae": model.dae, "decoder": model.decoder}
    opts = {k: torch.optim.Adam(nets[k].parameters(), lr=cfg.lr) for k in OPTIMIZERS}
    ladder = model.sigmas().to(device)
    batches = Epochs(len(data), cfg.batch_size, run.gen)
    chain_batches = Epochs(len(data), cfg.chains, run.gen)
    sample_config = TwoStageConfig(k_steps=cfg.k_steps, latent_step=cfg.latent_step, texture_step=cfg.texture_step)
    rnd = 0
    if resumed := run.resume(model, opts):
        rnd = resumed.iteration
        batches.order, chain_batches.order = resumed.tensors.get("order"), resumed.tensors.get("chain_order")
    net = run.objective(model, partial=True)

    def draw_sigma(n: int) -> torch.Tensor:
        return ladder[torch.randint(len(ladder), (n,), generator=run.gen).to(device)]

    def checkpoint() -> Path:
        extra = {k: v for k, v in (("order", batches.order), ("chain_order", chain_batches.order)) if v is not None}
        return run.checkpoint(model, rnd, opts, tensors=extra,
                              meta={"rounds": rnd, "epochs": round(rnd * cfg.recon_steps / batches.per_epoch, 2),
                                    "two_stage": sample_config.to_dict()})

    bar = tqdm(total=cfg.rounds, initial=rnd, desc="denoising", mininterval=5, disable=not run.main)
    while rnd < cfg.rounds:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached after {rnd} rounds")
            break
        for i in range(cfg.recon_steps):
            _, idx = batches(rnd * cfg.recon_steps + i)
            x = data[idx.to(device)]
            noise = torch.randn(x.shape, generator=run.gen).to(device)
            dae, dec, uni = reconstruction_update(model, opts, x, draw_sigma(len(x)), noise, cfg.codes,
                                                  cfg.uniformity, net)
        row = {"round": rnd, "dae_loss": dae, "decoder_loss": dec} | ({"uniformity": uni} if cfg.codes else {})
        x_t = None
        if cfg.ml:
            _, idx = chain_batches(rnd)
            x = data[idx.to(device)]
            energies, x_t = likelihood_update(model, opts, x, draw_sigma(len(x)), cfg, run.gen, net)
            row |= energies
        run.guard(rnd, "Lower --lr, --latent-step or --texture-step (or raise --ml-alpha)",
                  {k: v for k, v in row.items() if k in ("dae_loss", "decoder_loss")},
                  {k: v for k, v in row.items() if k[:3] in ("us_", "uc_")})
        if run.due(cfg.log_every, rnd):
            run.log(**row)
            run.board.write(rnd, energy=model, real=x, neg=x_t, loss=dae, grad_norm=grad_norm(model.dae.parameters()),
                            lr=learning_rate(opts["dae"]))
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "round"})
        if run.main and run.due(cfg.sample_every, rnd):
            run.grid(torch.from_numpy(model.draw(32, seed=0, config=sample_config).final), f"samples_{rnd:06d}")
        rnd += 1
        bar.update()
        if run.due(cfg.checkpoint_every, rnd):
            checkpoint()
    bar.close()
    return run.finish(checkpoint(), f"{rnd} rounds")


main = command(DenoisingTrainConfig, train, DenoisingEBM.kind)
