"""The phase map's wall time, and its speed against running the same chains as one plain batched loop, in one run.

Default: the shipped short-run EBM, 6 × 6 cells (s and σ log-spaced over the Debug page's default ranges) × 16 chains
× 200 steps from the same noise starts, one torch thread as the app runs. The map runs through
``ebmviz.analysis.phase_map`` exactly as the page does — batches of cells, every per-step record, and each cell's
verdict, ESS, R-hat, diversity and (``--judge``) the digit evaluator's reading. The plain loop runs all
cells × chains at once with per-chain s and σ: autograd.grad, clip, step, noise, clamp, nothing recorded.
Runs alternate and the medians are compared; the last line is the ratio (plain time / map time: ≥ 1 means the map
is at least as fast).
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
from ebmviz.analysis.metrics import CONFIDENT, classify  # noqa: E402
from ebmviz.analysis.phase_map import BATCH_CHAINS, PhaseSpec, log_grid, phase_map  # noqa: E402
from ebmviz.images import from_u8  # noqa: E402
from ebmviz.sampling import LangevinConfig  # noqa: E402


def plain_loop(energy, x0: torch.Tensor, s: torch.Tensor, sigma: torch.Tensor, spec: PhaseSpec, seed: int):
    """All chains of the map in one batch: x ← clamp(x − s·clip(∇E) + σ·ξ), s and σ per chain, nothing recorded."""
    gen = torch.Generator().manual_seed(seed)
    clip, (lo, hi) = spec.base.grad_clip, spec.base.clamp
    s, sigma = s.view(-1, 1, 1, 1), sigma.view(-1, 1, 1, 1)
    x = x0.clone()
    for _ in range(spec.n_steps):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), x)
        x = (x - s * g.clamp(-clip, clip) + sigma * torch.randn(x.shape, generator=gen)).clamp(lo, hi)
    return x.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="shortrun-mnist")
    ap.add_argument("--cells", type=int, default=6, help="values of s and of σ")
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-chains", type=int, default=BATCH_CHAINS)
    ap.add_argument("--judge", action="store_true", help="read each cell's images with the digit evaluator")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = checkpoints.load(args.checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    base = LangevinConfig.from_dict(model.meta["sampler"])
    s0, sig0 = base.step_size, base.noise_std
    spec = PhaseSpec(base, log_grid(s0 / 100, s0 * 10, args.cells), log_grid(sig0 / 10, sig0 * 100, args.cells),
                     args.chains, args.steps, args.batch_chains)
    x0 = torch.rand(args.chains, *model.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    judge = None
    if args.judge:
        evaluator = checkpoints.load("evaluator-mnist")
        judge = lambda u8: float((classify(evaluator, torch.from_numpy(from_u8(u8))).confidence  # noqa: E731
                                  >= CONFIDENT).mean())
    n = args.chains
    s = torch.tensor([spec.step_sizes[i] for i, _ in spec.cells]).repeat_interleave(n)
    sigma = torch.tensor([spec.noises[j] for _, j in spec.cells]).repeat_interleave(n)
    xs = x0.repeat(len(spec.cells), 1, 1, 1)
    cells = []
    runs = {"plain": lambda: plain_loop(model, xs, s, sigma, spec, 0),
            "map": lambda: cells.extend(c for b in phase_map(model, x0, spec, 0, reference=0.83, judge=judge)
                                        for c in b)}
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    total = len(spec.cells) * n * args.steps
    print(f"{args.checkpoint}: {args.cells}×{args.cells} cells × {n} chains × {args.steps} steps = {total:,} "
          f"chain-steps, {args.threads} thread(s), batches of {args.batch_chains} chains")
    counts = {v: sum(c.verdict == v for c in cells[-len(spec.cells):]) for v in sorted({c.verdict for c in cells})}
    print(f"verdicts of the last map: {counts}")
    print(f"map: median {med['map']:.2f} s; plain batched loop: median {med['plain']:.2f} s")
    print(f"speed ratio (plain / map): {med['plain'] / med['map']:.3f}")


if __name__ == "__main__":
    main()
