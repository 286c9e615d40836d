"""Cost of a landscape map: every candidate pair against sparse pairs (k nearest + a spanning tree), in one run.

For each number of starts N (default 100 and 500) both modes map the same energy from the same starts (so the
descent and its minima are shared in kind) and the table prints, per mode: M minima, candidate pairs, pairs
refined by an elastic band, energy evaluations per phase (one per state; a gradient evaluation counts once),
seconds, and, for the synthetic energy, how each tree compares with the exact one from flooding a fine grid:
"yes" when both hold the same groups of minima (the same hierarchy), and the largest error of a merge level.

The default energy is synthetic: --wells Gaussian wells of depth 1–3 and width 0.35 at random places in the
square [−box, box]² on a weak quadratic bowl, E(x) = 0.02‖x‖² − Σ_k d_k exp(−‖x − μ_k‖²/(2·0.35²)).
--checkpoint NAME maps a model instead, the way the shipped maps are made (``ebmviz.landscape.digits``): from
held-out digits, in its generator's latent space when it has one (U(z) = E(G(z))/T + ‖z‖²/2 at --temperature, starts
the digits' codes), else in image space. On a CPU that takes minutes. Descent is the same work in both modes, so
the barrier phases (linear + refinement) are also compared on their own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz.landscape import LandscapeConfig, map_landscape  # noqa: E402
from ebmviz.landscape.exact import flooded_merges  # noqa: E402
from ebmviz.sampling.toy2d import wells_energy  # noqa: E402


def synthetic_problem(args):
    energy = wells_energy(args.wells, args.seed, args.box)
    config = LandscapeConfig(merge_tol=0.05)

    def starts(n: int) -> torch.Tensor:
        return (torch.rand(n, 2, generator=torch.Generator().manual_seed(args.seed + 1)) * 2 - 1) * (args.box + 0.5)

    return f"{args.wells} Gaussian wells in [−{args.box:g}, {args.box:g}]²", energy, starts, None, config


def checkpoint_problem(args):
    from ebmviz import checkpoints
    from ebmviz.landscape import codes_for, map_energy, space_config
    from ebmviz.landscape.digits import held_out_digits

    model = checkpoints.load(args.checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    space = "latent" if hasattr(model, "generator") else "image"
    energy, decode = map_energy(model, space, args.temperature)

    def starts(n: int) -> torch.Tensor:
        x = held_out_digits(n, args.seed)[0]
        return codes_for(model, x, seed=args.seed)[0] if space == "latent" else x

    config = space_config(space, n_steps=1500, move_tol=3e-3)
    return f"{args.checkpoint}, {space} space, T = {args.temperature:g}", energy, starts, decode, config


def shipped_maps() -> None:
    """Time to open each shipped map (read, rebuild the tree) and draw it (layout, plotly figure)."""
    import time

    from ebmviz.figures.landscape import disconnectivity_figure
    from ebmviz.landscape import load_map
    from ebmviz.landscape.graph import draw_tree
    from ebmviz.landscape.storage import maps_dir

    for path in sorted(maps_dir().glob("*.safetensors")):
        t0 = time.perf_counter()
        land = load_map(path)
        tree = land.tree
        t1 = time.perf_counter()
        fig = disconnectivity_figure(draw_tree(tree), land.energy, None, None, land.n_starts)
        fig.to_json()
        t2 = time.perf_counter()
        print(f"shipped map {path.stem}: {land.n_minima} minima; open {t1 - t0:.3f} s, draw {t2 - t1:.3f} s; "
              f"made in {land.cost.seconds:.0f} s (descent {land.cost.descent.seconds:.0f}, linear "
              f"{land.cost.linear.seconds:.0f}, refinement {land.cost.refine.seconds:.0f})")


def compare(got: list, truth: list) -> str:
    """'yes' when both trees hold the same groups of minima (the same hierarchy), and the largest level error
    over the groups they share."""
    a, b = {s: e for e, s in got}, {s: e for e, s in truth}
    err = max((abs(a[s] - b[s]) for s in a.keys() & b.keys()), default=0.0)
    return f"{'yes' if a.keys() == b.keys() else 'no':>3}, {err:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500], help="numbers of starts")
    ap.add_argument("--wells", type=int, default=80)
    ap.add_argument("--box", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=LandscapeConfig.k_nearest, help="nearest minima per minimum (sparse)")
    ap.add_argument("--grid", type=int, default=500, help="grid side of the exact flood (synthetic energy)")
    ap.add_argument("--checkpoint", default=None, help="map this model instead of the synthetic energy")
    ap.add_argument("--temperature", type=float, default=0.01, help="T of a checkpoint's latent energy")
    ap.add_argument("--refine", choices=["tree", "none"], default="tree",
                    help="elastic bands on the tree's edges, or linear barriers only (the candidates' own effect)")
    ap.add_argument("--sparse-only", action="store_true",
                    help="skip the all-pairs map (its counts do not depend on k: rerun sparse with another --k)")
    ap.add_argument("--shipped-only", action="store_true", help="only time opening and drawing the shipped maps")
    args = ap.parse_args()
    shipped_maps()
    if args.shipped_only:
        return
    title, energy, starts, decode, config = (checkpoint_problem if args.checkpoint else synthetic_problem)(args)
    print(f"energy: {title}; refine={args.refine!r}; {torch.get_num_threads()} threads")
    head = (f"{'N':>5} {'pairs':>5} {'M':>4} {'cand.':>6} {'refined':>7} {'descent':>9} {'linear':>8} "
            f"{'refine':>9} {'total':>9} {'seconds':>8}  vs exact (same, max level error)")
    print(head)
    print("-" * len(head))
    for n in args.n:
        x0 = starts(n)
        settings = {**config.to_dict(), "refine": args.refine, "k_nearest": args.k, "clamp": config.clamp}
        runs = {mode: map_landscape(energy, x0, LandscapeConfig(**{**settings, "pairs": mode}), decode=decode)
                for mode in (("knn",) if args.sparse_only else ("all", "knn"))}
        for mode, m in runs.items():
            c = m.cost
            cand = (torch.isfinite(torch.from_numpy(m.barrier_linear)).sum().item() - m.n_minima) // 2
            refined = (torch.isfinite(torch.from_numpy(m.barrier_refined)).sum().item() - m.n_minima) // 2
            exact = "" if args.checkpoint else compare(m.merges(), flooded_merges(energy, m.minima, args.box + 2,
                                                                                 args.grid))
            print(f"{n:>5} {mode:>5} {m.n_minima:>4} {cand:>6} {refined:>7} {c.descent.gradient:>9,} "
                  f"{c.linear.forward:>8,} {c.refine.forward + c.refine.gradient:>9,} {c.evaluations:>9,} "
                  f"{c.seconds:>8.2f}  {exact}")
        if args.sparse_only:
            continue
        ratio = runs["knn"].cost.evaluations / runs["all"].cost.evaluations
        k, a = runs["knn"].cost, runs["all"].cost
        barrier = (k.linear.forward + k.refine.forward + k.refine.gradient) / max(
            1, a.linear.forward + a.refine.forward + a.refine.gradient)
        print(f"{'':>5} sparse / all evaluations: {ratio:.2f} (barrier phases alone: {barrier:.3f}), seconds: "
              f"{k.seconds / a.seconds:.2f}; same tree: "
              f"{'yes' if {g for _, g in runs['knn'].merges()} == {g for _, g in runs['all'].merges()} else 'no'}")


if __name__ == "__main__":
    main()
