"""Divergence-triangle checks of its issue: reconstructions and recovery of occluded digits.

Prints, for the shipped (or --checkpoint) triangle model on the 1,000 held-out digits:
- the per-pixel MSE of reconstructions g(μ(x)) on the [0, 1] scale and the share the evaluator
  gives the original's digit;
- per occlusion type (the paper's Table III types scaled to 28×28) the recovery error on hidden
  pixels (mean |x − x*| relative to the pixel range) of the fill-with-the-mean baseline and after
  --iterations rounds of inference and generation.
- the generator's samples under the paper's prior N(0, I) and under the learned prior p_ψ (when the checkpoint
  has one, ``python -m training fit-prior``): 1,000 samples g(z) with no refinement (batches of 250 seeded
  seed, seed + 1, …), their confident share, class entropy and Fréchet distance, and the median distance from a
  sample to its nearest training digit beside the same for the held-out digits (copies of training digits would
  sit far below it).
Generator-sample quality after the shipped Langevin refinement (``model.draw``) is in benchmarks/quality.py.
``--store`` keeps the generator-sample rows in ``checkpoints/scores.json`` (``measured["prior_samples"]``), where
the triangle page quotes them.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints  # noqa: E402
from ebmviz.analysis import metrics, zoo
from ebmviz.analysis.learning_dynamics import nearest_training  # noqa: E402
from ebmviz.data import load_dataset  # noqa: E402
from ebmviz.models.triangle import recovery_error  # noqa: E402
from ebmviz.transforms import OCCLUSIONS, occlusion  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="triangle-mnist")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", action="store_true", help="keep the generator-sample rows in checkpoints/scores.json")
    args = ap.parse_args()
    model = checkpoints.load(args.checkpoint)
    evaluator = checkpoints.load("evaluator-mnist")
    x, labels = load_dataset("mnist", "test")
    with torch.no_grad():
        r = model.reconstruct(x)
    mse = float(((r - x) / 2).pow(2).mean())
    same = float((metrics.classify(evaluator, r).label == labels.numpy()).mean())
    print(f"{len(x)} held-out digits: reconstruction MSE {mse:.4f} (target ≤ 0.015), "
          f"evaluator gives the original's digit for {same:.3f} (target ≥ 0.95)")
    print(f"{'occlusion':<10} {'hidden':>7} {'mean fill':>10} {'triangle':>9}   (error on hidden pixels, "
          f"{args.iterations} iterations)")
    for kind in OCCLUSIONS:
        seen, hidden = occlusion(kind, x, args.seed)
        with torch.no_grad():
            steps = model.recover(seen, hidden, args.iterations)
        base, final = recovery_error(steps[0], x, hidden).mean(), recovery_error(steps[-1], x, hidden).mean()
        share = float(hidden.float().mean())
        print(f"{kind:<10} {share:>7.2f} {base:>10.4f} {final:>9.4f}")
    train = load_dataset("mnist", "train")[0].numpy()
    reference = metrics.features(evaluator, x)

    def nearest(images: np.ndarray) -> float:  # median RMS distance to the nearest training digit, [0, 1] scale
        return float(np.median(np.sqrt(nearest_training(images, train).mse)) / 2)

    held_out = nearest(x.numpy())
    print(f"held-out digits: nearest training digit at a median {held_out:.4f}")
    stored = {"n": 1000, "held_out_nearest": held_out}
    for learned in (False, True) if model.prior is not None else (False,):
        with torch.no_grad():
            g = torch.cat([model.generate(250, args.seed + i, learned) for i in range(4)])
        q = metrics.quality(evaluator, g, reference)
        print(f"{'learned p_ψ' if learned else 'N(0, I)':<12} confident {q.confident_share:.3f}, class entropy "
              f"{q.class_entropy:.3f}, Fréchet {q.frechet:.1f}, nearest training digit at a median "
              f"{nearest(g.numpy()):.4f}, counts {q.class_counts}")
        stored["learned" if learned else "standard"] = {"confident_share": q.confident_share, "class_entropy":
                                                        q.class_entropy, "frechet": q.frechet,
                                                        "nearest": nearest(g.numpy())}
    if args.store:
        path = zoo.store_measured(args.checkpoint, "prior_samples", stored, f"benchmarks/triangle.py --seed {args.seed}"
                                  f" --store, {datetime.date.today().isoformat()}")
        print(f"stored the generator-sample rows in {path}")


if __name__ == "__main__":
    main()
