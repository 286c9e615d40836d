"""Exact single-linkage merges of a 2-D energy by flooding a grid: the reference the tests and the benchmark hold
a map's tree against."""

from __future__ import annotations

import numpy as np
import torch

from ebmviz.landscape.barriers import Forest


def flooded_merges(energy, minima: np.ndarray, extent: float, n: int = 300) -> list[tuple[float, frozenset]]:
    """Exact single-linkage merges of the given minima on an n×n grid over [−extent, extent]²: cells join their
    8 neighbours in ascending energy (a flood), and two groups holding minima merge at the joining cell's energy."""
    xs = torch.linspace(-extent, extent, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        e = energy(grid.float()).double().numpy()
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
