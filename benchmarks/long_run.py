"""Where a model's chains go far beyond the chain length it was trained for: the Langevin page's "short run vs
long run" on many chains.

--chains chains from uniform noise (seeds as the page: one seed for the batch) run the checkpoint's shipped
Langevin settings for m × K steps (K: the shipped ``n_steps``); the evaluator labels the end states. Prints the
share of bright pixels (``metrics.saturation``: at or above 0.9) of the end states and of as many real test
digits, the evaluator's digit counts and the most common digit. ``--store`` keeps the numbers in
``checkpoints/scores.json`` (``measured["long_run"]`` of the checkpoint), where the Langevin page quotes them.

    python benchmarks/long_run.py                                  # shortrun-mnist, 64 chains, m = 10
    python benchmarks/long_run.py --checkpoint shortrun_nda-mnist --store
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints  # noqa: E402
from ebmviz.analysis import metrics, zoo  # noqa: E402
from ebmviz.data import load_dataset  # noqa: E402
from ebmviz.sampling import langevin  # noqa: E402
from ebmviz.sampling.starts import make_starts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="shortrun-mnist")
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--multiple", type=int, default=10, help="m: the long run is m × K steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", action="store_true", help="keep the numbers in checkpoints/scores.json")
    args = ap.parse_args()
    model = checkpoints.load(args.checkpoint)
    shipped = model.draw_config()
    cfg = replace(shipped, n_steps=args.multiple * shipped.n_steps, record_every=args.multiple * shipped.n_steps)
    t = time.perf_counter()
    run = langevin(model, make_starts("noise", args.chains, args.seed), cfg, seed=args.seed)
    seconds = time.perf_counter() - t
    evaluator = checkpoints.load("evaluator-mnist")
    pred = metrics.classify(evaluator, torch.from_numpy(run.final))
    digits = load_dataset("mnist", "test")[0][:args.chains].numpy()
    counts = np.bincount(pred.label[pred.label < 10], minlength=10)
    top = int(counts.argmax())
    values = {"chains": args.chains, "multiple": args.multiple, "steps": shipped.n_steps,
              "saturated": metrics.saturation(run.final), "data_saturated": metrics.saturation(digits),
              "top_digit": top, "top_count": int(counts[top]), "class_counts": counts.tolist()}
    print(f"{args.checkpoint}: {args.chains} chains × {cfg.n_steps} steps from noise in {seconds:.0f} s; "
          f"saturated {values['saturated']:.3f} (real digits {values['data_saturated']:.3f}); digits {counts.tolist()}"
          f", most often {top} ({counts[top]} chains)")
    if args.store:
        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        path = zoo.store_measured(args.checkpoint, "long_run", values,
                                  f"benchmarks/long_run.py --chains {args.chains} --multiple {args.multiple} "
                                  f"--seed {args.seed}, {today}")
        print(f"stored in {path}")


if __name__ == "__main__":
    main()
