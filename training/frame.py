"""Train deep FRAME by the KL flow (maximum likelihood) or the JKO flow (wFRAME, ebmviz's reconstruction).

Per iteration (``ebmviz.models.frame``): the persistent particles (started from q = N(0, s²I), as the article
describes) take K steps of the flow (Langevin, or proximal JKO steps), then θ takes one step on
mean U(data) − mean U(particles) (+ λ·mean‖∇_x U(particles)‖² for JKO). ``--n-train 5`` (or 20) trains on that
many digits drawn with the seed (a few-shot run); 0 takes the whole training set. The history records per
iteration the energies of data and particles and their gap, the parameter-update norm ‖Δθ‖ and the particles'
mean step; the particles are stored in the model every ``--sample-every`` iterations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ebmviz.models.frame import FLOWS, FRAME, FlowConfig, FRAMEConfig
from ebmviz.sampling import LangevinConfig, steps_for
from training.cli import field, parse_config
from training.run import Run, RunConfig


@dataclass(frozen=True)
class FRAMETrainConfig(RunConfig):
    """FRAME / wFRAME training (persistent particles, one parameter step per K particle steps)."""

    minutes: float = field(25.0, "stop after this wall time, time before a resume included (0: no limit)")
    log_every: int = field(5, "history row every n iterations")
    sample_every: int = field(25, "sample grid and stored particle snapshot every n iterations")
    checkpoint_every: int = field(500, "checkpoint and resumable state every n iterations")
    iterations: int = field(3000, "parameter updates (upper bound)")
    flow: str = field("kl", f"particle flow: {' or '.join(FLOWS)} (kl: FRAME; jko: wFRAME as reconstructed here)")
    n_train: int = field(0, "train on this many digits drawn with the seed (5, 20: few-shot); 0: the whole set")
    n_particles: int = field(64, "persistent particles")
    batch_size: int = field(64, "data images per update (a few-shot set is repeated)")
    k_steps: int = field(20, "K particle steps per parameter update")
    step: float = field(0.01, "δ of the Langevin step (kl) or τ of the proximal step (jko)")
    inner_steps: int = field(3, "jko: gradient steps toward the proximal point")
    penalty: float = field(0.1, "jko: λ of the transport penalty mean‖∇_x U(particles)‖²")
    lr: float = field(1e-4, "Adam learning rate")
    beta1: float = field(0.5, "Adam β₁")
    ref_std: float = field(1.0, "s of the reference q = N(0, s²I)")
    width: int = field(32, "f_θ's conv channels")
    hidden: int = field(64, "f_θ's hidden units")


def train(cfg: FRAMETrainConfig) -> Path:
    run = Run(cfg, FRAME.kind)
    device = run.device
    data = run.dataset("train").images
    if cfg.n_train:
        data = data[torch.randperm(len(data), generator=run.gen)[: cfg.n_train]]
    data = data.to(device)
    model = FRAME(FRAMEConfig(width=cfg.width, hidden=cfg.hidden, ref_std=cfg.ref_std,
                              snapshot_size=min(32, cfg.n_particles))).to(device)
    if cfg.n_train:
        model.keep_training_images(data)
    flow = FlowConfig(flow=cfg.flow, k_steps=cfg.k_steps, step=cfg.step, inner_steps=cfg.inner_steps,
                      penalty=cfg.penalty)
    particle_cfg = flow.particle_config()
    # the app's Langevin page: exact Langevin at T = 1 with the flow's step, pixels kept in [−1, 1]
    app_sampler = LangevinConfig.at_temperature(cfg.step, 1.0, n_steps=200, grad_clip=None, clamp=(-1.0, 1.0),
                                                record_every=4)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    particles = model.reference(cfg.n_particles, run.gen).to(device)
    it = 0
    if resumed := run.resume(model, {"adam": opt}):
        it, particles = resumed.iteration, resumed.tensors["particles"].to(device)

    def checkpoint() -> Path:
        return run.checkpoint(model, it, {"adam": opt}, tensors={"particles": particles},
                              meta={"flow": asdict(flow), "n_train": cfg.n_train, "sampler": app_sampler.to_dict()})

    bar = tqdm(total=cfg.iterations, initial=it, desc=f"frame-{cfg.flow}", mininterval=5)
    while it < cfg.iterations:
        if run.out_of_time():
            print(f"time limit of {cfg.minutes} min reached at iteration {it}")
            break
        model.requires_grad_(False)
        step_sum = torch.zeros((), device=device)
        for st in steps_for(model, particles, particle_cfg, seed=cfg.seed * 1_000_003 + it):
            particles = st.x
            step_sum = step_sum + st.step_norm.mean()
        model.requires_grad_(True)
        batch = data[torch.randint(len(data), (cfg.batch_size,), generator=run.gen).to(device)]
        logging = run.due(cfg.log_every, it)
        before = torch.cat([p.detach().flatten() for p in model.parameters()]) if logging else None  # for ‖Δθ‖
        terms = model.parameter_terms(batch, particles, flow)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        opt.step()
        if logging:
            after = torch.cat([p.detach().flatten() for p in model.parameters()])
            run.log(iteration=it, e_data=terms.e_data.item(), e_particles=terms.e_particles.item(), gap=terms.gap,
                    update_norm=(after - before).norm().item(), particle_step=(step_sum / cfg.k_steps).item(),
                    penalty=terms.penalty.item())
            bar.set_postfix(gap=f"{terms.gap:+.3g}", e_data=f"{terms.e_data.item():+.3g}")
        if run.due(cfg.sample_every, it):
            run.grid(particles[:32].clamp(-1, 1), f"particles_{it:06d}")
            if model.snapshot_due(it):
                model.record_snapshot(it, particles[: model.config.snapshot_size].clamp(-1, 1))
        it += 1
        bar.update()
        if run.due(cfg.checkpoint_every, it):
            checkpoint()
    bar.close()
    path = checkpoint()
    print(f"wrote {path} after {it} iterations, {run.elapsed / 60:.1f} min")
    return path


def main(argv: list[str], prog: str = "python -m training frame") -> int:
    train(parse_config(FRAMETrainConfig, argv, prog))
    return 0
