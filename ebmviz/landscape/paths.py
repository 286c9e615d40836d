"""Energy profiles along paths between minima: the straight segment (the linear barrier), the tree's route
through intermediate minima, and a relaxed elastic band (the refined barrier). All three are polylines of states
in the mapped space, scanned piece by piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ebmviz.landscape import barriers
from ebmviz.landscape.result import Landscape
from ebmviz.sampling import Energy


@dataclass(frozen=True)
class Profile:
    """E along a polyline of V vertices, sampled at L points."""

    distance: np.ndarray  # (L,) L2 distance travelled from the first vertex, in the mapped space
    energy: np.ndarray  # (L,) E at each point (+inf where not finite)
    states: torch.Tensor  # (L, ...) the points
    vertex: np.ndarray  # (V,) index into the L points of each vertex

    @property
    def barrier(self) -> float:
        """The highest energy on the path."""
        return float(self.energy.max())

    def pick(self, n: int) -> torch.Tensor:
        """n states evenly spread along the path by distance, ends included: (n, ...)."""
        at = np.linspace(0.0, float(self.distance[-1]), n)
        return self.states[np.clip(np.searchsorted(self.distance, at), 0, len(self.distance) - 1)]


@torch.no_grad()
def polyline_profile(energy: Energy, vertices: torch.Tensor, n_per_piece: int = 32,
                     batch_size: int = 256) -> Profile:
    """E at ``n_per_piece`` evenly spaced points on each straight piece of ``vertices`` (V, ...), V ≥ 2."""
    if len(vertices) < 2 or n_per_piece < 2:
        raise ValueError("a profile needs at least two vertices and two points per piece")
    t = torch.linspace(0.0, 1.0, n_per_piece, dtype=vertices.dtype, device=vertices.device)
    flat = vertices.flatten(1)
    pts = flat[:-1, None] + t[None, :, None] * (flat[1:] - flat[:-1])[:, None]  # (V−1, n, D)
    pts = torch.cat([pts[:, :-1].reshape(-1, flat.shape[1]), flat[-1:]])  # shared vertices once: (L, D)
    e = barriers.forward_batched(energy, pts.view(-1, *vertices.shape[1:]), batch_size)
    e = torch.where(torch.isfinite(e), e, torch.full_like(e, float("inf")))
    step = (pts[1:] - pts[:-1]).norm(dim=1)
    dist = torch.cat([step.new_zeros(1), step.cumsum(0)])
    vertex = np.arange(len(vertices)) * (n_per_piece - 1)
    return Profile(distance=dist.double().cpu().numpy(), energy=e.double().cpu().numpy(),
                   states=pts.view(-1, *vertices.shape[1:]), vertex=vertex)


def band_between(energy: Energy, landscape: Landscape, i: int, j: int) -> torch.Tensor:
    """A climbing-image elastic band between minima i and j relaxed with the map's settings: its images (K, ...)."""
    c = landscape.config
    x = torch.from_numpy(landscape.minima)
    e = torch.from_numpy(landscape.energy).to(x.dtype)
    eta = c.neb_step * torch.from_numpy(np.minimum(landscape.step_size[[i]], landscape.step_size[[j]])).to(x.dtype)
    bands = barriers.relax_bands(energy, x[[i]], x[[j]], e[[i]], e[[j]], eta, n_images=c.n_images,
                                 n_steps=c.neb_steps, spring=c.spring, climb_after=c.climb_after,
                                 max_move=c.max_move, move_tol=c.move_tol, n_path=c.n_path, clamp=c.clamp,
                                 batch_size=c.batch_size)
    return bands.path[0]
