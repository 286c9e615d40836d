"""Cached computations behind the EBGAN page, each returning a typed result. Images are float32 numpy arrays
(B, 1, 28, 28) in [-1, 1]; energies are D(x), the per-pixel squared reconstruction error on the [0, 1] scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz import checkpoints as checkpoints
from ebmviz.analysis import metrics
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.app import cache
from ebmviz.images import to_u8
from ebmviz.models.ebgan import EBGAN, pulling_away, reconstruction_energy
from ebmviz.sampling import LangevinConfig, Trajectory, langevin
from ebmviz.sampling.starts import make_starts


def _model(name: str, device: str) -> EBGAN:
    return cache.load_model(name, device)


def _verdict(images: np.ndarray) -> metrics.Prediction | None:
    return cache.evaluate_frames(to_u8(images))


@dataclass(frozen=True)
class Generated:
    images: np.ndarray  # (n, 1, 28, 28) G(z), z ~ N(0, I) from the seed
    energy: np.ndarray  # (n,) D(G(z))
    pt: float  # f_PT over the encoder's codes of these samples
    prediction: metrics.Prediction | None  # the evaluator's digits, None without an evaluator


@st.cache_data(show_spinner="Drawing from the generator…", max_entries=16)
def generated(name: str, device: str, n: int, seed: int) -> Generated:
    model = _model(name, device)
    with torch.no_grad():
        x = model.generate(n, seed)
        recon, codes = model.discriminator(x)
        e = reconstruction_energy(x, recon)
    x = x.cpu().numpy()
    return Generated(x, e.cpu().numpy(), float(pulling_away(codes)), _verdict(x))


@dataclass(frozen=True)
class EnergyPicture:
    """What D does to digits (held out and trained on), generator samples and noise."""

    inputs: dict[str, np.ndarray]  # group -> (n, 1, 28, 28)
    recons: dict[str, np.ndarray]  # group -> Dec(Enc(x)), clamped to [-1, 1] for display
    energy: dict[str, np.ndarray]  # group -> (m,) D(x) of m ≥ n images of that group, for the histogram


GROUPS = ("held-out digits", "training digits", "generator samples", "uniform noise")


@st.cache_data(show_spinner="Reconstructing through D…", max_entries=8)
def energy_picture(name: str, device: str, n: int, seed: int, m: int = 500) -> EnergyPicture:
    """n images of each group reconstructed by D, and D(x) of m images of each group (held-out digits, digits D
    was trained on, G(z) from the seed, U(−1, 1) noise)."""
    model = _model(name, device)
    rng = np.random.default_rng(seed)
    test, train = cache.load_data("mnist", "test")[0], cache.load_data("mnist", "train")[0]
    inputs, recons, energy = {}, {}, {}
    with torch.no_grad():
        groups = {"held-out digits": torch.from_numpy(test[rng.permutation(len(test))[:m]]),
                  "training digits": torch.from_numpy(train[rng.permutation(len(train))[:m]]),
                  "generator samples": model.generate(m, seed),
                  "uniform noise": make_starts("noise", m, seed)}
        for g, x in groups.items():
            x = x.to(model.device)
            r = model.reconstruct(x)
            energy[g] = model(x).cpu().numpy()
            inputs[g], recons[g] = x[:n].cpu().numpy(), r[:n].clamp(-1, 1).cpu().numpy()
    return EnergyPicture(inputs, recons, energy)


@dataclass(frozen=True)
class Diversity:
    """How varied n generator samples are: the evaluator's digits and the nearest-neighbour duplicates."""

    n: int
    class_counts: np.ndarray  # (10,) samples the evaluator gives each digit
    class_entropy: float  # nats; ln 10 for all digits equally often
    confident_share: float  # share the evaluator is > 90% sure of
    nn_distance: np.ndarray  # (n,) RMS pixel distance ([0, 1] scale) of each sample to its nearest other sample
    real_nn_distance: np.ndarray  # (n_real,) the same among held-out digits
    closest_pairs: np.ndarray  # (k, 2, 1, 28, 28) the k closest pairs of samples

    @property
    def threshold(self) -> float:
        """Near-duplicate: closer to another sample than the closest two held-out digits are to each other."""
        return float(self.real_nn_distance.min())

    @property
    def duplicate_share(self) -> float:
        return float((self.nn_distance < self.threshold).mean())


@st.cache_data(show_spinner="Scoring 1,000 generator samples…", max_entries=8)
def diversity(name: str, device: str, n: int = 1000, seed: int = 0, k: int = 8) -> Diversity | None:
    """The evaluator's digit histogram and the near-duplicates of n samples (None without an evaluator)."""
    model = _model(name, device)
    with torch.no_grad():
        x = model.generate(n, seed).cpu().numpy()
    pred = _verdict(x)
    if pred is None:
        return None
    dist, idx = metrics.nearest_neighbours(x)
    real = cache.load_data("mnist", "test")[0][:n]
    order = np.argsort(dist)
    pairs, seen = [], set()
    for i in order:  # each pair once
        j = int(idx[i])
        if (j, int(i)) not in seen:
            seen.add((int(i), j))
            pairs.append(np.stack([x[i], x[j]]))
        if len(pairs) == k:
            break
    real_dist = metrics.nearest_neighbours(real)[0]
    return Diversity(n=n, class_counts=np.bincount(pred.label, minlength=10),
                     class_entropy=metrics.class_entropy(pred.label),
                     confident_share=float((pred.confidence > metrics.CONFIDENT).mean()),
                     nn_distance=dist, real_nn_distance=real_dist, closest_pairs=np.stack(pairs))


@st.cache_data(show_spinner="Langevin on D's energy…", max_entries=16)
def descent(name: str, device: str, config: LangevinConfig, start: str, n: int, seed: int) -> cache.Judged[Trajectory]:
    """``config`` on D from G(z) (``start`` "generator") or U(−1, 1) noise ("noise")."""
    model = _model(name, device)
    x0 = make_starts(start, n, seed, model=model).to(model.device)
    run = langevin(model, x0, config, seed=seed)
    return cache.Judged(run, _verdict(x0.cpu().numpy()), _verdict(run.final))
