"""Cost of a landscape map: every candidate pair against sparse pairs (k nearest + a spanning tree), in one run.

For each number of starts N (default 100 and 500) both modes map the same energy from the same starts (so the
descent and its minima are shared in kind) and the table prints, per mode: M minima, candidate pairs, pairs
refined by an elastic band, energy evaluations per phase (one per state; a gradient evaluation counts once),
seconds, and, for the synthetic energy, how each tree compares with the exact one from flooding a fine grid:
"yes" when both hold the same groups of minima (the same hierarchy), and the largest error of a merge level.

The default energy is synthetic: --wells Gaussian wells of depth 1–3 and width 0.35 at random places in the
square [−box, box]² on a weak quadratic bowl, E(x) = 0.02‖x‖² − Σ_k d_k exp(−‖x − μ_k‖²/(2·0.35²)).
--checkpoint NAME maps a model instead: in its generator's latent space when it has one (U(z) = E(G(z)) +
‖z‖²/2, starts z ~ N(0, I), images G(z)), else in image space from held-out digits. On a CPU that takes minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz.landscape import Landscape, LandscapeConfig, map_landscape  # noqa: E402
from ebmviz.landscape.barriers import Forest  # noqa: E402


def wells(n_wells: int, box: float, seed: int):
    """The synthetic energy of the module docstring, x (B, 2) -> (B,)."""
    g = torch.Generator().manual_seed(seed)
    mu = (torch.rand(n_wells, 2, generator=g) * 2 - 1) * box
    depth = 1 + 2 * torch.rand(n_wells, generator=g)

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - mu.to(x)) ** 2).sum(-1)  # (B, n_wells)
        return 0.02 * (x**2).sum(1) - (depth.to(x) * torch.exp(-sq / (2 * 0.35**2))).sum(1)

    return energy


def synthetic_problem(args):
    energy = wells(args.wells, args.box, args.seed)
    config = LandscapeConfig(merge_tol=0.05)

    def starts(n: int) -> torch.Tensor:
        return (torch.rand(n, 2, generator=torch.Generator().manual_seed(args.seed + 1)) * 2 - 1) * (args.box + 0.5)

    return f"{args.wells} Gaussian wells in [−{args.box:g}, {args.box:g}]²", energy, starts, None, config


def checkpoint_problem(args):
    from ebmviz import checkpoints
    from ebmviz.data import load_dataset

    model = checkpoints.load(args.checkpoint)
    if hasattr(model, "generator") and hasattr(model, "latents"):
        def energy(z: torch.Tensor) -> torch.Tensor:  # U(z) = E(G(z)) + ‖z‖²/2
            return model(model.generator(z)) + 0.5 * (z**2).sum(1)

        return (f"{args.checkpoint}, latent space", energy, lambda n: model.latents(n, args.seed), model.generator,
                LandscapeConfig(merge_tol=0.5))
    images, _ = load_dataset("mnist", "test")
    return (f"{args.checkpoint}, image space", model, lambda n: images[:n], None,
            LandscapeConfig(merge_tol=1.0, clamp=(-1.0, 1.0)))


def merges(m: Landscape) -> list[tuple[float, frozenset]]:
    t = m.tree
    out = [(d["energy"], frozenset(x for x in nx.descendants(t, n) if x < m.n_minima))
           for n, d in t.nodes(data=True) if d["kind"] == "merge"]
    return sorted(out, key=lambda x: (x[0], len(x[1])))


def flooded_merges(energy, minima: np.ndarray, extent: float, n: int) -> list[tuple[float, frozenset]]:
    """Exact single-linkage merges of 2-D minima on an n×n grid over [−extent, extent]²: cells join their 8
    neighbours in ascending energy, and two groups holding minima merge at the joining cell's energy."""
    xs = torch.linspace(-extent, extent, n, dtype=torch.float64)
    with torch.no_grad():
        e = energy(torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2).float()).double().numpy()
    h = 2 * extent / (n - 1)
    cell_of = {int(round((x + extent) / h)) * n + int(round((y + extent) / h)): i for i, (x, y) in enumerate(minima)}
    forest, owner, wet, out = Forest(n * n), {}, np.zeros(n * n, dtype=bool), []
    for c in np.argsort(e, kind="stable"):
        wet[c] = True
        owner[c] = frozenset({cell_of[c]}) if c in cell_of else frozenset()
        i, j = divmod(int(c), n)
        for a, b in ((i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)):
            if 0 <= a < n and 0 <= b < n and wet[a * n + b]:
                ra, rc = forest.find(a * n + b), forest.find(int(c))
                if ra != rc:
                    if owner[ra] and owner[rc]:
                        out.append((float(e[c]), owner[ra] | owner[rc]))
                    forest.union(rc, ra)
                    owner[rc] = owner.pop(ra) | owner[rc]
    return sorted(out, key=lambda m: (m[0], len(m[1])))


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
    ap.add_argument("--k", type=int, default=8, help="nearest minima per minimum in sparse mode")
    ap.add_argument("--grid", type=int, default=500, help="grid side of the exact flood (synthetic energy)")
    ap.add_argument("--checkpoint", default=None, help="map this model instead of the synthetic energy")
    args = ap.parse_args()
    title, energy, starts, decode, config = (checkpoint_problem if args.checkpoint else synthetic_problem)(args)
    print(f"energy: {title}; bands on the spanning tree (refine='tree'); {torch.get_num_threads()} threads")
    head = (f"{'N':>5} {'pairs':>5} {'M':>4} {'cand.':>6} {'refined':>7} {'descent':>9} {'linear':>8} "
            f"{'refine':>9} {'total':>9} {'seconds':>8}  vs exact (same, max level error)")
    print(head)
    print("-" * len(head))
    for n in args.n:
        x0 = starts(n)
        runs = {mode: map_landscape(energy, x0, LandscapeConfig(**{**config.to_dict(), "pairs": mode,
                                                                   "k_nearest": args.k, "clamp": config.clamp}),
                                    decode=decode)
                for mode in ("all", "knn")}
        for mode, m in runs.items():
            c = m.cost
            cand = (torch.isfinite(torch.from_numpy(m.barrier_linear)).sum().item() - m.n_minima) // 2
            refined = (torch.isfinite(torch.from_numpy(m.barrier_refined)).sum().item() - m.n_minima) // 2
            exact = "" if args.checkpoint else compare(merges(m), flooded_merges(energy, m.minima, args.box + 2,
                                                                                 args.grid))
            print(f"{n:>5} {mode:>5} {m.n_minima:>4} {cand:>6} {refined:>7} {c.descent.gradient:>9,} "
                  f"{c.linear.forward:>8,} {c.refine.forward + c.refine.gradient:>9,} {c.evaluations:>9,} "
                  f"{c.seconds:>8.2f}  {exact}")
        ratio = runs["knn"].cost.evaluations / runs["all"].cost.evaluations
        print(f"{'':>5} sparse / all evaluations: {ratio:.2f}, seconds: "
              f"{runs['knn'].cost.seconds / runs['all'].cost.seconds:.2f}")


if __name__ == "__main__":
    main()
