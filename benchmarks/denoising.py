"""The Denoising-EBM's numbers (issue 12), in one run: sample quality of two-stage sampling at the shipped
settings next to the texture stage alone from Gaussian noise with the same pixel steps (the paper's central claim),
the semantic images h(z_K) before texture, wall time to draw 64 two-stage samples, and the AUROC of −U_c(x, σ)
for MNIST test digits against Fashion-MNIST test images, uniform noise and interpolations between digits.

Samples are drawn in batches of 250 seeded seed, seed + 1, …; quality columns as ``benchmarks/quality.py``.
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
from ebmviz.data import DataError, load_dataset  # noqa: E402
from ebmviz.models.denoising import texture_only  # noqa: E402
from ebmviz.sampling.starts import make_starts  # noqa: E402
from ebmviz.transforms import interpolations  # noqa: E402

BATCH = 250
TARGET_CONFIDENT, TARGET_ENTROPY = 0.75, 0.9 * math.log(10)


def row(name: str, q: metrics.Quality, extra: str = "") -> str:
    return (f"{name:<36} {q.n:>5} {q.confident_share:>9.3f} {q.mean_confidence:>9.3f} {q.class_entropy:>8.3f} "
            f"{q.frechet:8.2f}  {q.class_counts} {extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="denoising-mnist")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma-ood", type=float, default=0.05, help="σ of the OOD score (the paper's 0.05)")
    args = ap.parse_args()
    model = checkpoints.load(args.checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.draw_config()
    evaluator = checkpoints.load("evaluator-mnist")
    test, _ = load_dataset("mnist", "test")
    ref = metrics.features(evaluator, test)
    score = lambda x: metrics.quality(evaluator, torch.as_tensor(x), ref)  # noqa: E731
    print(f"{args.checkpoint}: {cfg}")
    t = time.perf_counter()
    model.draw(64, args.seed, cfg)
    print(f"64 two-stage samples: {time.perf_counter() - t:.2f} s ({torch.get_num_threads()} threads)")
    batches = [(i, min(BATCH, args.n - s)) for i, s in enumerate(range(0, args.n, BATCH))]
    two = [model.draw(n, args.seed + i, cfg) for i, n in batches]
    only = [texture_only(model, n, args.seed + i, cfg) for i, n in batches]
    print(f"\n{'':<36} {'n':>5} {'conf>0.9':>9} {'mean conf':>9} {'entropy':>8} {'Fréchet':>8}  class counts")
    q = score(np.concatenate([r.final for r in two]))
    print(row("two-stage x_T", q, f"({cfg.k_steps} latent + {cfg.t_steps} pixel steps)"))
    print(row("semantic images h(z_K)", score(np.concatenate([r.semantic.final for r in two]))))
    print(row("texture only from N(0, I)", score(np.concatenate([r.final for r in only])),
              f"({cfg.t_steps} pixel steps)"))
    longer = replace(cfg, t_steps=cfg.k_steps + cfg.t_steps)
    print(row("texture only, K + T pixel steps", score(np.concatenate(
        [texture_only(model, n, args.seed + i, longer).final for i, n in batches])),
        f"({longer.t_steps} pixel steps: the two-stage chains' whole gradient budget)"))
    met = q.confident_share >= TARGET_CONFIDENT and q.class_entropy >= TARGET_ENTROPY
    print(f"target ≥ {TARGET_CONFIDENT} confident and entropy ≥ {TARGET_ENTROPY:.3f}: {'met' if met else 'NOT met'}")

    m, g = 1000, torch.Generator().manual_seed(args.seed)
    groups = {"MNIST test": test[torch.randperm(len(test), generator=g)[:m]]}
    try:
        fashion, _ = load_dataset("fashion-mnist", "test")
        groups["Fashion-MNIST test"] = fashion[torch.randperm(len(fashion), generator=g)[:m]]
    except DataError as err:
        print(f"Fashion-MNIST not scored: {err}")
    groups["uniform noise"] = make_starts("noise", m, args.seed)
    groups["interpolations"] = interpolations(test, m, args.seed)
    with torch.no_grad():
        scores = {k: -torch.cat([model.texture_energy(x[i:i + 500], args.sigma_ood) for i in range(0, len(x), 500)])
                  .numpy() for k, x in groups.items()}
    print(f"\nAUROC of −U_c(x, σ = {args.sigma_ood:g}) (MNIST test positive), {m} images per group:")
    for k, s in scores.items():
        if k != "MNIST test":
            print(f"  {k:<22} {metrics.auroc(scores['MNIST test'], s):.3f}   median U_c {-np.median(s):.4g} "
                  f"(MNIST test {-np.median(scores['MNIST test']):.4g})")


if __name__ == "__main__":
    main()
