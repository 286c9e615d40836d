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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz import checkpoints
from ebmviz.corruption import OCCLUSIONS, occlusion
from ebmviz.data import load_dataset_with_source
from ebmviz.device import pick, seed_everything
from ebmviz.models.triangle import TriangleConfig, TriangleModel, recovery_error
from ebmviz.sampling import LangevinConfig
from training.cli import field, parse_config
from training.common import History, provenance, save_grid

# The app's refinement settings written into every checkpoint: a few small, clipped steps. Longer or larger
# moves leave the generator's samples for blob-like minima of E (checkpoints/README.md has the numbers).
REFINE_DEFAULT = LangevinConfig(n_steps=10, step_size=1.0, noise_std=0.005, grad_clip=0.01, record_every=1)


@dataclass(frozen=True)
class TriangleTrainConfig:
    """Divergence-triangle training (E, I, G steps per batch)."""

    out: str = field("checkpoints/triangle-mnist.safetensors", "checkpoint to write")
    run_dir: str = field("runs/triangle", "sample grids go here")
    dataset: str = field("mnist", "mnist or fashion-mnist")
    epochs: int = field(200, "passes over the training images (upper bound)")
    minutes: float = field(40.0, "stop after this wall time (0: no limit)")
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
    seed: int = field(0, "seed for data order and noise")
    device: str = field("auto", "auto, cpu or cuda")
    log_every: int = field(20, "history row every n iterations")
    sample_every: int = field(500, "sample grid every n iterations")
    checkpoint_every: int = field(1000, "checkpoint every n iterations")
    keep: bool = field(False, "also keep each periodic checkpoint as run_dir/checkpoint_NNNNNN.safetensors")


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


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def train(cfg: TriangleTrainConfig) -> Path:
    seed_everything(cfg.seed)
    device = pick(cfg.device)
    ds = load_dataset_with_source(cfg.dataset, "train")
    clean = ds.images.to(device)
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
    model.data_mean.copy_(data.mean(0, keepdim=True))  # occluded runs: the mean of observed pixels
    gen_net, inf_net, e_net = model.generator, model.inference, model.energy_net
    opt_e = torch.optim.Adam(e_net.parameters(), lr=cfg.lr_e, betas=(cfg.beta1, 0.999))
    opt_i = torch.optim.Adam(inf_net.parameters(), lr=cfg.lr_i, betas=(cfg.beta1, 0.999))
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, 0.999),
                             weight_decay=cfg.weight_decay_g)
    scheds = [torch.optim.lr_scheduler.ExponentialLR(o, cfg.lr_gamma) for o in (opt_e, opt_i, opt_g)]
    gen = torch.Generator().manual_seed(cfg.seed)
    history, t0, it, epoch = History(), time.time(), 0, 0
    fixed_z = torch.randn(64, cfg.nz, generator=gen).to(device)
    run_dir = Path(cfg.run_dir)

    def checkpoint() -> Path:
        metrics = {}
        if hidden is not None:
            metrics = {"occlusion": cfg.occlusion, "hidden_share": float(hidden.float().mean()),
                       "recovery_error": float(recovery_error(data, clean, hidden).mean())}
        meta = {"dataset": {"name": cfg.dataset, "split": "train", "source": ds.source, "n_images": len(ds)},
                "train_config": asdict(cfg), "wall_time_s": round(time.time() - t0, 1), "iterations": it,
                "epochs": round(it / n_batches, 2), **provenance(device), "sampler": REFINE_DEFAULT.to_dict(),
                "history": history.downsample(400), "metrics": metrics,
                "title": "Divergence triangle: generator, inference and energy models"}
        path = checkpoints.save(model, cfg.out, meta)
        if cfg.keep:
            checkpoints.save(model, run_dir / f"checkpoint_{it:06d}.safetensors", meta)
        return path

    n_batches = len(data) // cfg.batch_size
    bar = tqdm(total=cfg.epochs * n_batches, desc="triangle", mininterval=5)
    out_of_time = False
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=gen).to(device)
        for b in range(n_batches):
            if cfg.minutes and time.time() - t0 > cfg.minutes * 60:
                out_of_time = True
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = data[idx]
            z = torch.randn(len(x), cfg.nz, generator=gen).to(device)
            eps = torch.randn(len(x), cfg.nz, generator=gen).to(device)
            # E step: push energy down on data, up on generator samples
            with torch.no_grad():
                fake = gen_net(z)
            step(opt_e, model.energy_loss(x, fake, cfg.energy_l2), e_net.parameters(), cfg.clip_grad_norm)
            # I step: variational (KL(Q‖P)) and sleep-phase (dream data from P) learning of q_φ
            recon, kl = model.vae_terms(x, eps)
            sleep = model.sleep_term(z, fake)
            i_loss = recon + cfg.kl_weight * kl.mean() + cfg.sleep_weight * sleep
            step(opt_i, i_loss, inf_net.parameters(), cfg.clip_grad_norm)
            # G step: reconstruct data, and chase the energy model (low E on its samples)
            recon_g, _ = model.vae_terms(x, eps)
            fake_g = gen_net(z)
            e_fake = e_net(fake_g).mean()
            sleep_g = model.sleep_term(z, fake_g)
            step(opt_g, recon_g + e_fake + cfg.sleep_weight * sleep_g, gen_net.parameters(), cfg.clip_grad_norm)
            if hidden is not None:  # one round of recovery: hidden pixels <- the current reconstruction
                with torch.no_grad():
                    data[idx] = torch.where(hidden[idx], model.reconstruct(x), x)
            if it % cfg.log_every == 0:
                with torch.no_grad():
                    e_real = e_net(x).mean()
                    mse = ((model.reconstruct(x) - x) / 2).pow(2).mean()  # [0, 1] scale
                gap = (e_fake - e_real).item()
                if hidden is not None:
                    extra = {"recovery_error": float(recovery_error(data[idx], clean[idx], hidden[idx]).mean())}
                else:
                    extra = {}
                history.log(iteration=it, epoch=epoch, recon=recon.item(), kl_z=kl.mean().item(),
                            kl_qp=recon.item() / (2 * model.config.obs_std ** 2) + kl.mean().item(),
                            sleep_nll=sleep.item(), e_real=e_real.item(), e_fake=e_fake.item(),
                            energy_gap=gap, mse=mse.item(), minutes=(time.time() - t0) / 60, **extra)
                bar.set_postfix(mse=f"{mse.item():.4f}", gap=f"{gap:+.2f}")
            if it % cfg.sample_every == 0:
                with torch.no_grad():
                    model.eval()
                    save_grid(gen_net(fixed_z), run_dir / f"samples_{it:06d}.png")
                    save_grid(torch.cat([x[:32], model.reconstruct(x[:32])]), run_dir / f"recon_{it:06d}.png")
                    model.train()
            it += 1  # iterations done; checkpoints record this count, as the short-run trainer does
            bar.update()
            if it % cfg.checkpoint_every == 0:
                model.eval()
                checkpoint()
                model.train()
        for s in scheds:
            s.step()
        if out_of_time:
            print(f"time limit of {cfg.minutes} min reached in epoch {epoch}")
            break
    bar.close()
    model.eval()
    path = checkpoint()
    print(f"wrote {path} after {it} iterations ({epoch + 1} epochs), {(time.time() - t0) / 60:.1f} min")
    return path


def main(argv: list[str], prog: str = "python -m training triangle") -> int:
    train(parse_config(TriangleTrainConfig, argv, prog))
    return 0
