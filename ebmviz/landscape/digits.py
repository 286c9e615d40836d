"""A checkpoint's map started from held-out MNIST digits: the one recipe behind the shipped maps
(``python -m training landscape-map``) and the maps a user makes on the page.

The starts are ``n`` test digits in a seeded order; in latent space their codes (``spaces.codes_for``). The map
keeps the digits (uint8) and their labels, a 2-D layout of digits and minima (UMAP or PCA, or none), and in its
metadata what made it and the evaluator's verdict on the minima: the share of confident digits and the share of
starts whose minimum shows their own digit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch

from ebmviz.analysis import metrics
from ebmviz.analysis.embedding import fit_pca, fit_umap
from ebmviz.data import load_dataset
from ebmviz.images import to_u8
from ebmviz.landscape.build import map_landscape
from ebmviz.landscape.result import Landscape, LandscapeConfig
from ebmviz.landscape.spaces import codes_for, map_energy


@dataclasses.dataclass(frozen=True)
class DigitMapSpec:
    """What defines a digit map besides the checkpoint's file (JSON-able; keys the map cache)."""

    checkpoint: str
    space: str = "latent"  # "image" or "latent"
    temperature: float = 0.01  # T of U(z) = E(g(z))/T + ‖z‖²/2 (latent space only)
    n: int = 300  # held-out digits to start from
    seed: int = 0  # which digits: a seeded permutation of the test split
    codes: str = "auto"  # latent starts: "infer", "fit", or "auto" (infer when the model has an inference net)
    layout: str = "umap"  # 2-D layout stored with the map: "umap", "pca" or "none"
    fit_steps: int = 400  # Adam steps per start when codes are fitted
    fit_inits: int = 4  # starts per digit when codes are fitted (the best is kept)

    def extra(self) -> dict:
        """The fields that key the cache beside the ``LandscapeConfig``."""
        return dataclasses.asdict(self)


def held_out_digits(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``n`` held-out digits in a seeded order: images (n, 1, 28, 28), labels (n,), their test-split indices."""
    digits, labels = load_dataset("mnist", "test")
    if not 1 <= n <= len(digits):
        raise ValueError(f"need between 1 and {len(digits)} starts, got {n}")
    pick = torch.randperm(len(digits), generator=torch.Generator().manual_seed(int(seed)))[:n]
    return digits[pick], labels[pick].numpy(), pick.numpy()


def verdict(evaluator: torch.nn.Module, land: Landscape) -> dict:
    """The evaluator on the minima's images: confident share, share of starts whose minimum shows their digit,
    and each minimum's label and confidence."""
    pred = metrics.classify(evaluator, torch.from_numpy(land.images))
    out = {"confident_share": float((pred.confidence > metrics.CONFIDENT).mean()),
           "labels": pred.label.tolist(), "confidence": np.round(pred.confidence, 4).tolist()}
    if land.labels is not None:
        ok = land.assignment >= 0
        out["same_digit_share"] = float((pred.label[land.assignment[ok]] == land.labels[ok]).mean())
    return out


def map_digits(model: torch.nn.Module, spec: DigitMapSpec, config: LandscapeConfig,
               evaluator: torch.nn.Module | None = None,
               progress: Callable[[int, int, Landscape], None] | None = None) -> Landscape:
    """Map ``model``'s energy from held-out digits (see the module docstring). Raises ``ValueError`` for a space
    the model has no way into (a latent map of a model without a generator, codes it cannot infer)."""
    energy, decode = map_energy(model, spec.space, spec.temperature)
    x, y, index = held_out_digits(spec.n, spec.seed)
    device = next(model.parameters()).device
    t0 = time.perf_counter()
    codes_loss = None
    if spec.space == "latent":
        starts, codes_loss = codes_for(model, x.to(device), spec.codes, steps=spec.fit_steps, inits=spec.fit_inits,
                                       seed=spec.seed)
    else:
        starts = x.to(device)
    t1 = time.perf_counter()
    land = map_landscape(energy, starts, config, labels=y, progress=progress, decode=decode)
    t2 = time.perf_counter()
    start_u8 = to_u8(x.numpy())
    layout = None
    if spec.layout != "none" and land.images is not None:
        both = np.concatenate([start_u8, to_u8(land.images)])
        layout = fit_umap(both, seed=spec.seed) if spec.layout == "umap" else fit_pca(both).transform(both)
    t3 = time.perf_counter()
    meta = dataclasses.asdict(spec) | {
        "starts": "held-out MNIST test digits", "test_index": index.tolist(),
        "seconds": {"codes": round(t1 - t0, 1), "map": round(t2 - t1, 1), "layout": round(t3 - t2, 1)}}
    if spec.space == "latent":
        meta["energy"] = "E(g(z))/T + |z|^2/2"
        meta["codes_from"] = "inference network mean" if codes_loss is None else "fitted (fit_latents)"
        if codes_loss is not None:
            meta["fit_loss_median"] = float(codes_loss.median())
    else:
        meta["energy"] = "E(x)"
    if evaluator is not None and land.images is not None:
        meta["minima_quality"] = verdict(evaluator, land)
    return dataclasses.replace(land, start_images=start_u8, layout=layout, meta=meta)
