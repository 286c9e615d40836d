"""Steps/s of ebmviz.sampling.langevin against a bare torch.autograd.grad loop, in one run.

Same network (the shipped short-run EBM), same batch (64), same number of steps; langevin records
every 10 steps and keeps all its per-step diagnostics. Runs alternate and the medians are compared,
so machine noise hits both alike. The last line is the ratio (langevin / bare).

``--checkpoint rgb-fixture`` (or ``gray-fixture``) measures a user model instead (tests/fixtures, loaded as
``ebmviz run --model`` loads it): ebmviz samples through its ``UserEnergy`` wrapper, the bare loop calls the user's
own module, as the user's own script would.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints  # noqa: E402
from ebmviz.sampling import LangevinConfig, langevin  # noqa: E402
from ebmviz.user_model import load_user_model  # noqa: E402
from tests.user_models import GRAY, RGB  # noqa: E402

FIXTURES = {"rgb-fixture": RGB, "gray-fixture": GRAY}


def bare_loop(energy, x0, cfg: LangevinConfig, seed: int) -> torch.Tensor:
    """The minimal ULA loop: autograd.grad, clip, step, noise, clamp. No records, no checks."""
    gen = torch.Generator().manual_seed(seed)
    x = x0.clone()
    for _ in range(cfg.n_steps):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), x)
        noise = torch.randn(x.shape, generator=gen)
        x = (x - cfg.step_size * g.clamp(-cfg.grad_clip, cfg.grad_clip) + cfg.noise_std * noise).clamp(-1, 1)
    return x.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="shortrun-mnist")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    if args.checkpoint in FIXTURES:
        model = load_user_model(FIXTURES[args.checkpoint])
        bare_energy = model.net  # the user's own module
    else:
        model = bare_energy = checkpoints.load(args.checkpoint)
    cfg = LangevinConfig(n_steps=args.steps, record_every=10)
    x0 = torch.rand(args.batch, *model.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    times = {"bare": [], "langevin": []}
    runs = {"bare": lambda: bare_loop(bare_energy, x0, cfg, 0), "langevin": lambda: langevin(model, x0, cfg, 0)}
    for name in runs:  # warm-up
        runs[name]()
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    rate = {k: args.steps / statistics.median(v) for k, v in times.items()}
    shape = "×".join(map(str, model.image_shape))
    print(f"network: {args.checkpoint} {shape}, batch {args.batch}, {args.steps} steps, record every 10, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"bare torch.autograd.grad loop: {rate['bare']:.1f} steps/s")
    print(f"ebmviz.sampling.langevin:      {rate['langevin']:.1f} steps/s")
    print(f"ratio: {rate['langevin'] / rate['bare']:.2f}")


if __name__ == "__main__":
    main()
