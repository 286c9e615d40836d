"""A learned prior over a generator's codes: a Gaussian mixture p_ψ(z) = Σ_k π_k N(z; m_k, C_k), fitted by EM.

Why: a generator trained with p(z) = N(0, I) and an inference model q_φ(z|x) only learns to draw the region the
codes of real data fill, the aggregate posterior q(z) = mean_x q_φ(z|x). Where N(0, I) puts mass that q(z) does
not (between the digits' clusters), g(z) draws blends of digits. In the divergence triangle the prior is a
factor of P(x, z) = p(z)·p_θ(x|z) and enters two of the three terms. In KL(Q‖P), the term that learns the generator
and the inference model from data,

    KL(Q‖P) = −E_{q(z)}[log p_ψ(z)] + terms without ψ,

so the prior that minimises KL(Q‖P) over ψ, with θ and φ fixed, is the maximum-likelihood fit of p_ψ to
codes z̃ = μ_φ(x) + σ_φ(x)·ε of the training digits. KL(P‖Π) depends on p(z) as well (it would pull p_ψ towards
codes whose pictures the energy E_α rates as typical); this fit leaves that term aside. ``fit_mixture`` does the fit
by EM (Dempster, Laird & Rubin 1977); ``MixturePrior`` holds it as buffers, so it travels in the checkpoint, and
samples and scores codes.
The number of components is chosen by held-out likelihood (``python -m training fit-prior``), not by samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MixtureFit:
    """A fitted mixture and its EM trace; float64 tensors."""

    weights: torch.Tensor  # π (K,), sums to 1
    means: torch.Tensor  # m (K, d)
    covariances: torch.Tensor  # C (K, d, d), symmetric positive definite
    log_likelihood: list[float]  # mean log p_ψ(z) over the fitted codes after each M step (the first: at the start)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_ψ(z) (B,) for codes z (B, d)."""
        return _log_joint(z.double(), self.weights.log(), self.means, torch.linalg.cholesky(self.covariances)) \
            .logsumexp(dim=1)


def _log_joint(z: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
               scale_tril: torch.Tensor) -> torch.Tensor:
    """log π_k + log N(z; m_k, L_k L_kᵀ) for every code and component: z (B, d) -> (B, K)."""
    d = z.shape[1]
    out = []
    for k in range(len(means)):  # one component at a time: (B, d) work, never (K, B, d)
        u = torch.linalg.solve_triangular(scale_tril[k], (z - means[k]).T, upper=False)  # L⁻¹(z − m): (d, B)
        log_det = 2 * scale_tril[k].diagonal().log().sum()
        out.append(log_weights[k] - 0.5 * (u.pow(2).sum(0) + log_det + d * math.log(2 * math.pi)))
    return torch.stack(out, dim=1)


def fit_mixture(z: torch.Tensor, k: int, *, iters: int = 300, tol: float = 1e-6, reg: float = 1e-4,
                seed: int = 0) -> MixtureFit:
    """Maximum-likelihood K-component Gaussian mixture with full covariances for codes z (N, d), by EM.

    Starts from K distinct codes as means, the codes' covariance for every component and equal weights; stops
    when the mean log-likelihood gains less than ``tol`` per iteration. ``reg`` is added to every covariance's
    diagonal (a component that collapses onto a few codes would otherwise become singular).
    Raises ``ValueError`` for K outside 1..N or non-finite codes.
    """
    if z.dim() != 2 or not 1 <= k <= len(z):
        raise ValueError(f"need codes (N, d) with 1 <= K <= N, got {tuple(z.shape)} and K = {k}")
    if not torch.isfinite(z).all():
        raise ValueError("the codes hold NaN or infinite values")
    z = z.detach().double().cpu()
    n, d = z.shape
    eye = torch.eye(d, dtype=z.dtype)
    gen = torch.Generator().manual_seed(seed)
    means = z[torch.randperm(n, generator=gen)[:k]].clone()
    covs = (torch.cov(z.T).reshape(d, d) + reg * eye).expand(k, d, d).clone()
    log_w = torch.full((k,), -math.log(k), dtype=z.dtype)
    history: list[float] = []
    for _ in range(iters + 1):  # the last E step only scores the last M step's parameters
        joint = _log_joint(z, log_w, means, torch.linalg.cholesky(covs))  # E step: (N, K)
        log_p = joint.logsumexp(dim=1)
        history.append(float(log_p.mean()))
        if len(history) > iters or (len(history) > 1 and history[-1] - history[-2] < tol):
            break
        resp = (joint - log_p[:, None]).exp()  # responsibilities r_nk
        nk = resp.sum(0).clamp_min(1e-12)  # M step
        log_w = (nk / n).log()
        means = (resp.T @ z) / nk[:, None]
        for j in range(k):
            diff = z - means[j]
            covs[j] = (resp[:, j, None] * diff).T @ diff / nk[j] + reg * eye
    weights = log_w.exp()
    return MixtureFit(weights=weights / weights.sum(), means=means, covariances=covs, log_likelihood=history)


class MixturePrior(nn.Module):
    """p_ψ(z) = Σ_k π_k N(z; m_k, L_k L_kᵀ) over codes z ∈ R^d, as buffers (π (K,), m (K, d), L (K, d, d)).

    Until ``load_fit`` it is K copies of N(0, I), which is N(0, I) itself.
    """

    def __init__(self, k: int, d: int):
        super().__init__()
        if k < 1 or d < 1:
            raise ValueError(f"a mixture needs K >= 1 components in d >= 1 dimensions, got K = {k}, d = {d}")
        self.register_buffer("weights", torch.full((k,), 1.0 / k))
        self.register_buffer("means", torch.zeros(k, d))
        # identities, made by filling a view: torch.eye and arithmetic on "meta" tensors import torch's compiler when
        # ``checkpoints.load`` probes the architecture on that device; a factory and fill_ do not
        self.register_buffer("scale_tril", torch.zeros(k, d, d))
        self.scale_tril.diagonal(dim1=1, dim2=2).fill_(1.0)

    @property
    def components(self) -> int:
        return len(self.weights)

    def load_fit(self, fit: MixtureFit) -> MixturePrior:
        """Take a ``fit_mixture`` result of the same K and d."""
        if tuple(fit.means.shape) != tuple(self.means.shape):
            raise ValueError(f"a fit of shape {tuple(fit.means.shape)} does not fit a prior of shape "
                             f"{tuple(self.means.shape)}")
        self.weights.copy_(fit.weights)
        self.means.copy_(fit.means)
        self.scale_tril.copy_(torch.linalg.cholesky(fit.covariances))
        return self

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_ψ(z) (B,) for codes z (B, d), in the buffers' dtype; differentiable in z (the latent sampler's
        −log p)."""
        z = z.to(self.means.dtype)
        return _log_joint(z, self.weights.log(), self.means, self.scale_tril).logsumexp(dim=1)

    def sample(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """n codes (n, d): a component k ~ π per code, then m_k + L_k ε with ε ~ N(0, I). ``gen`` is a CPU
        generator (the same seed gives the same codes on every device)."""
        weights = self.weights.detach().cpu().double()
        k = torch.multinomial(weights, n, replacement=True, generator=gen)
        eps = torch.randn(n, self.means.shape[1], generator=gen).to(self.means.device)
        k = k.to(self.means.device)
        return self.means[k] + (self.scale_tril[k] @ eps[:, :, None]).squeeze(-1)
