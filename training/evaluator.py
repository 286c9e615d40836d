"""Train the evaluator: a digit classifier with an 11th "not a digit" class.

Each batch mixes augmented digits (small random affine warps) with junk made on the fly, so
the evaluator learns to give junk low digit confidence:
  uniform noise · Gaussian noise · heavy blurs of digits · blends of two different digits ·
  blank / saturated images · inverted digits · random pixel shuffles of a digit.
The history has a row per epoch (held-out accuracy); the TensorBoard log (``training.board``) has the loss, the
gradient norm and lr every --log-every iterations (a classifier: no energies, no negatives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ebmviz.analysis.metrics import CONFIDENT, classify
from ebmviz.models.evaluator import JUNK, Evaluator, EvaluatorConfig
from training.board import grad_norm, learning_rate
from training.cli import command, field
from training.run import Epochs, Run, RunConfig


@dataclass(frozen=True)
class EvaluatorTrainConfig(RunConfig):
    """Evaluator training (classifier + "not a digit" class)."""

    minutes: float = field(0.0, "stop after this wall time, time before a resume included (0: no limit)")
    checkpoint_every: int = field(0, "checkpoint and resumable state every n iterations (0: at the end "
                                     "of every epoch)")
    epochs: int = field(12, "passes over the training digits")
    batch_size: int = field(128, "digits per batch (junk is added on top)")
    junk_share: float = field(0.3, "junk images per digit in a batch")
    lr: float = field(1e-3, "Adam learning rate (cosine decay to 0)")
    width: int = field(32, "classifier width")


def random_affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotate ±12°, scale 0.9–1.1, shift ±2 px: (B, 1, 28, 28) -> same, background −1."""
    b = x.shape[0]
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(12)
    sc = 1 + (torch.rand(b, generator=gen) * 2 - 1) * 0.1
    sh = (torch.rand(b, 2, generator=gen) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, sh[:, 0]], 1), torch.stack([sin, cos, sh[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype).pow(2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.device)
    y = F.conv2d(F.pad(x + 1, (r, r, 0, 0)), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, r, r)), k.view(1, 1, -1, 1)) - 1


def make_junk(digits: torch.Tensor, labels: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n junk images (n, 1, 28, 28) in [-1, 1], built from the kinds in the module docstring."""
    kinds = torch.randint(7, (n,), generator=gen)
    out = torch.empty(n, 1, 28, 28)
    pick_ = lambda k: digits[torch.randint(len(digits), (k,), generator=gen)]  # noqa: E731
    for k in range(7):
        idx = (kinds == k).nonzero().flatten()
        m = len(idx)
        if m == 0:
            continue
        if k == 0:  # uniform noise
            v = torch.rand(m, 1, 28, 28, generator=gen) * 2 - 1
        elif k == 1:  # Gaussian noise around a random grey level
            v = (torch.randn(m, 1, 28, 28, generator=gen) * 0.5 + torch.rand(m, 1, 1, 1, generator=gen) - 0.5)
        elif k == 2:  # heavy blur of a digit
            v = gaussian_blur(pick_(m), sigma=float(2.0 + 1.5 * torch.rand(1, generator=gen)))
        elif k == 3:  # blend of two digits of different classes
            i = torch.randint(len(digits), (m,), generator=gen)
            j = torch.randint(len(digits), (m,), generator=gen)
            j = torch.where(labels[i] == labels[j], (j + 1) % len(digits), j)
            w = 0.35 + 0.3 * torch.rand(m, 1, 1, 1, generator=gen)
            a, b = digits[i], digits[j]
            v = torch.where(torch.rand(m, 1, 1, 1, generator=gen) < 0.5, w * a + (1 - w) * b, torch.maximum(a, b))
        elif k == 4:  # blank, saturated, or constant grey
            v = (torch.rand(m, 1, 1, 1, generator=gen) * 2 - 1).expand(m, 1, 28, 28).clone()
            v = v + 0.05 * torch.randn(m, 1, 28, 28, generator=gen)
        elif k == 5:  # inverted digit
            v = -pick_(m)
        else:  # digit with its pixels shuffled
            d = pick_(m).flatten(1)
            perm = torch.argsort(torch.rand(m, 784, generator=gen), dim=1)
            v = torch.gather(d, 1, perm).view(m, 1, 28, 28)
        out[idx] = v.clamp(-1, 1)
    return out


def evaluate(model: Evaluator, images: torch.Tensor, labels: torch.Tensor) -> dict:
    pred = classify(model, images)
    return {"accuracy": float((torch.from_numpy(pred.label) == labels.cpu()).float().mean()),
            "confident_share": float((pred.confidence > CONFIDENT).mean())}


def train(cfg: EvaluatorTrainConfig) -> Path:
    run = Run(cfg, Evaluator.kind)
    device = run.device
    train_ds, test_ds = run.dataset("train"), run.dataset("test")
    x, y = run.shard(train_ds.images, train_ds.labels)
    model = Evaluator(EvaluatorConfig(width=cfg.width)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batches = Epochs(len(x), cfg.batch_size, run.gen, drop_last=False)
    per_epoch = batches.per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * per_epoch)
    n_junk, it = int(cfg.batch_size * cfg.junk_share), 0
    if resumed := run.resume(model, {"adam": opt}, {"cosine": sched}):
        it, batches.order = resumed.iteration, resumed.tensors.get("order")
    net = run.objective(model)
    every = cfg.checkpoint_every or per_epoch

    def checkpoint(metrics: dict | None = None) -> Path:
        return run.checkpoint(model, it, {"adam": opt}, {"cosine": sched}, meta={"metrics": metrics or {}},
                              tensors={} if batches.order is None else {"order": batches.order})

    bar = tqdm(total=cfg.epochs * per_epoch, initial=it, desc="evaluator", mininterval=5, disable=not run.main)
    while it < cfg.epochs * per_epoch:
        if run.out_of_time():
            run.say(f"time limit of {cfg.minutes} min reached in epoch {it // per_epoch}")
            break
        epoch, idx = batches(it)
        model.train()
        xb = random_affine(x[idx], run.gen)
        junk = make_junk(x, y, n_junk, run.gen)
        inputs = torch.cat([xb, junk]).to(device)
        targets = torch.cat([y[idx], torch.full((n_junk,), JUNK)]).to(device)
        loss = net.loss(inputs, targets)
        run.guard(it, "Lower --lr", {"loss": loss})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lr = learning_rate(opt)
        opt.step()
        if run.due(cfg.log_every, it):
            run.board.write(it, loss=loss, grad_norm=grad_norm(model.parameters()), lr=lr)
        sched.step()
        bar.update(1)
        it += 1
        if it % per_epoch == 0:  # the end of an epoch: held-out scores
            model.eval()
            m = evaluate(model, test_ds.images.to(device), test_ds.labels.to(device))
            run.log(epoch=epoch, loss=loss.item(), **m)
            bar.set_postfix(acc=f"{m['accuracy']:.3f}", conf=f"{m['confident_share']:.3f}")
        if run.due(every, it):
            checkpoint()
    bar.close()
    model.eval()
    metrics = evaluate(model, test_ds.images.to(device), test_ds.labels.to(device))
    junk = make_junk(test_ds.images, test_ds.labels, 1000, torch.Generator().manual_seed(1))
    metrics["junk_confident_share"] = float((classify(model, junk.to(device)).confidence > CONFIDENT).mean())
    return run.finish(checkpoint(metrics), metrics=metrics)


main = command(EvaluatorTrainConfig, train, Evaluator.kind)
