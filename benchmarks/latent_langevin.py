"""Langevin in a generator's latent space on the model's own energy (``ebmviz.analysis.latent``), scored by the
evaluator.

For every shipped model with a generator (EBGAN with and without PT, the divergence triangle): 1,000 chains
(batches of 250 from seeds seed, seed + 1, …) start at the generator's own draws (z ~ N(0, I), or the learned
prior p_ψ of a triangle that has one), so step 0 is the generator's samples as the quality benchmark scores them;
then K steps of z ← z − η∇U(z) + √(2η)ξ on U(z) = E(G(z))/T + ‖z‖²/2 (−log p_ψ(z) in place of ‖z‖²/2 with a
learned prior). Columns: share with confidence > 0.9, mean confidence, class entropy (ln 10 = 2.303),
Fréchet distance of evaluator features to the held-out digits, class counts, seconds.

With ``--pixel``, for contrast, Langevin on the energy in pixel space with the checkpoint's Langevin-page settings
(``meta["sampler"]``), from the same generator samples and from uniform noise, with the median energy before/after.

    python benchmarks/latent_langevin.py                      # each model's grid below
    python benchmarks/latent_langevin.py --models ebgan-mnist --grid 0.01:0.003:40
    python benchmarks/latent_langevin.py --models ebgan-mnist --pixel
    python benchmarks/latent_langevin.py --store                # also keep each model's row at the page's defaults

``--store`` keeps, per model, the K = 0 row and the row at the latent panel's defaults for its kind
(``ebmviz.analysis.latent.PAGE_DEFAULTS``) in ``checkpoints/scores.json`` (``measured["latent_langevin"]``), where
the EBGAN and triangle pages quote them.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz import checkpoints  # noqa: E402
from ebmviz.analysis import metrics, zoo  # noqa: E402
from ebmviz.analysis.latent import PAGE_DEFAULTS, latent_config, latent_langevin  # noqa: E402
from ebmviz.data import load_dataset  # noqa: E402
from ebmviz.images import from_u8  # noqa: E402
from ebmviz.sampling import LangevinConfig, langevin  # noqa: E402
from ebmviz.sampling.starts import make_starts  # noqa: E402

# (T, η, K) per model: K = 0 (the generator itself), the page's default, then what shows the trade-off.
GRIDS = {
    "ebgan-mnist": [(0.003, 0.003, 0), (0.003, 0.003, 40), (0.003, 0.003, 100), (0.01, 0.003, 40), (0.01, 0.003, 100),
                    (0.01, 0.01, 40), (0.1, 0.003, 40)],
    "ebgan_nopt-mnist": [(0.003, 0.003, 0), (0.003, 0.003, 40), (0.01, 0.003, 40)],
    "triangle-mnist": [(0.3, 0.01, 0), (0.3, 0.01, 50), (0.3, 0.003, 100), (1.0, 0.01, 50)],
}


def parse_grid(text: str) -> list[tuple[float, float, int]]:
    out = []
    for item in text.split(","):
        t, eta, k = item.split(":")
        out.append((float(t), float(eta), int(k)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(GRIDS))
    ap.add_argument("--grid", default="", help="T:η:K,… for every model named (default: each model's own grid)")
    ap.add_argument("--pixel", action="store_true", help="Langevin in pixel space instead, from G's samples and noise")
    ap.add_argument("--store", action="store_true", help="keep each model's K = 0 row and its page-default row in "
                    "checkpoints/scores.json")
    args = ap.parse_args()
    evaluator = checkpoints.load("evaluator-mnist")
    test, _ = load_dataset("mnist", "test")
    ref = metrics.features(evaluator, test)
    if args.pixel:
        for name in args.models.split(","):
            pixel_rows(name, args.n, args.seed, evaluator, ref)
        return
    print(f"{'model':<18} {'T':>6} {'η':>6} {'K':>4} {'conf>0.9':>9} {'mean conf':>9} {'entropy':>8} {'Fréchet':>8}"
          "  class counts")
    today = datetime.date.today().isoformat()
    for name in args.models.split(","):
        model = checkpoints.load(name)
        rows = {}
        for temperature, eta, k in parse_grid(args.grid) if args.grid else GRIDS[name]:
            t = time.perf_counter()
            batches, size = [], 250
            for i in range(0, args.n, size):
                run = latent_langevin(model, min(size, args.n - i), args.seed + i // size, temperature,
                                      latent_config(k, eta, record_every=max(k, 1)))
                batches.append(run.final)
            q = metrics.quality(evaluator, torch.from_numpy(from_u8(np.concatenate(batches))), ref)
            print(f"{name:<18} {temperature:>6g} {eta:>6g} {k:>4} {q.confident_share:>9.3f} {q.mean_confidence:>9.3f} "
                  f"{q.class_entropy:>8.3f} {q.frechet:>8.1f}  {q.class_counts} ({time.perf_counter() - t:.0f} s)",
                  flush=True)
            rows[(temperature, eta, k)] = {key: getattr(q, key)
                                           for key in ("confident_share", "class_entropy", "frechet")}
        k0, eta0, t0 = PAGE_DEFAULTS[model.kind]
        before = next((r for (_, _, k), r in rows.items() if k == 0), None)
        if args.store and before is not None and (t0, eta0, k0) in rows:
            path = zoo.store_measured(name, "latent_langevin", {
                "K": k0, "eta": eta0, "T": t0, "n": args.n, "before": before, "after": rows[(t0, eta0, k0)]},
                f"benchmarks/latent_langevin.py --n {args.n} --seed {args.seed} --store, {today}")
            print(f"stored {name}'s row at K = {k0}, η = {eta0}, T = {t0} in {path}")


def pixel_rows(name: str, n: int, seed: int, evaluator, ref) -> None:
    """Langevin on E in pixel space (the checkpoint's ``meta["sampler"]``) from G's samples and from noise."""
    model = checkpoints.load(name)
    cfg = LangevinConfig.from_dict(model.meta.get("sampler", {}))
    print(f"{name}: {cfg}")
    for start in ("generator", "noise"):
        before, after, e0, e1 = [], [], [], []
        for i in range(0, n, 250):
            x0 = make_starts(start, min(250, n - i), seed + i // 250, model=model)
            run = langevin(model, x0, cfg, seed=seed + i // 250)
            before.append(x0.numpy())
            after.append(run.final)
            e0.append(run.energy[0])
            e1.append(run.energy[-1])
        for when, x, e in (("before", before, e0), ("after", after, e1)):
            q = metrics.quality(evaluator, torch.from_numpy(np.concatenate(x)), ref)
            junk = metrics.classify(evaluator, torch.from_numpy(np.concatenate(x))).junk.mean()
            print(f"  from {start:<9} {when:<6} median E {np.median(np.concatenate(e)):9.4g}  conf>0.9 "
                  f"{q.confident_share:.3f}  Fréchet {q.frechet:6.1f}  not a digit {junk:.2f}", flush=True)


if __name__ == "__main__":
    main()
