"""2-D projections of images. PCA of the data: fast and exact, so it can run at page load
(UMAP's first fit in a process costs ~45 s: ``fit_umap`` runs ahead of time, in the landscape-map tool)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmviz.images import from_u8


@dataclass(frozen=True)
class PCA2:
    """x ↦ (x − mean) · components.T on flattened images; components are the top-2 axes."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D)
    explained: np.ndarray  # (2,) share of variance along each axis

    def transform(self, images: np.ndarray) -> np.ndarray:
        """(N, ...) images (float in [-1, 1] or uint8 0..255) -> (N, 2)."""
        flat = np.asarray(images).reshape(len(images), -1)
        flat = from_u8(flat) if flat.dtype == np.uint8 else flat.astype(np.float32)
        return (flat - self.mean) @ self.components.T


def fit_pca(images: np.ndarray) -> PCA2:
    """Fit the 2-D PCA of (N, ...) float images by SVD (deterministic up to axis sign,
    which is fixed so that each axis's largest-magnitude loading is positive)."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(1)])
    comps = comps * signs[:, None]
    var = s**2
    return PCA2(mean.astype(np.float32), comps.astype(np.float32), (var[:2] / var.sum()))



def fit_umap(images: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """UMAP (umap-learn) of (N, ...) images (float in [-1, 1] or uint8) to (N, 2) float32, seeded.

    Slow the first time in a process (~45 s on 2 cores while numba compiles): call it ahead of time (the
    landscape-map tool stores its result), never while a page loads.
    """
    import umap  # deferred: importing umap-learn costs seconds

    flat = np.asarray(images).reshape(len(images), -1)
    flat = from_u8(flat) if flat.dtype == np.uint8 else flat.astype(np.float32)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(flat) - 1), min_dist=min_dist, random_state=seed,
                        n_components=2)
    return reducer.fit_transform(flat).astype(np.float32)
