"""Stored landscape maps as the app opens them: the file read once per version, its tree drawn, the evaluator's
verdict on its minima, every cut level scanned and the level the page opens at (``landscape.cuts``); the map's
energy and decoder on a device; why the opening cut was chosen, in words with its numbers.

Maps of your own model (``ebmviz run --model``) are made here too (``map_own``): in image space, on its own
C×H×W pixels, from its own images or uniform noise, stored with their pictures like a digit map.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ebmviz.analysis import metrics
from ebmviz.analysis.embedding import fit_pca
from ebmviz.app.cache import is_digit_model, load_evaluator, load_model, model_data
from ebmviz.images import to_u8
from ebmviz.landscape import Landscape, LandscapeConfig, LandscapeError, load_map, map_energy, map_landscape
from ebmviz.landscape.cuts import CutScan, DefaultCut, default_cut, scan_cuts
from ebmviz.landscape.digits import verdict
from ebmviz.landscape.graph import TreeDrawing, draw_tree
from ebmviz.landscape.placing import FLAT
from ebmviz.landscape.storage import maps_dir
from ebmviz.sampling.starts import make_starts
from ebmviz.user_model import UserEnergy

DIGIT_SHAPE = (1, 28, 28)  # the images the evaluator reads, MNIST's digits and the map file's pictures


def available_maps() -> dict[str, str]:
    """Stored maps, label -> path: shipped ones (``maps/<checkpoint>-<space>``) first, then those made on the page
    (``maps/cache/``)."""
    folder = maps_dir()
    shipped = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    made = sorted((folder / "cache").glob("*.safetensors")) if (folder / "cache").is_dir() else []
    return {p.stem: str(p) for p in shipped} | {f"{p.stem} (made here)": str(p) for p in made}


@dataclass(frozen=True)
class MapView:
    """A stored map with what the page draws from it."""

    name: str  # the map file's path
    mtime: float  # the file's version (keys the caches below)
    land: Landscape
    drawing: TreeDrawing
    digit: np.ndarray | None  # (M,) the evaluator's digit for each minimum's image, or None
    confidence: np.ndarray | None  # (M,)
    seconds_to_open: float  # reading the file and rebuilding and laying out the tree
    scan: CutScan  # every cut level with its basins and purity (``landscape.cuts``)
    cut: DefaultCut  # the level the page opens at: the purest of the cuts with 10–30 basins

    @property
    def latent(self) -> bool:
        return self.land.meta.get("space") == "latent"

    @property
    def energy_label(self) -> str:
        return "U(z)" if self.latent else "E(x)"

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the map's pictures: its images' (a latent map of a shipped generator: 1×28×28 digits)."""
        if self.land.images is not None:
            return tuple(self.land.images.shape[1:])
        return DIGIT_SHAPE if self.latent else tuple(self.land.minima.shape[1:])

    def confident_share(self) -> float | None:
        return None if self.confidence is None else float((self.confidence > metrics.CONFIDENT).mean())

    def same_digit_share(self) -> float | None:
        """Share of labelled starts whose minimum the evaluator reads as the start's own digit."""
        if self.digit is None or self.land.labels is None:
            return None
        ok = self.land.assignment >= 0
        return float((self.digit[self.land.assignment[ok]] == self.land.labels[ok]).mean())

    def levels(self) -> np.ndarray:
        """Every level where the basins change: the minima's energies and the tree's merge levels, ascending."""
        return self.scan.levels

    def default_threshold(self) -> float:
        """The level the page opens at (``cuts.default_cut``)."""
        return self.cut.level

    def flat_joins(self) -> int:
        """Joins of the graph with no rise: the barrier is the higher minimum's own energy, so that minimum runs
        downhill into the other (a point where a descent stopped on a slope or a flat floor)."""
        t, e = self.land.tree, self.land.energy
        rise = [d["energy"] - max(e[d["pair"][0]], e[d["pair"][1]]) for _, d in t.nodes(data=True)
                if d["kind"] == "merge"]
        spread = float(e.max() - e.min()) if len(e) > 1 else 1.0
        return int(sum(r <= FLAT * spread for r in rise))

    def merges(self) -> int:
        return self.land.n_minima - len(self.land.tree.graph["roots"])

    def focus(self, threshold: float, few: int = 3) -> tuple[float, float]:
        """The energies the graph shows at first: from the lowest minimum to where the basins above the opening
        cut have merged into ``few`` (and at least to ``threshold``), with 5% to spare. The highest minima of a map
        often climb far above its basins, which would squeeze them to a line."""
        scan, i = self.scan, self.cut.index
        merged = np.flatnonzero((scan.basins <= few) & (np.arange(len(scan.levels)) >= i))
        lo, hi = float(scan.levels[0]), float(scan.levels[merged[0]] if len(merged) else scan.levels[-1])
        hi = min(max(hi, threshold), float(scan.levels[-1]))
        pad = 0.05 * max(hi - lo, 1e-9)
        return lo - pad, hi + pad

    def basin_of(self, threshold: float) -> tuple[list[np.ndarray], np.ndarray]:
        """The basins at ``threshold`` and (M,) each minimum's basin index (−1: above the threshold, in none)."""
        basins = self.land.basins(threshold)
        of = np.full(self.land.n_minima, -1, dtype=np.int64)
        for k, group in enumerate(basins):
            of[group] = k
        return basins, of


def cut_reason(view: MapView) -> str:
    """Why the page opens at its cut, with the numbers (``cuts.default_cut``)."""
    scan, cut, e = view.scan, view.cut, view.energy_label
    i, (lo, hi) = cut.index, cut.wanted
    span = f"from {e} = {scan.levels[cut.among].min():.2f} to {scan.levels[cut.among].max():.2f}"
    inside = lo <= scan.basins[i] <= hi
    among = (f"Of the cut levels that leave {lo}–{hi} basins ({span})" if inside else
             f"This map never has {lo}–{hi} basins; of the levels with the nearest count, {scan.basins[i]} ({span})")
    if cut.rule == "purity":
        return (f"{among}, this one sorts the most starts by digit: its **{scan.basins[i]} basins** hold "
                f"{scan.wet[i]} of the {scan.n_starts} starts, and {scan.sorted[i]} of those carry their basin's "
                f"commonest digit: **purity {scan.sorted[i]}/{scan.n_starts} = {scan.purity[i]:.2f}**. A lower cut "
                f"leaves more minima above the water (their starts count as unsorted); a higher one pours different "
                f"digits into one basin.")
    return (f"{among}, this one has the most starts in basins ({scan.wet[i]} of {scan.n_starts}); the map has no "
            f"labels, so purity cannot choose.")


def _verdict(land: Landscape) -> tuple[np.ndarray | None, np.ndarray | None]:
    q = land.meta.get("minima_quality") or {}
    if len(q.get("labels", [])) == land.n_minima:
        return np.asarray(q["labels"], dtype=np.int64), np.asarray(q["confidence"], dtype=np.float64)
    ev = load_evaluator()
    if ev is None or land.images is None or tuple(land.images.shape[1:]) != DIGIT_SHAPE:
        return None, None  # the evaluator reads MNIST's digits only: another model's minima stay unlabelled
    pred = metrics.classify(ev, torch.from_numpy(land.images))
    return pred.label, pred.confidence


@st.cache_resource(show_spinner="Opening the map…", max_entries=8)
def open_version(name: str, mtime: float) -> MapView:
    """The map file ``name`` as of version ``mtime`` (its modification time, which keys the cache)."""
    t0 = time.perf_counter()
    land = load_map(name)
    drawing = draw_tree(land.tree)
    seconds = time.perf_counter() - t0
    digit, confidence = _verdict(land)
    scan = scan_cuts(land)
    return MapView(name, mtime, land, drawing, digit, confidence, seconds, scan, default_cut(scan))


def open_map(path: str) -> MapView:
    """The stored map at ``path``, cached per version of its file. Raises ``LandscapeError``."""
    if not Path(path).is_file():
        raise LandscapeError(path, "no such map")
    return open_version(path, Path(path).stat().st_mtime)


def map_model(view: MapView, device: str):
    """(energy, decode, model) of the map's checkpoint in its space. Raises CheckpointError or ValueError."""
    meta = view.land.meta
    if "checkpoint" not in meta:
        raise ValueError("this map does not say which checkpoint it was made from")
    model = load_model(meta["checkpoint"], device)
    energy, decode = map_energy(model, meta.get("space", "image"), float(meta.get("temperature", 1.0)))
    return energy, decode, model


def pictures(decode, states: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_u8((decode(states) if decode is not None else states).float().cpu().numpy())


# Maps of your own model
@dataclass(frozen=True)
class OwnMapSpec:
    """What defines a map of a user model besides its code, weights and data (JSON-able; keys the map cache)."""

    checkpoint: str  # the model's name in the catalogue (what ``load_model`` takes), as a digit map's
    start_from: str = "data"  # "data": the model's own images (``cache.model_data``), "noise": uniform in [−1, 1]
    n: int = 100  # starts
    seed: int = 0  # which images (a seeded permutation), or the noise
    layout: str = "pca"  # 2-D layout stored with the map: "pca" or "none"
    space: str = "image"  # "latent": through the model's decode(z), from N(0, I) draws of z
    temperature: float = 1.0  # T of the latent energy U(z) = E(g(z))/T + ‖z‖²/2

    def extra(self) -> dict:
        return dataclasses.asdict(self)


def own_starts(model: torch.nn.Module, starts: str, n: int, seed: int
               ) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray | None, str]:
    """(starts (n, C, H, W) in [−1, 1], their labels or None, their indices in the data or None, where they come
    from in words) of a user model's map. Raises ``ValueError`` when the model has too few images."""
    if starts == "noise":
        return make_starts("noise", n, seed, shape=tuple(model.image_shape)), None, None, "uniform noise in [−1, 1]"
    found = model_data(model)
    if found is None:
        raise ValueError("this model has no images of its own to start from: give it --data when you start ebmviz, "
                         "or start from uniform noise")
    images, labels, source = found
    if n > len(images):
        raise ValueError(f"its data has {len(images)} images, fewer than the {n} starts asked for")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(int(seed)))[:n].numpy()
    return (torch.from_numpy(np.asarray(images[pick], dtype=np.float32)),
            None if labels is None else np.asarray(labels)[pick].astype(np.int64), pick, f"images of {source}")


def own_map_path(model: UserEnergy, spec: OwnMapSpec, config: LandscapeConfig) -> Path:
    """``maps_dir()/cache/<name>-<model hash>-<settings hash>.safetensors``: the model hash covers its code file,
    weights, data file and options, so a changed model is mapped again (as ``map_path`` keys a checkpoint's)."""
    c = model.config
    code = Path(c.target.rpartition(":")[0])
    data = Path(c.data) if c.data else None
    ident = {"target": c.target, "weights": c.weights_sha256, "shape": list(c.image_shape), "negate": c.negate,
             "range": list(c.value_range),
             "code": hashlib.sha256(code.read_bytes()).hexdigest() if code.is_file() else None,
             "data": [str(data), data.stat().st_size, data.stat().st_mtime_ns] if data and data.is_file() else c.data}
    digest = lambda d: hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]  # noqa: E731
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.checkpoint)[:40] or "model"
    settings = {"config": config.to_dict(), "extra": spec.extra()}
    return maps_dir() / "cache" / f"{stem}-{digest(ident)}-{digest(settings)}.safetensors"


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def map_own(model: UserEnergy, spec: OwnMapSpec, config: LandscapeConfig, device: str,
            evaluator: torch.nn.Module | None = None,
            progress: Callable[[int, int, Landscape], None] | None = None) -> Landscape:
    """Map a user model's energy from ``own_starts`` in image space, or in latent space through its decoder from
    N(0, I) draws of z (``spec.space``). A 1×28×28 model's minima are read by the evaluator, as a digit map's;
    others stay unlabelled, and image-space starts keep the data's labels (purity)."""
    digits = is_digit_model(model)
    latent = spec.space == "latent"
    if latent:
        z = torch.randn(spec.n, model.config.nz, generator=torch.Generator().manual_seed(int(spec.seed)))
        energy, decode = map_energy(model, "latent", spec.temperature)
        x, labels, index, words = z, None, None, f"z ~ N(0, I) in {model.config.nz} dimensions"
    else:
        x, labels, index, words = own_starts(model, spec.start_from, spec.n, spec.seed)
        # ``decode``: the minima as pictures while the map grows (map_landscape draws 1×28×28 minima only itself)
        energy, decode = model, None if digits else _identity
    t0 = time.perf_counter()
    land = map_landscape(energy, x.to(device), config, labels=labels, progress=progress, decode=decode)
    t1 = time.perf_counter()
    start_u8 = pictures(decode, x.to(device)) if latent else to_u8(x.numpy())
    layout = None
    if spec.layout == "pca" and land.images is not None:
        both = np.concatenate([start_u8, to_u8(land.images)])
        layout = fit_pca(both).transform(both).astype(np.float32)
    meta = spec.extra() | {
        "space": spec.space, "energy": "E(g(z))/T + ‖z‖²/2" if latent else "E(x)", "starts": words,
        "image_shape": list(model.image_shape),
        "data_index": None if index is None else index.tolist(), "own_model": model.config.target,
        "seconds": {"map": round(t1 - t0, 1), "layout": round(time.perf_counter() - t1, 1)}}
    if digits and evaluator is not None:
        meta["minima_quality"] = verdict(evaluator, land)
    elif not digits:
        meta["minima_labels"] = ("none: the evaluator reads 1×28×28 digits only"
                                 + ("; the starts carry the data's labels" if labels is not None else ""))
    return dataclasses.replace(land, start_images=start_u8, layout=layout, meta=meta)

