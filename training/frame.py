"""Train deep FRAME by the KL flow (maximum likelihood) or the JKO flow (wFRAME, ebmviz's reconstruction).

Per iteration (``ebmviz.models.frame``): the persistent particles (started from q = N(0, s²I), as the article
describes) take K steps of the flow (Langevin, or proximal JKO steps), then θ takes one step on
mean U(data) − mean U(particles) (+ λ·mean‖∇_x U(particles)‖² for JKO). ``--n-train 5`` (or 20) trains on that
many digits drawn with the seed (a few-shot run); 0 takes the whole training set. The history records per
iteration the energies of data and particles and their gap, the parameter-update norm ‖Δθ‖ and the particles'
mean step; the particles are stored in the model every ``--sample-every`` iterations. The TensorBoard log
(``training.board``) has E of the first 64 training digits (a fixed x⁺) and of the particles (x⁻), the noise energy,
the loss, the gradient norm, lr, the flow's step (δ or τ) and the particles' mean step, and the particles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from ebmviz.models.frame import FLOWS, FRAME, FlowConfig, FlowLearner, FRAMEConfig
from ebmviz.sampling import LangevinConfig
from training.board import grad_norm, learning_rate
from training.cli import command, field
from training.run import Run, RunConfig


@dataclass(frozen=True)
class FRAMETrainConfig(RunConfig):
    """FRAME / wFRAME training (persistent particles, one parameter step per K particle steps)."""

    minutes: float = field(25.0, "stop after this wall time, time before a resume included (0: no limit)")
    max_energy: float = field(0.0, "stop when an energy's magnitude exceeds this (0: only non-finite values; the "
                                   "KL flow's collapse to huge energies is what the learning-dynamics page shows)")
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
    data = run.training_images(cfg.n_train).to(device)  # the whole few-shot set on every rank
    model = FRAME(FRAMEConfig(width=cfg.width, hidden=cfg.hidden, ref_std=cfg.ref_std,
                              snapshot_size=min(32, cfg.n_particles))).to(device)
    if cfg.n_train:
        model.keep_training_images(data)
    flow = FlowConfig(flow=cfg.flow, k_steps=cfg.k_steps, step=cfg.step, inner_steps=cfg.inner_steps,
                      penalty=cfg.penalty)
    # the app's Langevin page: exact Langevin at T = 1 with the flow's step, pixels kept in [−1, 1]
    app_sampler = LangevinConfig.at_temperature(cfg.step, 1.0, n_steps=200, grad_clip=None, clamp=(-1.0, 1.0),
                                                record_every=4)
    if not cfg.n_train:
        (data,) = run.shard(data)
    learner = FlowLearner(model, data, flow, run.gen, seed=run.seed, n_particles=cfg.n_particles,
                          batch_size=cfg.batch_size, lr=cfg.lr, beta1=cfg.beta1)
    if resumed := run.resume(model, {"adam": learner.optimizer}):
        learner.iteration, learner.particles = resumed.iteration, resumed.tensors["particles"].to(device)
    learner.objective = run.objective(model)

    def checkpoint() -> Path:
        return run.checkpoint(model, learner.iteration, {"adam": learner.optimizer},
                              tensors={"particles": learner.particles},
                              meta={"flow": asdict(flow), "n_train": cfg.n_train, "sampler": app_sampler.to_dict()})

    bar = tqdm(total=cfg.iterations, initial=learner.iteration, desc=f"frame-{cfg.flow}", mininterval=5,
               disable=not run.main)
    while (it := learner.iteration) < cfg.iterations:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached at iteration {it}")
            break
        logging = run.due(cfg.log_every, it)
        row = learner.step(measure_update=logging)  # copying θ for ‖Δθ‖ only on logged iterations
        run.guard(it, "Lower --step or --lr", {}, {"e_data": row.e_data, "e_particles": row.e_particles})
        if logging:
            run.log(**row.to_dict())
            penalty = cfg.penalty * row.penalty if cfg.flow == "jko" else 0.0  # the loss's λ term (JKO only)
            run.board.write(it, energy=model, real=learner.data[:64], neg=learner.particles,
                            loss=row.e_data - row.e_particles + penalty,
                            grad_norm=grad_norm(model.parameters()), lr=learning_rate(learner.optimizer),
                            step_size=cfg.step, step_norm=row.particle_step)
            bar.set_postfix(gap=f"{row.gap:+.3g}", e_data=f"{row.e_data:+.3g}")
        if run.due(cfg.sample_every, it):
            shown = learner.particles[:32].clamp(-1, 1)
            run.grid(shown, f"particles_{it:06d}")
            if model.snapshot_due(it):
                model.record_snapshot(it, shown[: model.config.snapshot_size])
        bar.update()
        if run.due(cfg.checkpoint_every, learner.iteration):
            checkpoint()
    bar.close()
    return run.finish(checkpoint(), f"{learner.iteration} iterations")


main = command(FRAMETrainConfig, train, FRAME.kind)
