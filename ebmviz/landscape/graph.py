"""The merge tree drawn as a disconnectivity graph, and the route it implies between two minima (data only).

A disconnectivity graph (Becker & Karplus 1997; ADELM's DG) puts energy on the vertical axis: each minimum is a
leaf at its energy, and two groups of minima join at the barrier level where single linkage merges them. Here
each merge is drawn as a horizontal bar at its level between its two children, with vertical lines down to
the children's own levels (a leaf's level is its energy). Leaves are placed left to right so that inside
every merge the child holding the lower minimum comes first: the global minimum is the leftmost leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class TreeDrawing:
    """Coordinates of a disconnectivity graph of M minima."""

    leaf_x: np.ndarray  # (M,) horizontal position of each minimum's leaf, a permutation of 0..M−1
    line_x: np.ndarray  # (L,) x of the graph's lines, NaN between polylines (one plotly trace draws them all)
    line_y: np.ndarray  # (L,) energies of the same points
    merge_x: np.ndarray  # (K,) x of each merge's midpoint, in the tree's merge order
    merge_y: np.ndarray  # (K,) its barrier level
    merge_pair: np.ndarray  # (K, 2) the two minima whose barrier made each merge


def _lowest(tree: nx.DiGraph) -> dict[int, float]:
    """Lowest minimum energy under every node (post-order, no recursion)."""
    low: dict[int, float] = {}
    for node in reversed(list(nx.topological_sort(tree))):
        kids = list(tree.successors(node))
        low[node] = min(low[k] for k in kids) if kids else tree.nodes[node]["energy"]
    return low


def draw_tree(tree: nx.DiGraph) -> TreeDrawing:
    """Lay out ``tree`` (``barriers.merge_tree``: leaves 0..M−1, merges after) as a disconnectivity graph.

    Roots (groups never joined, where barriers were not estimated) stand side by side, lowest first.
    """
    low = _lowest(tree)
    m = sum(1 for _, d in tree.nodes(data=True) if d["kind"] == "minimum")
    roots = sorted(tree.graph.get("roots", [n for n in tree if tree.in_degree(n) == 0]), key=low.__getitem__)
    leaf_x = np.zeros(m)
    x: dict[int, float] = {}
    order: list[int] = []
    stack = [(r, False) for r in reversed(roots)]
    while stack:  # depth-first, children lowest first; a node's x is set after its children's
        node, expanded = stack.pop()
        kids = sorted(tree.successors(node), key=low.__getitem__)
        if not kids:
            x[node] = leaf_x[node] = len(order)
            order.append(node)
        elif expanded:
            x[node] = 0.5 * (x[kids[0]] + x[kids[-1]])
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids))
    lx: list[float] = []
    ly: list[float] = []
    merges = [n for n, d in tree.nodes(data=True) if d["kind"] == "merge"]
    for node in merges:
        level = tree.nodes[node]["energy"]
        a, b = sorted(tree.successors(node), key=x.__getitem__)
        for px, py in ((x[a], tree.nodes[a]["energy"]), (x[a], level), (x[b], level), (x[b], tree.nodes[b]["energy"])):
            lx.append(px)
            ly.append(py)
        lx.append(np.nan)
        ly.append(np.nan)
    return TreeDrawing(
        leaf_x=leaf_x, line_x=np.asarray(lx, dtype=np.float64), line_y=np.asarray(ly, dtype=np.float64),
        merge_x=np.array([x[n] for n in merges], dtype=np.float64),
        merge_y=np.array([tree.nodes[n]["energy"] for n in merges], dtype=np.float64),
        merge_pair=np.array([tree.nodes[n]["pair"] for n in merges], dtype=np.int64).reshape(-1, 2))


def route(tree: nx.DiGraph, i: int, j: int) -> list[int] | None:
    """The minima from i to j along the tree's spanning edges (the minimax path: its highest barrier is the level
    where i and j merge), or None when they never merge."""
    g = nx.Graph()
    g.add_nodes_from(n for n, d in tree.nodes(data=True) if d["kind"] == "minimum")
    g.add_edges_from(d["pair"] for _, d in tree.nodes(data=True) if d["kind"] == "merge")
    try:
        return [int(n) for n in nx.shortest_path(g, i, j)]
    except nx.NetworkXNoPath:
        return None


def merge_level(tree: nx.DiGraph, i: int, j: int) -> float:
    """The barrier level at which minima i and j join in the tree (E_i when i == j; +inf when never)."""
    if i == j:
        return float(tree.nodes[i]["energy"])
    up_i = nx.ancestors(tree, i)
    common = up_i & nx.ancestors(tree, j)
    return min((tree.nodes[n]["energy"] for n in common), default=float("inf"))
