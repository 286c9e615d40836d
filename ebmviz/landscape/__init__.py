"""Energy-landscape maps: local minima, barriers between them and their disconnectivity tree (data only).

``map_landscape(energy, starts, config)`` follows the divergence triangle's MNIST map (Han et al. 2019, §3) with
ADELM's single-linkage tree (Hill, Nijkamp & Zhu 2019) and an elastic-band refinement of the barriers:

1. steepest descent from each of the N starts to a local minimum (``minima.descend``);
2. starts that reach the same minimum (L2 distance ≤ ``merge_tol``) are merged, the lowest kept: M minima,
   sorted by energy (index 0 is the lowest), and ``assignment`` (N,) maps each start to its minimum;
3. candidate pairs: each minimum's k nearest plus a Euclidean spanning tree (default), or all M(M−1)/2;
4. the linear barrier B_ij = max_t E((1−t)x_i + t·x_j) of every candidate pair, in large batches;
5. climbing-image elastic bands for the pairs that decide the tree: the edges of the minimum spanning tree
   of the barrier graph, recomputed with the refined values until no new edge appears (``refine="tree"``).
   A band's barrier is the highest energy along its relaxed path (pieces between images scanned like a
   segment), and the refined barrier is min(band, linear);
6. the merge tree by single linkage over B (refined where available, else linear).

Barriers are absolute energies (not heights above a minimum); +inf marks a pair that was not estimated and the
diagonal holds each minimum's own energy.

Modules: ``result`` (the config and the ``Landscape`` it returns), ``minima`` (descent and merging),
``barriers`` (candidate pairs, linear and elastic-band barriers, the merge tree), ``build``
(``map_landscape``), ``storage`` (safetensors + JSON, never pickle), ``spaces`` (a generator's latent space:
``LatentEnergy`` and ``fit_latents``), ``cuts`` (basins and purity at every cut level, the level a page opens at)
and ``placing`` (where a new descent lands on a stored map).
"""

from ebmviz.landscape.build import map_landscape
from ebmviz.landscape.result import Cost, Landscape, LandscapeConfig, PhaseCost
from ebmviz.landscape.spaces import LatentEnergy, codes_for, fit_latents, map_energy, space_config
from ebmviz.landscape.storage import LandscapeError, load_map, map_path, save_map

__all__ = ["Cost", "Landscape", "LandscapeConfig", "LandscapeError", "LatentEnergy", "PhaseCost", "codes_for",
           "fit_latents", "load_map", "map_energy", "map_landscape", "map_path", "save_map", "space_config"]
