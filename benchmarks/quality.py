"""Evaluator quality of every shipped model that draws samples, next to held-out real digits.

Every model is treated alike: ``model.draw(n, seed)`` with the settings its checkpoint ships (the
short-run EBM: Langevin from noise; the CF-EBM: its 7 → 14 → 28 cascade; the divergence triangle:
generator samples refined on its energy), in batches of 250 seeded seed, seed + 1, …
Two comparisons follow, chosen by what a draw returns, not by kind: samples that start from a
generator (``generated``) are also scored before refinement, and every model that draws by Langevin
from noise (a ``Trajectory``) is drawn again with the gradient budget of each model that draws another
way (the cascade).
Columns: share with confidence > 0.9, mean confidence, class entropy (ln 10 = 2.303 is all ten
digits equally), Fréchet distance of evaluator features to the held-out test digits, and the
predicted-class counts.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints  # noqa: E402
from ebmviz.analysis import metrics
from ebmviz.analysis.zoo import draw_many  # noqa: E402
from ebmviz.data import load_dataset  # noqa: E402
from ebmviz.models.coarse_to_fine import CascadeConfig  # noqa: E402
from ebmviz.sampling import Trajectory  # noqa: E402

TARGET_CONFIDENT, TARGET_ENTROPY = 0.75, 0.9 * math.log(10)  # the short-run model's quality target (issue 2)


def images(results: list, field: str = "final") -> torch.Tensor:
    return torch.from_numpy(np.concatenate([getattr(r, field) for r in results]))


def row(name: str, q: metrics.Quality, extra: str = "") -> str:
    fd = f"{q.frechet:8.2f}" if q.frechet is not None else "       –"
    return (f"{name:<34} {q.n:>5} {q.confident_share:>9.3f} {q.mean_confidence:>9.3f} "
            f"{q.class_entropy:>8.3f} {fd}  {q.class_counts} {extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    evaluator = checkpoints.load("evaluator-mnist")
    test, _ = load_dataset("mnist", "test")
    train, _ = load_dataset("mnist", "train")
    ref = metrics.features(evaluator, test)
    score = lambda x: metrics.quality(evaluator, x, ref)  # noqa: E731
    print(f"{'':<34} {'n':>5} {'conf>0.9':>9} {'mean conf':>9} {'entropy':>8} {'Fréchet':>8}  class counts")
    print(row("real held-out digits", metrics.quality(evaluator, test, metrics.features(evaluator, train[:1000]))),
          "(Fréchet: against 1,000 training digits)")
    drawn = {}
    for info in checkpoints.list_checkpoints():
        if info.error:
            continue
        model = checkpoints.load(info.name)
        if model.Draws is None:
            continue
        t = time.perf_counter()
        results = draw_many(model, args.n, args.seed)
        drawn[info.name] = (model, results)
        q = score(images(results))
        print(row(info.name, q, f"({results[0].grad_evals} gradient evaluations per sample, "
                                f"{time.perf_counter() - t:.0f} s)"))
        if info.name == "shortrun-mnist":
            met = q.confident_share >= TARGET_CONFIDENT and q.class_entropy >= TARGET_ENTROPY
            print(f"  target ≥ {TARGET_CONFIDENT} confident and entropy ≥ {TARGET_ENTROPY:.3f}: "
                  f"{'met' if met else 'NOT met'}")
    print("\nbefore refinement (draws that start from a generator's samples):")
    for name, (_, results) in drawn.items():
        if hasattr(results[0], "generated"):
            print(row(f"{name} generator", score(images(results, "generated")), "(g(z), z ~ N(0, I))"))
    print("\nsame budget (Langevin from noise with the gradient evaluations of each cascade):")
    from_noise = {name: model for name, (model, _) in drawn.items() if model.Draws is Trajectory}
    budgets = {name: r[0].grad_evals for name, (m, r) in drawn.items() if isinstance(m.draw_config(), CascadeConfig)}
    for other, budget in budgets.items():
        for name, model in from_noise.items():
            t = time.perf_counter()
            results = draw_many(model, args.n, args.seed, replace(model.draw_config(), n_steps=budget))
            print(row(f"{name} @ {budget} steps", score(images(results)),
                      f"(the budget of {other}; {time.perf_counter() - t:.0f} s)"))


if __name__ == "__main__":
    main()
