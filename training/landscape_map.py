"""Compute a checkpoint's landscape map from held-out digits and store it for the app (``ebmviz.landscape.load_map``).

  python -m training landscape-map ebgan-mnist --space latent --temperature 0.01 --n 300

``--space image`` maps ``model(x)`` on pixels (starts: the digits, states kept in [-1, 1]); ``--space latent`` maps
U(z) = E(g(z))/T + ‖z‖²/2 through the model's generator (starts: the digits' codes, from the model's inference
network where it has one, else fitted, ``fit_latents``). The map keeps the digits it started from (uint8) and a
2-D layout of digits and minima (``--layout umap``, fitted here so that no page ever fits one). The evaluator's
verdict on the minima (confident share, share of starts whose minimum shows their digit) goes into the map's
metadata with the command and the times (``ebmviz.landscape.digits``).
"""

from __future__ import annotations

import argparse
import sys

from ebmviz import checkpoints
from ebmviz.landscape import save_map, space_config
from ebmviz.landscape.digits import DigitMapSpec, map_digits


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
    ap.add_argument("--codes", choices=["auto", "infer", "fit"], default="auto",
                    help="latent starts: the inference network's mean (infer), fitted codes (fit); auto: infer if "
                         "the model has one")
    ap.add_argument("--fit-steps", type=int, default=400, help="Adam steps per start when fitting latent codes")
    ap.add_argument("--fit-inits", type=int, default=4, help="starts per digit when fitting latent codes")
    ap.add_argument("--layout", choices=["umap", "pca", "none"], default="umap",
                    help="2-D layout of the digits and the minima stored with the map (umap: ~1 min on 2 cores)")
    ap.add_argument("--out", default="", help="map name or path ('': <checkpoint>-<space>)")
    args = ap.parse_args(argv)
    model = checkpoints.load(args.checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        evaluator = checkpoints.load("evaluator-mnist")
    except checkpoints.CheckpointError as err:
        print(f"minima not scored: {err}", file=sys.stderr)
        evaluator = None
    spec = DigitMapSpec(args.checkpoint, args.space, args.temperature, args.n, args.seed, args.codes, args.layout,
                        args.fit_steps, args.fit_inits)
    config = space_config(args.space, n_steps=args.n_steps, move_tol=args.move_tol, refine=args.refine)
    try:
        land = map_digits(model, spec, config, evaluator)
    except ValueError as err:
        ap.error(f"{args.checkpoint}: {err}")
    land.meta["command"] = " ".join(["python -m training landscape-map", *argv])
    path = save_map(land, args.out or f"{checkpoints.resolve(args.checkpoint).stem}-{args.space}")
    q, s = land.meta.get("minima_quality", {}), land.meta["seconds"]
    print(f"{path}: {land.n_minima} minima from {args.n} starts; codes {s['codes']} s, map {s['map']} s "
          f"(descent {land.cost.descent.seconds:.1f}, linear {land.cost.linear.seconds:.1f}, refine "
          f"{land.cost.refine.seconds:.1f}), layout {s['layout']} s; confident minima "
          f"{q.get('confident_share', float('nan')):.3f}, same digit {q.get('same_digit_share', float('nan')):.3f}")
    return 0
