"""Evaluator quality of every shipped generative checkpoint next to held-out real digits.

Each model draws --n samples from uniform noise with the sampler settings its checkpoint ships
(meta["sampler"], the Langevin page's defaults). Columns: share with confidence > 0.9, mean
confidence, class entropy (ln 10 = 2.303 is all ten digits equally), Fréchet distance of evaluator
features to the held-out test digits, and the predicted-class counts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints, metrics  # noqa: E402
from ebmviz.data import load_dataset  # noqa: E402
from ebmviz.sampling import LangevinConfig, sample  # noqa: E402
from ebmviz.starts import make_starts  # noqa: E402


def draw(model, cfg: LangevinConfig, n: int, seed: int, batch: int = 250) -> torch.Tensor:
    """n samples (n, 1, 28, 28) from uniform noise, in batches."""
    out = []
    for i, start in enumerate(range(0, n, batch)):
        x0 = make_starts("noise", min(batch, n - start), seed=seed + i)
        out.append(sample(model, x0, cfg, seed=seed + i))
    return torch.cat(out)


def row(name: str, q: metrics.Quality, extra: str = "") -> str:
    fd = f"{q.frechet:8.2f}" if q.frechet is not None else "       –"
    return (f"{name:<28} {q.n:>5} {q.confident_share:>9.3f} {q.mean_confidence:>9.3f} "
            f"{q.class_entropy:>8.3f} {fd}  {q.class_counts} {extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    evaluator = checkpoints.load("evaluator-mnist")
    test, _ = load_dataset("mnist", "test")
    train, _ = load_dataset("mnist", "train")
    ref = metrics.features(evaluator, test)
    print(f"{'':<28} {'n':>5} {'conf>0.9':>9} {'mean conf':>9} {'entropy':>8} {'Fréchet':>8}  class counts")
    print(row("real held-out digits", metrics.quality(evaluator, test, metrics.features(evaluator, train[:1000]))),
          "(Fréchet: against 1,000 training digits)")
    for info in checkpoints.list_checkpoints():
        if info.error or info.kind == "evaluator" or "sampler" not in info.meta:
            continue
        model = checkpoints.load(info.name)
        cfg = LangevinConfig.from_dict(info.meta["sampler"])
        t = time.perf_counter()
        x = draw(model, cfg, args.n, args.seed)
        dt = time.perf_counter() - t
        q = metrics.quality(evaluator, x, ref)
        print(row(info.name, q, f"({cfg.n_steps} steps, s={cfg.step_size:g}, σ={cfg.noise_std:g}; {dt:.0f} s)"))
        print(f"  target ≥ 0.75 confident and entropy ≥ {0.9 * 2.302585:.3f}: "
              f"{'met' if q.confident_share >= 0.75 and q.class_entropy >= 0.9 * 2.302585 else 'NOT met'}")


if __name__ == "__main__":
    main()
