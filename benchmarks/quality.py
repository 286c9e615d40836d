"""Evaluator quality of every shipped generative checkpoint next to held-out real digits.

Each model draws --n samples with the settings its checkpoint ships: Langevin from uniform noise
(meta["sampler"], the Langevin page's defaults); the CF-EBM's cascade 7 → 14 → 28 (meta["cascade"]),
next to the short-run model from 28×28 noise with the same number of gradient evaluations; the
divergence triangle's generator, before and after Langevin refinement on its energy.
Columns: share with confidence > 0.9, mean confidence, class entropy (ln 10 = 2.303 is all ten
digits equally), Fréchet distance of evaluator features to the held-out test digits, and the
predicted-class counts.
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
from ebmviz.models.coarse_to_fine import default_cascade, sample_cascade  # noqa: E402
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
    shortrun = next((i for i in checkpoints.list_checkpoints() if i.kind == "shortrun" and not i.error), None)
    for info in checkpoints.list_checkpoints():
        if info.error or info.kind == "evaluator" or "sampler" not in info.meta:
            continue
        model = checkpoints.load(info.name)
        for name, (x, how) in samples_of(info, model, args.n, args.seed).items():
            q = metrics.quality(evaluator, x, ref)
            print(row(name, q, how))
        if info.kind == "shortrun":
            print(f"  target ≥ 0.75 confident and entropy ≥ {0.9 * 2.302585:.3f}: "
                  f"{'met' if q.confident_share >= 0.75 and q.class_entropy >= 0.9 * 2.302585 else 'NOT met'}")
        if info.kind == "coarse_to_fine" and shortrun is not None:  # the same budget of gradient evaluations
            budget = sum(default_cascade(model).steps)
            sr = checkpoints.load(shortrun.name)
            cfg = LangevinConfig.from_dict({**shortrun.meta["sampler"], "n_steps": budget})
            t = time.perf_counter()
            x = draw(sr, cfg, args.n, args.seed)
            print(row(f"{shortrun.name} @ {budget} steps", metrics.quality(evaluator, x, ref),
                      f"(same {budget} gradient evaluations per chain; {time.perf_counter() - t:.0f} s)"))


def samples_of(info, model, n: int, seed: int) -> dict[str, tuple[torch.Tensor, str]]:
    """name -> (n samples, how they were drawn) with each kind's page defaults."""
    t = time.perf_counter()
    if info.kind == "coarse_to_fine":
        cfg = default_cascade(model)
        x = torch.cat([sample_cascade(model, min(250, n - i), seed + i, cfg).final for i in range(0, n, 250)])
        return {info.name: (x, f"(cascade {'+'.join(map(str, cfg.steps))} steps at 7/14/28 px; "
                               f"{time.perf_counter() - t:.0f} s)")}
    cfg = LangevinConfig.from_dict(info.meta["sampler"])
    if info.kind == "triangle":
        with torch.no_grad():
            g = torch.cat([model.generate(min(250, n - i), seed + i) for i in range(0, n, 250)])
        refined = torch.cat([sample(model, g[i:i + 250], cfg, seed + i) for i in range(0, n, 250)])
        return {f"{info.name} generator": (g, "(g(z), z ~ N(0, I))"),
                f"{info.name} refined": (refined, f"(+ {cfg.n_steps} Langevin steps on E; "
                                                  f"{time.perf_counter() - t:.0f} s)")}
    x = draw(model, cfg, n, seed)
    return {info.name: (x, f"({cfg.n_steps} steps, s={cfg.step_size:g}, σ={cfg.noise_std:g}; "
                           f"{time.perf_counter() - t:.0f} s)")}

if __name__ == "__main__":
    main()
