"""Cached computations behind the semantic-vs-texture page (Denoising-EBM). Images are float32 numpy arrays
(B, 1, 28, 28) in [-1, 1] unless named ``*_u8``; energies are U_s and U_c in the model's units (sums over pixels)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ebmviz.analysis import metrics
from ebmviz.analysis.embedding import PCA2, fit_pca
from ebmviz.analysis.metrics import CONFIDENT as CONFIDENT
from ebmviz.app import cache
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.data import DataError, load_dataset_with_source
from ebmviz.export import trajectory_arrays as trajectory_arrays
from ebmviz.images import to_u8 as to_u8
from ebmviz.models.denoising import DenoisingEBM, TwoStage, TwoStageConfig, texture_only
from ebmviz.sampling import Trajectory
from ebmviz.sampling.starts import make_starts
from ebmviz.transforms import interpolations


def _model(name: str, device: str) -> DenoisingEBM:
    return cache.load_model(name, device)


@dataclass(frozen=True)
class Runs:
    """The same seed drawn two ways: two-stage, and the texture stage alone from Gaussian noise."""

    two_stage: TwoStage
    texture_only: Trajectory
    seconds: float  # wall time of the two-stage draw


@st.cache_data(show_spinner="Sampling both ways…", max_entries=16)
def runs(name: str, device: str, config: TwoStageConfig, n: int, seed: int) -> Runs:
    """n two-stage chains and n texture-only chains with the same T, σ and ε₂. Raises ValueError for bad settings."""
    model = _model(name, device)
    t = time.perf_counter()
    two = model.draw(n, seed, config)
    seconds = time.perf_counter() - t
    return Runs(two, texture_only(model, n, seed, config), seconds)


@dataclass(frozen=True)
class TwoStageFrame:
    """One moment of the side-by-side timeline: the two-stage chains and the texture-only ones."""

    stage: str  # "semantic" or "texture"
    step: int  # the step within the stage (0: its start)
    two_stage_u8: np.ndarray  # (n, 1, 28, 28)
    texture_only_u8: np.ndarray  # (n, 1, 28, 28): its start while the two-stage chains are in the semantic stage
    energy: np.ndarray  # (n,) U_s (semantic frames) or U_c (texture frames) of the two-stage chains
    texture_only_energy: np.ndarray  # (n,) U_c of the texture-only chains


def two_stage_timeline(r: Runs) -> list[TwoStageFrame]:
    """Every recorded frame: the K semantic steps (texture-only waiting at its start), then the T texture steps of
    both, side by side. The texture stage's first frame, h(z_K), ends the semantic stage and is not repeated."""
    sem, tex, only = r.two_stage.semantic, r.two_stage.texture, r.texture_only
    frames = [TwoStageFrame("semantic", int(s), f, only.frames[0], sem.energy[s], only.energy[0])
              for f, s in zip(sem.frames, sem.frame_steps, strict=True)]
    frames += [TwoStageFrame("texture", int(s), f, g, tex.energy[s], only.energy[s])
               for f, g, s in zip(tex.frames, only.frames, tex.frame_steps, strict=True) if s > 0]
    return frames


@dataclass(frozen=True)
class TextureAdded:
    """What the texture stage changed: x_T − x⁰ of the two-stage chains, and the energies before and after.

    Pixels are on the [−1, 1] scale (one grey level of 255 is 2/255 ≈ 0.0078); "strokes" are the pixels the
    semantic image x⁰ = h(z_K) draws brighter than mid-grey (x⁰ > 0), the rest is background."""

    delta: np.ndarray  # (n, 1, 28, 28) x_T − x⁰
    mean_abs: float  # mean |Δ| per pixel over all chains and pixels
    stroke_abs: float  # … over the strokes (NaN when x⁰ draws none)
    stroke_signed: float  # mean Δ with its sign over the strokes: ≈ 0 when they got as much brighter as darker
    background_abs: float  # … over the background
    stroke_share: float  # share of the pixels that are strokes
    gain: float  # the display gain that maps the 99th percentile of |Δ| to full colour
    uc_start: float  # median U_c(x⁰, σ_0) over the chains
    uc_end: float  # median U_c(x_T, σ_T)
    d: int  # pixels per image: U_c of a sample at T = 1 is about d/2

    @property
    def grey_levels(self) -> float:
        """``mean_abs`` in grey levels of 255."""
        return self.mean_abs * 255 / 2

    @property
    def faint(self) -> bool:
        """Whether the change is too small to see without amplifying (under 4 grey levels on average)."""
        return self.grey_levels < 4

    @property
    def at_equipartition(self) -> bool:
        """Whether U_c after the pixel steps is within a third of d/2, the mean energy of a sample at T = 1."""
        return 0.75 < self.uc_end / (self.d / 2) < 4 / 3


def texture_added(two: TwoStage) -> TextureAdded:
    """The texture stage's change of a two-stage run (its final images and U_c per step)."""
    x0, xt = two.semantic.final, two.texture.final
    delta = (xt - x0).astype(np.float32)
    size = np.abs(delta)
    strokes = x0 > 0
    p99 = float(np.percentile(size, 99))
    return TextureAdded(
        delta=delta, mean_abs=float(size.mean()),
        stroke_abs=float(size[strokes].mean()) if strokes.any() else float("nan"),
        stroke_signed=float(delta[strokes].mean()) if strokes.any() else float("nan"),
        background_abs=float(size[~strokes].mean()) if (~strokes).any() else float("nan"),
        stroke_share=float(strokes.mean()), gain=1.0 / p99 if p99 > 0 else 1.0,
        uc_start=float(np.median(two.texture.energy[0])), uc_end=float(np.median(two.texture.energy[-1])),
        d=int(np.prod(x0.shape[1:])))


def confident_share(images: np.ndarray) -> float | None:
    """The share of images (B, 1, 28, 28) in [−1, 1] the evaluator reads as one digit with > 90% confidence; None
    without an evaluator."""
    pred = cache.evaluate_frames(to_u8(images))
    return None if pred is None else float((pred.confidence > CONFIDENT).mean())


@dataclass(frozen=True)
class DenoisePanel:
    """Digits through the DAE at several noise levels, with the per-pixel texture energy."""

    sigmas: tuple[float, ...]
    clean: np.ndarray  # (n, 1, 28, 28)
    noisy: np.ndarray  # (S, n, 1, 28, 28) x + σε, not clipped
    denoised: np.ndarray  # (S, n, 1, 28, 28) r(x̃, σ)
    energy_map: np.ndarray  # (S, n, 28, 28) (x − r)²/(2σ²)
    energy: np.ndarray  # (S, n) U_c(x, σ)


@st.cache_data(show_spinner="Denoising…", max_entries=16)
def denoise_panel(name: str, device: str, sigmas: tuple[float, ...], n: int, seed: int,
                  image: np.ndarray | None = None) -> DenoisePanel:
    """n held-out digits from the seed (or ``image`` (1, 1, 28, 28) alone) through r at each σ, one ε per image."""
    model = _model(name, device)
    if image is None:
        x = make_starts("data", n, seed, data=torch.from_numpy(cache.load_data("mnist", "test")[0]))
    else:
        x = torch.from_numpy(image).reshape(1, 1, 28, 28)
    x = x.to(model.device)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(model.device)
    noisy, den, emap = [], [], []
    with torch.no_grad():
        for s in sigmas:
            noisy.append((x + s * eps).cpu().numpy())
            den.append(model.denoise(x + s * eps, s).cpu().numpy())
            emap.append(model.energy_map(x, s, eps)[:, 0].cpu().numpy())
    emap = np.stack(emap)
    return DenoisePanel(tuple(sigmas), x.cpu().numpy(), np.stack(noisy), np.stack(den), emap,
                        emap.reshape(len(sigmas), len(x), -1).sum(-1))


@dataclass(frozen=True)
class LatentMap:
    """The DAE's codes z = f_α(x̃, σ) of held-out digits, projected to 2-D by a PCA fitted on them."""

    pca: PCA2
    xy: np.ndarray  # (N, 2)
    labels: np.ndarray  # (N,)
    sigma: float
    codes: np.ndarray  # (N, nz) the codes themselves


def nearest_codes(codes: np.ndarray, labels: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each chain's code z (n, nz): the cosine similarity to the most similar held-out code (N, nz) and that
    code's digit — (n,) and (n,). Direction is what h_γ decodes when it normalises codes first."""
    unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)  # noqa: E731
    cos = unit(np.asarray(z, np.float64)) @ unit(np.asarray(codes, np.float64)).T  # (n, N)
    best = cos.argmax(axis=1)
    return cos[np.arange(len(z)), best], np.asarray(labels)[best]


@st.cache_data(show_spinner="Encoding the held-out digits…", max_entries=8)
def latent_map(name: str, device: str, sigma: float, seed: int = 0) -> LatentMap:
    model = _model(name, device)
    images, labels, _ = cache.load_data("mnist", "test")
    x = torch.from_numpy(images).to(model.device)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(model.device)
    with torch.no_grad():
        z = torch.cat([model.encode(x[i:i + 500] + sigma * eps[i:i + 500], sigma) for i in range(0, len(x), 500)])
    z = z.cpu().numpy()
    pca = fit_pca(z)
    return LatentMap(pca, pca.transform(z), labels, sigma, z)


@dataclass(frozen=True)
class OOD:
    """−U_c(x, σ) of held-out digits and of out-of-distribution groups, with the AUROC of each group against them."""

    sigma: float
    scores: dict[str, np.ndarray]  # group -> (m,) −U_c; "MNIST test" first
    auroc: dict[str, float]  # OOD group -> AUROC of −U_c separating MNIST test (positive) from it
    missing: dict[str, str]  # group -> why it could not be scored


@st.cache_data(show_spinner="Scoring MNIST, Fashion-MNIST, noise and interpolations…", max_entries=8)
def ood(name: str, device: str, sigma: float, m: int, seed: int) -> OOD:
    """−U_c(x, σ) (with the model's fixed ε) of m images per group; AUROC of each OOD group against MNIST test."""
    model = _model(name, device)
    rng = np.random.default_rng(seed)
    test = cache.load_data("mnist", "test")[0]
    groups: dict[str, np.ndarray] = {"MNIST test": test[rng.permutation(len(test))[:m]]}
    missing: dict[str, str] = {}
    try:
        fashion = load_dataset_with_source("fashion-mnist", "test").images.numpy()
        groups["Fashion-MNIST test"] = fashion[rng.permutation(len(fashion))[:m]]
    except DataError as err:
        missing["Fashion-MNIST test"] = str(err)
    groups["uniform noise"] = make_starts("noise", m, seed).numpy()
    groups["digit interpolations"] = interpolations(torch.from_numpy(test), m, seed).numpy()
    scores = {}
    with torch.no_grad():
        for g, x in groups.items():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(model.device)
            scores[g] = np.concatenate([-model.texture_energy(t[i:i + 500], sigma).cpu().numpy()
                                        for i in range(0, len(t), 500)])
    inside = scores["MNIST test"]
    auroc = {g: metrics.auroc(inside, s) for g, s in scores.items() if g != "MNIST test"}
    return OOD(sigma, scores, auroc, missing)


class TwoStageState(PlayerState):
    spec = Slot(None)  # the run being played: (name, device, config, n, seed)


def texture_story(a: TextureAdded, cfg: TwoStageConfig, n: int, shipped: bool) -> str:
    """"What you are looking at" under the texture stage's difference picture: what changed, why U_c rose towards
    d/2 (equipartition at T = 1), and how this compares with the paper, every number from ``a`` (the run of ``n``
    chains with ``cfg``; ``shipped``: the checkpoint's own settings)."""
    half = a.d / 2
    shipped_note = " (the checkpoint's shipped settings)" if shipped else ""
    balanced = abs(a.stroke_signed) < 0.25 * a.stroke_abs
    look = (f"**What you are looking at.** {'The two rows above look the same' if a.faint else 'Compare the rows'}: "
            f"over the {n} chains the pixel steps changed a pixel by **{a.mean_abs:.4f}** on average on the [−1, 1] "
            "scale, about "
            f"{a.grey_levels:.1f} of 255 grey levels{', too little to see unamplified' if a.faint else ''}. On the "
            f"strokes (where x⁰ > 0, {a.stroke_share:.0%} of the pixels) a pixel changed by {a.stroke_abs:.4f}, "
            f"{a.stroke_signed:+.4f} on average with its sign: "
            + ("as often brighter as darker, " if balanced else
               f"mostly {'brighter' if a.stroke_signed > 0 else 'darker'}, ")
            + f"and by {a.background_abs:.4f} on the background, where black pixels can only get brighter (the "
              "sampler keeps every pixel in [−1, 1]). Amplified, it is a speckle of noise over the whole image"
            + (", not new strokes." if balanced else "."))
    energy = ((f"Meanwhile the median texture energy U_c rose from **{a.uc_start:.4g}** to **{a.uc_end:.4g}**. "
               "That is not the samples getting worse. ") if a.uc_end > a.uc_start else
              f"Meanwhile the median texture energy U_c went from **{a.uc_start:.4g}** to **{a.uc_end:.4g}**. ")
    energy += ("The pixel steps are Langevin at temperature T = 1, and near a digit U_c(x, σ) is roughly a bowl: "
               "the squared distance from the digit over 2σ², in each pixel direction the denoiser removes — nearly "
               f"all d = {a.d} of them. At T = 1 such a bowl holds T/2 = ½ of energy per direction on average "
               f"(equipartition), d·T/2 = **{half:g}** in all: a typical sample of exp(−U_c) is a digit plus pixel "
               "noise of about σ. ")
    if a.uc_start < half:
        energy += (f"The semantic image is smoother than such a sample, its U_c {half / a.uc_start:.1f}× below d/2. ")
    energy += (f"After the pixel steps U_c is {a.uc_end / half:.2f}× d/2"
               + (": the texture stage has put that noise back." if a.at_equipartition else
                  ": with these settings the chains end away from that level."))
    paper = ("In the paper (Zeng 2023, §4.2) the second stage supplements the texture detail the simple semantic "
             "decoder lacks, with 90 pixel steps on CIFAR-10 and CelebA. On these MNIST digits, with "
             f"{cfg.t_steps} pixel steps and σ_t from {cfg.sigma:g} to {cfg.sigma_end:g}{shipped_note}, "
             + ("the semantic images already carry the strokes, and what the stage adds is mostly that thermal "
                "noise." if a.faint else "the stage changes the images visibly: compare the rows."))
    return f"{look}\n\n{energy}\n\n{paper}"
