"""Compute a checkpoint's landscape map from held-out digits and store it for the app (``ebmviz.landscape.load_map``).

  python -m training landscape-map ebgan-mnist --space latent --temperature 0.01 --n 300

``--space image`` maps ``model(x)`` on pixels (starts: the digits, states kept in [-1, 1]); ``--space latent`` maps
U(z) = E(g(z))/T + ‖z‖²/2 through the model's generator (starts: codes fitted to the digits, ``fit_latents``).
The evaluator's verdict on the minima (confident share, share of starts whose minimum shows their digit) goes
into the map's metadata with the command and the times.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from ebmviz import checkpoints, metrics
from ebmviz.data import load_dataset
from ebmviz.landscape import LandscapeConfig, LatentEnergy, fit_latents, map_landscape, save_map


def main(argv: list[str], prog: str = "python -m training landscape-map") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="name or path of a checkpoint whose model(x) is an energy")
    ap.add_argument("--space", choices=["image", "latent"], default="latent")
    ap.add_argument("--temperature", type=float, default=0.01, help="T of the latent energy E(g(z))/T + ‖z‖²/2")
    ap.add_argument("--n", type=int, default=300, help="held-out digits to start from")
    ap.add_argument("--seed", type=int, default=0, help="which digits (a seeded permutation of the test split)")
    ap.add_argument("--n-steps", type=int, default=1500, help="descent steps at most")
    ap.add_argument("--move-tol", type=float, default=3e-3, help="descent stops when no step moves more than this")
    ap.add_argument("--refine", choices=["none", "tree"], default="none", help="elastic-band refinement of the tree")
    ap.add_argument("--fit-steps", type=int, default=400, help="Adam steps per start when fitting latent codes")
    ap.add_argument("--fit-inits", type=int, default=4, help="starts per digit when fitting latent codes")
    ap.add_argument("--out", default="", help="map name or path ('': <checkpoint>-<space>)")
    args = ap.parse_args(argv)
    model = checkpoints.load(args.checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    digits, labels = load_dataset("mnist", "test")
    pick = torch.randperm(len(digits), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    x, y = digits[pick], labels[pick].numpy()
    t0 = time.perf_counter()
    if args.space == "latent":
        if not hasattr(model, "generator"):
            ap.error(f"{args.checkpoint} has no generator to map a latent space through")
        starts, fit_loss = fit_latents(model.generator, x, model.config.nz, steps=args.fit_steps,
                                       inits=args.fit_inits, seed=args.seed)
        energy, decode = LatentEnergy(model, model.generator, args.temperature), model.generator
        config = LandscapeConfig(n_steps=args.n_steps, move_tol=args.move_tol, refine=args.refine)
    else:
        starts, fit_loss, energy, decode = x, None, model, None
        config = LandscapeConfig(n_steps=args.n_steps, move_tol=args.move_tol, refine=args.refine,
                                 clamp=(-1.0, 1.0), merge_tol=1.0)
    t1 = time.perf_counter()
    land = map_landscape(energy, starts, config, labels=y, decode=decode)
    t2 = time.perf_counter()
    meta = {"checkpoint": args.checkpoint, "space": args.space, "n_starts": args.n, "seed": args.seed,
            "starts": "held-out MNIST test digits", "command": " ".join(["python -m training landscape-map", *argv]),
            "seconds": {"fit": round(t1 - t0, 1), "map": round(t2 - t1, 1)}}
    if args.space == "latent":
        meta |= {"temperature": args.temperature, "energy": "E(g(z))/T + |z|^2/2",
                 "fit_loss_median": float(fit_loss.median())}
    try:
        pred = metrics.classify(checkpoints.load("evaluator-mnist"), torch.from_numpy(land.images))
        ok = land.assignment >= 0
        meta["minima_quality"] = {
            "confident_share": float((pred.confidence > metrics.CONFIDENT).mean()),
            "same_digit_share": float((pred.label[land.assignment[ok]] == y[ok]).mean()),
            "labels": pred.label.tolist(), "confidence": np.round(pred.confidence, 4).tolist()}
    except checkpoints.CheckpointError as err:
        print(f"minima not scored: {err}", file=sys.stderr)
    path = save_map(land, args.out or f"{checkpoints.resolve(args.checkpoint).stem}-{args.space}", meta)
    q = meta.get("minima_quality", {})
    print(f"{path}: {land.n_minima} minima from {args.n} starts; fit {t1 - t0:.1f} s, map {t2 - t1:.1f} s; "
          f"confident minima {q.get('confident_share', float('nan')):.3f}, "
          f"same digit {q.get('same_digit_share', float('nan')):.3f}")
    return 0
