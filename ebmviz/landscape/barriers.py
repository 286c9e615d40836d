"""Energy barriers between local minima and the single-linkage merge tree they define.

The barrier between minima x_i and x_j is the lowest possible "highest energy" on a path joining them,

    B_ij = min over paths γ from x_i to x_j of max_{x ∈ γ} E(x)      (an absolute energy, not a height),

so B_ij ≥ max(E_i, E_j). Two estimates, both upper bounds up to discretisation:
- ``segment_energies`` / ``linear_barriers``: the straight segment x(t) = (1−t)·x_i + t·x_j, as in the divergence
  triangle's MNIST map (Han et al. 2019, §3) and ADELM's pre-ordering (Hill, Nijkamp & Zhu 2019). Cheap and
  forward-only, but it overestimates whenever the lowest path bends.
- ``relax_bands``: a nudged elastic band with a climbing image (Henkelman, Uberuaga & Jónsson 2000; improved
  tangent of Henkelman & Jónsson 2000). The band relaxes onto the minimum-energy path and its highest image
  climbs to the saddle, so the band's maximum approaches the saddle energy.

``merge_tree`` builds the disconnectivity graph (Becker & Karplus 1997; Wales' ``pele``) as ADELM's
``build_ultrametric_tree.m`` does: single linkage, i.e. Kruskal's minimum spanning tree over barriers taken
in ascending order, one merge node per spanning edge at the barrier's energy. ``candidate_pairs`` picks which
pairs to estimate: all of them, or each minimum's k nearest plus a Euclidean spanning tree (so the graph stays
connected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch

from ebmviz.sampling import Energy, energy_and_grad


class Forest:
    """Union–find over n items (path halving; ``union`` returns False when already joined)."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = p[i]
        return i

    def union(self, i: int, j: int) -> bool:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return False
        self.parent[rj] = ri
        return True


# ----------------------------------------------------------------------------- batched evaluation
def forward_batched(energy: Energy, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """E(x) (B,) in chunks of ``batch_size`` states, without autograd."""
    with torch.no_grad():
        return torch.cat([energy(x[i:i + batch_size]).detach() for i in range(0, len(x), batch_size)])


def grad_batched(energy: Energy, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """E(x) (B,) and ∇ₓE(x) (B, ...) in chunks of ``batch_size`` states."""
    parts = [energy_and_grad(energy, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([e for e, _ in parts]), torch.cat([g for _, g in parts])


def _finite_or_inf(e: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(e), e, torch.full_like(e, float("inf")))


# ----------------------------------------------------------------------------- candidate pairs
def spanning_edges(pairs: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Kruskal: indices into ``pairs`` (P, 2) of a minimum spanning forest over n nodes, in merge order.

    Non-finite weights are no edge. Ties break by (i, j), so the result is deterministic.
    """
    ok = np.flatnonzero(np.isfinite(weights))
    order = ok[np.lexsort((pairs[ok, 1], pairs[ok, 0], weights[ok]))]
    forest = Forest(n)
    return np.array([k for k in order if forest.union(int(pairs[k, 0]), int(pairs[k, 1]))], dtype=np.int64)


def euclidean_spanning_tree(dist: np.ndarray) -> np.ndarray:
    """Prim's minimum spanning tree of a dense (M, M) distance matrix: (M−1, 2) pairs with i < j."""
    m = len(dist)
    inside = np.zeros(m, dtype=bool)
    best = np.full(m, np.inf)
    parent = np.full(m, -1)
    best[0] = 0.0
    edges = []
    for _ in range(m):
        i = int(np.argmin(np.where(inside, np.inf, best)))
        inside[i] = True
        if parent[i] >= 0:
            edges.append(sorted((int(parent[i]), i)))
        closer = ~inside & (dist[i] < best)
        best[closer], parent[closer] = dist[i][closer], i
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def candidate_pairs(minima: torch.Tensor, mode: str, k_nearest: int) -> np.ndarray:
    """Pairs (P, 2), i < j, sorted, whose barriers are estimated.

    Args:
        minima: (M, ...) states.
        mode: "all" (every pair, M(M−1)/2) or "knn": each minimum's ``k_nearest`` nearest minima (L2)
            plus the edges of the Euclidean minimum spanning tree, which keeps the pair graph connected.
    """
    m = len(minima)
    if m < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if mode == "all":
        return np.stack(np.triu_indices(m, 1), axis=1).astype(np.int64)
    flat = minima.flatten(1).double()
    dist = torch.cdist(flat, flat).cpu().numpy()  # (M, M)
    np.fill_diagonal(dist, np.inf)
    k = min(k_nearest, m - 1)
    near = np.argpartition(dist, k - 1, axis=1)[:, :k]  # (M, k)
    knn = np.stack([np.repeat(np.arange(m), k), near.ravel()], axis=1)
    np.fill_diagonal(dist, 0.0)
    both = np.concatenate([knn, euclidean_spanning_tree(dist)])
    return np.unique(np.sort(both, axis=1), axis=0)


# ----------------------------------------------------------------------------- linear barriers
def segment_energies(energy: Energy, a: torch.Tensor, b: torch.Tensor, n_points: int,
                     batch_size: int = 256) -> torch.Tensor:
    """E on n_points evenly spaced states of each segment a_p → b_p, ends included: (P, n_points).

    Args:
        a, b: (P, ...) segment ends.
    """
    t = torch.linspace(0.0, 1.0, n_points, device=a.device, dtype=a.dtype)  # (T,)
    a2, b2 = a.flatten(1), b.flatten(1)  # (P, D)
    pts = a2[:, None] + t[None, :, None] * (b2 - a2)[:, None]  # (P, T, D)
    e = forward_batched(energy, pts.reshape(-1, *a.shape[1:]), batch_size)
    return _finite_or_inf(e.view(len(a), n_points))


def linear_barriers(energy: Energy, minima: torch.Tensor, energies: torch.Tensor, pairs: np.ndarray,
                    n_path: int, batch_size: int = 256) -> torch.Tensor:
    """Linear barrier max_t E((1−t)x_i + t·x_j) (P,) for the given pairs, on n_path points per segment.

    Only the n_path − 2 interior points are evaluated; the ends contribute the known E_i, E_j, so a barrier
    is never below max(E_i, E_j). A non-finite energy on the segment gives +inf (not estimated).
    """
    i, j = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])
    inner = segment_energies(energy, minima[i], minima[j], n_path, batch_size)[:, 1:-1]  # ends are known
    top = torch.maximum(energies[i], energies[j])
    return torch.maximum(inner.max(dim=1).values, top) if inner.shape[1] else top


# ----------------------------------------------------------------------------- nudged elastic band
FIRE_DT_MAX = 10.0  # largest FIRE time step, in units of the first one
FIRE_ALPHA, FIRE_F_ALPHA = 0.1, 0.99  # initial velocity mixing, and its decay while going downhill
FIRE_INC, FIRE_DEC, FIRE_N_MIN = 1.1, 0.5, 5  # dt growth / cut, and downhill steps before it grows
@dataclass(frozen=True)
class Bands:
    """Relaxed elastic bands for P pairs, K images each (ends included)."""

    path: torch.Tensor  # (P, K, ...) the images, path[:, 0] = a and path[:, -1] = b
    energy: torch.Tensor  # (P, K) E of each image (+inf where non-finite)
    barrier: torch.Tensor  # (P,) highest energy along the relaxed path: the refined barrier estimate
    steps: torch.Tensor  # (P,) iterations each band ran before it stopped moving


def _tangents(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Unit tangents (P, K−2, D) at the interior images: the upwind tangent of Henkelman & Jónsson (2000)."""
    dp, dm = x[:, 2:] - x[:, 1:-1], x[:, 1:-1] - x[:, :-2]  # towards the next / from the previous image
    up, down = e[:, 2:] - e[:, 1:-1], e[:, :-2] - e[:, 1:-1]  # ΔE to the next / previous image
    hi, lo = torch.maximum(up.abs(), down.abs())[..., None], torch.minimum(up.abs(), down.abs())[..., None]
    # at an extremum of E along the band, blend both sides weighted by the energy differences
    mixed = torch.where((e[:, 2:] > e[:, :-2])[..., None], dp * hi + dm * lo, dp * lo + dm * hi)
    tau = torch.where(((up > 0) & (down < 0))[..., None], dp,
                      torch.where(((up < 0) & (down > 0))[..., None], dm, mixed))
    return tau / tau.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def relax_bands(energy: Energy, a: torch.Tensor, b: torch.Tensor, e_a: torch.Tensor, e_b: torch.Tensor,
                step: torch.Tensor, *, n_images: int = 16, n_steps: int = 300, spring: float = 0.2,
                climb_after: int = 30, max_move: float = 0.1, move_tol: float = 1e-3,
                n_path: int = 32, clamp: tuple[float, float] | None = None, batch_size: int = 256) -> Bands:
    """Climbing-image NEB between a_p and b_p for P pairs at once, relaxed by FIRE (Bitzek et al. 2006).

    The force on interior image k with unit tangent τ_k is

        F_k = −(∇E_k − (∇E_k·τ_k)τ_k) + κ(‖x_{k+1} − x_k‖ − ‖x_k − x_{k−1}‖)τ_k,

    and, after ``climb_after`` iterations, the highest image drops the spring and climbs: F = −∇E + 2(∇E·τ)τ.
    FIRE starts as one steepest-descent step η·F (η = ``step``) and speeds up while the band keeps going
    downhill; no image moves more than ``max_move`` × the initial image spacing per iteration. A band stops once
    climbing has started and no image's steepest-descent step η·‖F_k‖ exceeds ``move_tol``.

    Args:
        a, b: (P, ...) fixed ends (local minima); e_a, e_b: (P,) their energies.
        step: (P,) η per pair. Stable when η ≲ 1/(largest curvature of E near the band).
        n_images: K, images per band including both ends (K ≥ 3).
        spring: κ·η, the spring constant in units of 1/η (dimensionless, 0 < κη ≤ 0.5).
        n_path: the straight pieces between images are scanned at the spacing of an n_path-point segment a → b.
        clamp: keep images in this box.

    Returns:
        ``Bands`` with the final images and their energies. The barrier is the highest energy on the relaxed
        polygonal path (images, and the pieces between them scanned like a linear barrier), so, like a linear
        barrier, it bounds B_ij from above up to the scan's resolution; the images alone could miss a ridge
        that the band crosses between two of them.
    """
    n_pairs, shape = len(a), a.shape[1:]
    a2, b2 = a.detach().flatten(1), b.detach().flatten(1)  # (P, D)
    t = torch.linspace(0.0, 1.0, n_images, device=a.device, dtype=a.dtype)
    x = a2[:, None] + t[None, :, None] * (b2 - a2)[:, None]  # (P, K, D) the straight segment
    e = torch.empty(n_pairs, n_images, device=a.device, dtype=e_a.dtype)
    e[:, 0], e[:, -1] = e_a, e_b
    cap = max_move * (b2 - a2).norm(dim=1) / (n_images - 1)  # (P,) largest move of one image per iteration
    kappa = spring / step  # (P,) spring constant κ
    # FIRE state per band (Bitzek et al. 2006): velocity v, time step dt, mixing α, steps since the last reset
    v = torch.zeros(n_pairs, n_images - 2, a2.shape[1], device=a.device, dtype=a.dtype)
    dt = torch.sqrt(step)  # a first move of dt²·F = η·F: one steepest-descent step
    dt_max, alpha = FIRE_DT_MAX * dt, torch.full_like(step, FIRE_ALPHA)
    since = torch.zeros(n_pairs, dtype=torch.long, device=a.device)
    steps = torch.zeros(n_pairs, dtype=torch.long, device=a.device)
    active = torch.ones(n_pairs, dtype=torch.bool, device=a.device)
    for it in range(n_steps):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, inner = x[idx], x[idx, 1:-1]  # (p, K, D), (p, K−2, D)
        e_in, g = grad_batched(energy, inner.reshape(-1, *shape), batch_size)
        e_in, g = _finite_or_inf(e_in.view(len(idx), -1)), g.reshape(inner.shape)
        ea = torch.cat([e[idx, :1], e_in, e[idx, -1:]], dim=1)  # (p, K)
        tau = _tangents(xa, ea)
        g_par = (g * tau).sum(-1, keepdim=True)  # ∇E·τ (p, K−2, 1)
        stretch = (xa[:, 2:] - inner).norm(dim=-1) - (inner - xa[:, :-2]).norm(dim=-1)  # (p, K−2)
        force = -(g - g_par * tau) + (kappa[idx, None] * stretch)[..., None] * tau
        if it >= climb_after:
            rows, top = torch.arange(len(idx), device=a.device), e_in.argmax(dim=1)
            force[rows, top] = -g[rows, top] + 2 * g_par[rows, top] * tau[rows, top]
        force = torch.where(torch.isfinite(force), force, torch.zeros_like(force))  # a broken image stays put
        # FIRE: steer v towards F while moving downhill (F·v > 0), stop and shorten dt when it turns uphill
        va, dta, al = v[idx], dt[idx], alpha[idx]
        power = (force * va).sum((1, 2))
        fn, vn = force.flatten(1).norm(dim=1), va.flatten(1).norm(dim=1)
        va = (1 - al)[:, None, None] * va + (al * vn / fn.clamp_min(1e-30))[:, None, None] * force
        up = power > 0
        since[idx] = torch.where(up, since[idx] + 1, 0)
        speed = up & (since[idx] > FIRE_N_MIN)
        dta = torch.where(speed, torch.minimum(dta * FIRE_INC, dt_max[idx]), torch.where(up, dta, dta * FIRE_DEC))
        alpha[idx] = torch.where(speed, al * FIRE_F_ALPHA, torch.where(up, al, torch.full_like(al, FIRE_ALPHA)))
        va = torch.where(up[:, None, None], va, torch.zeros_like(va)) + dta[:, None, None] * force
        move = dta[:, None, None] * va
        length = move.norm(dim=-1, keepdim=True)
        move = move * (cap[idx, None, None] / length.clamp_min(1e-30)).clamp(max=1.0)
        new = inner + move
        if clamp is not None:
            new = new.clamp(*clamp)
        x[idx, 1:-1], v[idx], dt[idx] = new, va, dta
        steps[idx] += 1
        if it >= climb_after:  # converged: no image would move more than move_tol in one descent step η·F
            active[idx[step[idx] * force.norm(dim=-1).amax(dim=1) <= move_tol]] = False
    e[:, 1:-1] = _finite_or_inf(forward_batched(energy, x[:, 1:-1].reshape(-1, *shape), batch_size)
                                .view(n_pairs, -1))
    path = x.view(n_pairs, n_images, *shape)
    top = torch.maximum(e.max(dim=1).values, _scan_pieces(energy, path, n_path, batch_size))
    return Bands(path=path, energy=e, barrier=top, steps=steps)


def _scan_pieces(energy: Energy, path: torch.Tensor, n_path: int, batch_size: int) -> torch.Tensor:
    """Highest E (P,) inside the straight pieces of each band ``path`` (P, K, ...), sampled at the spacing of an
    n_path-point segment between its ends (at most n_path sub-intervals per piece)."""
    flat = path.flatten(2)  # (P, K, D)
    piece = (flat[:, 1:] - flat[:, :-1]).norm(dim=-1)  # (P, K−1)
    res = (flat[:, -1] - flat[:, 0]).norm(dim=-1).clamp_min(1e-30) / (n_path - 1)  # (P,) the linear scan's spacing
    n_sub = int(torch.ceil((piece / res[:, None]).max()).clamp(1, n_path))  # sub-intervals per piece
    if n_sub < 2:
        return torch.full((len(path),), -math.inf, device=path.device, dtype=path.dtype)
    shape = (-1, *path.shape[2:])
    inner = segment_energies(energy, path[:, :-1].reshape(shape), path[:, 1:].reshape(shape), n_sub + 1, batch_size)
    return inner[:, 1:-1].reshape(len(path), -1).amax(dim=1)


# ----------------------------------------------------------------------------- merge tree
def finite_pairs(barrier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle pairs (P, 2) with a finite barrier, and those barriers (P,)."""
    i, j = np.triu_indices(len(barrier), 1)
    w = barrier[i, j]
    ok = np.isfinite(w)
    return np.stack([i[ok], j[ok]], axis=1).astype(np.int64), w[ok]


def merge_tree(energy: np.ndarray, barrier: np.ndarray, n_starts: np.ndarray | None = None) -> nx.DiGraph:
    """Single-linkage merge tree (disconnectivity graph) of M minima as a directed forest, parent → child.

    Nodes 0..M−1 are the minima: ``kind="minimum"``, ``energy`` E_i, ``n_starts`` (starts that reached it).
    Nodes M, M+1, … are merges in ascending order: ``kind="merge"``, ``energy`` = the barrier level B at which
    two groups join, ``pair`` = the two minima (i, j) whose barrier B_ij made the merge, ``n_starts`` summed.
    Pairs with an infinite barrier never merge, so the result has one root per connected group;
    ``tree.graph["roots"]`` lists them.

    Args:
        energy: (M,) minimum energies.
        barrier: (M, M) symmetric barrier energies, +inf where not estimated (the diagonal is ignored).
        n_starts: (M,) starts per minimum, or None (then zeros).
    """
    m = len(energy)
    counts = np.zeros(m, dtype=np.int64) if n_starts is None else np.asarray(n_starts)
    tree = nx.DiGraph()
    for i in range(m):
        tree.add_node(i, kind="minimum", energy=float(energy[i]), n_starts=int(counts[i]))
    pairs, w = finite_pairs(barrier)
    forest, top = Forest(m), list(range(m))  # top[root]: the tree node that currently heads root's group
    for k in spanning_edges(pairs, w, m):
        i, j = int(pairs[k, 0]), int(pairs[k, 1])
        ri, rj = forest.find(i), forest.find(j)
        node = tree.number_of_nodes()
        size = tree.nodes[top[ri]]["n_starts"] + tree.nodes[top[rj]]["n_starts"]
        tree.add_node(node, kind="merge", energy=float(w[k]), pair=(i, j), n_starts=int(size))
        tree.add_edges_from([(node, top[ri]), (node, top[rj])])
        forest.union(ri, rj)
        top[forest.find(ri)] = node
    tree.graph["roots"] = sorted({top[forest.find(i)] for i in range(m)})
    return tree


def components(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components of n nodes joined by ``pairs`` (P, 2), each sorted, ordered by smallest member."""
    forest = Forest(n)
    for i, j in pairs:
        forest.union(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(forest.find(i), []).append(i)
    return sorted((np.array(g, dtype=np.int64) for g in groups.values()), key=lambda g: int(g[0]))
