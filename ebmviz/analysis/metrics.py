"""Sample quality measured by the evaluator (``ebmviz.models.evaluator``).

- confidence: softmax probability of the best digit class (the "not a digit" class takes mass);
- confident share: fraction of samples with confidence > 0.9;
- class entropy: entropy (nats) of the histogram of predicted digits; ln 10 ≈ 2.303 is uniform;
- Fréchet distance between Gaussian fits of evaluator features of samples and of real digits:
  ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)  (the FID formula, in the evaluator's feature space);
- ROC curve and AUROC of an out-of-distribution score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch import nn

from ebmviz.images import from_u8
from ebmviz.models.evaluator import JUNK

CONFIDENT = 0.9  # a sample "is a digit" when the evaluator's top probability exceeds this


@dataclass(frozen=True)
class Prediction:
    label: np.ndarray  # (N,) int, best digit class 0..9
    confidence: np.ndarray  # (N,) float, its probability
    junk: np.ndarray  # (N,) float, probability of "not a digit"


@dataclass(frozen=True)
class Quality:
    n: int  # number of samples scored
    confident_share: float  # share with confidence > 0.9
    mean_confidence: float
    class_entropy: float  # nats; ln 10 = 2.303 for all ten digits equally often
    class_counts: list[int]  # predicted digits 0..9
    frechet: float | None  # against the reference features, None without a reference


@torch.no_grad()
def _batched(fn, x: torch.Tensor, device: torch.device, batch: int = 500) -> torch.Tensor:
    """fn over x in batches on ``device``; result on the CPU."""
    x = torch.as_tensor(x).float()
    return torch.cat([fn(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def classify(evaluator: nn.Module, images: torch.Tensor) -> Prediction:
    """Evaluator verdict on images (N, 1, 28, 28) in [-1, 1]."""
    probs = _batched(evaluator, images, _device(evaluator)).softmax(dim=1)  # (N, 11)
    conf, label = probs[:, :JUNK].max(dim=1)
    return Prediction(label.numpy(), conf.numpy(), probs[:, JUNK].numpy())


def features(evaluator: nn.Module, images: torch.Tensor) -> np.ndarray:
    """(N, D) evaluator features for the Fréchet distance."""
    return _batched(evaluator.features, images, _device(evaluator)).numpy().astype(np.float64)


def class_entropy(labels: np.ndarray, n_classes: int = 10) -> float:
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    p = counts / max(counts.sum(), 1)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets (N1, D) and (N2, D)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as FID code does
        eps = 1e-6 * np.eye(len(mu1))
        covmean = scipy.linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def quality(evaluator: nn.Module, images: torch.Tensor,
            reference: np.ndarray | None = None) -> Quality:
    """Evaluator quality of images (N, 1, 28, 28) in [-1, 1]; ``reference`` = real features."""
    pred = classify(evaluator, images)
    fd = None if reference is None else frechet_distance(features(evaluator, images), reference)
    return Quality(
        n=len(pred.label),
        confident_share=float((pred.confidence > CONFIDENT).mean()),
        mean_confidence=float(pred.confidence.mean()),
        class_entropy=class_entropy(pred.label),
        class_counts=np.bincount(pred.label, minlength=10).tolist(),
        frechet=fd,
    )


def saturation(images: np.ndarray, level: float = 0.9) -> float:
    """Share of pixels at or above ``level`` (bright) in images in [-1, 1] (float) or uint8.

    Real MNIST digits have about a tenth of their pixels this bright; over-saturated long-run
    samples of a short-run EBM have far more.
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = from_u8(x)
    return float((x >= level).mean())


def nearest_neighbours(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For images (n, …) in [-1, 1], n ≥ 2: the RMS pixel distance on the [0, 1] scale to the nearest other image
    (n,), and that image's index (n,) — near-duplicates among samples show as small distances."""
    f = torch.from_numpy(x.reshape(len(x), -1)).double() / 2  # [-1, 1] → distances on the [0, 1] scale
    d = torch.cdist(f, f).pow(2) / f.shape[1]
    d.fill_diagonal_(float("inf"))
    dist, idx = d.min(dim=1)
    return dist.sqrt().numpy(), idx.numpy()


def roc(inside: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve of a score that should be higher on ``inside`` (N,) than on ``outside`` (M,): (false positive rate,
    true positive rate) at every distinct threshold from the top, and the area under it: the probability that a
    random inside score beats a random outside one, ties counting half (0.5 is chance). Plain numpy (scikit-learn's
    import would add about a second to a page's first load)."""
    values = np.r_[inside, outside].astype(np.float64)
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    order = np.argsort(-values, kind="mergesort")
    values, labels = values[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(values)), len(values) - 1]  # the last index of each distinct value
    tpr = np.r_[0.0, np.cumsum(labels)[last] / max(len(inside), 1)]
    fpr = np.r_[0.0, np.cumsum(1 - labels)[last] / max(len(outside), 1)]
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher on ``inside`` than on ``outside`` (``roc``)."""
    return roc(inside, outside)[2]
