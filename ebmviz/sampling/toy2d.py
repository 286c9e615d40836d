"""Analytic energies with known answers: the sampler lab's 2-D densities and the tests' exact references.

Every function returns an energy ``E(x) -> (B,)`` for x of shape (B, D), with p ∝ exp(−E). The lab's energies
(``LAB_ENERGIES``, and ``custom`` for a mixture the user places) are ``Toy`` records: the energy, a box that holds
all but a negligible share of exp(−E/T) for T ≤ 2, a step size that suits it, and ``grid`` — the exact density,
normalised over a fine grid of the box, with its marginals and exact draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Energy = Callable[[torch.Tensor], torch.Tensor]


def gaussian_energy(mean, cov):
    """E(x) = ½ (x − μ)ᵀ Σ⁻¹ (x − μ): the Gaussian N(μ, Σ) up to its constant."""
    mu = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    prec = torch.as_tensor(np.linalg.inv(np.asarray(cov, dtype=np.float64)).astype(np.float32))

    def energy(x: torch.Tensor) -> torch.Tensor:
        d = x - mu.to(x)
        return 0.5 * ((d @ prec.to(x)) * d).sum(1)

    return energy


def mixture_energy(separation: float = 3.0, std: float = 0.5):
    """Equal mixture of N((±separation, 0), std²·I) in 2-D: E(x) = −log p(x) + const.

    The barrier between the modes, E(0) − E(mode), is ≈ separation² / (2·std²) nats.
    """
    means = torch.tensor([[-separation, 0.0], [separation, 0.0]])

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - means.to(x)) ** 2).sum(-1)  # (B, 2)
        return -torch.logsumexp(-sq / (2 * std**2), dim=1) + math.log(2.0)

    return energy


def wells_energy(n_wells: int, seed: int, box: float, width: float = 0.35):
    """E(x) = 0.02‖x‖² − Σ_k d_k exp(−‖x − μ_k‖²/(2·width²)) in 2-D: Gaussian wells of depth d_k in [1, 3] at
    random μ_k in [−box, box]² (drawn from ``seed``) on a weak bowl — a landscape with many minima."""
    g = torch.Generator().manual_seed(seed)
    mu = (torch.rand(n_wells, 2, generator=g) * 2 - 1) * box
    depth = 1 + 2 * torch.rand(n_wells, generator=g)

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - mu.to(x)) ** 2).sum(-1)  # (B, n_wells)
        return 0.02 * (x**2).sum(1) - (depth.to(x) * torch.exp(-sq / (2 * width**2))).sum(1)

    return energy



def gaussian_mixture(means, stds, weights=None):
    """E(x) = −log Σ_k w_k N(x; μ_k, σ_k² I) in 2-D (normalised weights, so a narrow component is a tall one).

    Args:
        means: (K, 2) centres μ_k. stds: (K,) σ_k > 0. weights: (K,) w_k ≥ 0, not all zero (None: equal).
    """
    mu = torch.as_tensor(np.asarray(means, dtype=np.float32)).reshape(-1, 2)
    sd = torch.as_tensor(np.asarray(stds, dtype=np.float32)).reshape(-1)
    w = np.ones(len(mu)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(sd) != len(mu) or len(w) != len(mu) or len(mu) == 0:
        raise ValueError("a mixture needs as many stds and weights as means, and at least one component")
    if not (sd > 0).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("mixture stds must be positive and weights non-negative, not all zero")
    log_w = torch.as_tensor(np.log(np.maximum(w / w.sum(), 1e-300)), dtype=torch.float32)
    log_norm = log_w - 2 * torch.log(sd) - math.log(2 * math.pi)  # log(w_k / (2π σ_k²))

    def energy(x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - mu.to(x)) ** 2).sum(-1)  # (B, K)
        return -torch.logsumexp(log_norm.to(x) - sq / (2 * sd.to(x) ** 2), dim=1)

    return energy


# Müller & Brown, Theor. Chim. Acta 53, 75 (1979): E(x, y) = Σ_k A_k exp(a_k(x−x0_k)² + b_k(x−x0_k)(y−y0_k)
# + c_k(y−y0_k)²) with the published parameters below. Minima (−0.558, 1.442) −146.70, (0.623, 0.028) −108.17,
# (−0.050, 0.467) −80.77; saddles (−0.822, 0.624) −40.66 and (0.212, 0.293) −72.25.
MB_A = torch.tensor([-200.0, -100.0, -170.0, 15.0])
MB_a = torch.tensor([-1.0, -1.0, -6.5, 0.7])
MB_b = torch.tensor([0.0, 0.0, 11.0, 0.6])
MB_c = torch.tensor([-10.0, -10.0, -6.5, 0.7])
MB_X0 = torch.tensor([1.0, 0.0, -0.5, -1.0])
MB_Y0 = torch.tensor([0.0, 0.5, 1.5, 1.0])


def muller_brown(p: torch.Tensor) -> torch.Tensor:
    """The Müller–Brown potential E (B,) of points p (B, 2), in its published units."""
    dx, dy = p[:, :1] - MB_X0.to(p), p[:, 1:] - MB_Y0.to(p)  # (B, 4)
    return (MB_A.to(p) * torch.exp(MB_a.to(p) * dx**2 + MB_b.to(p) * dx * dy + MB_c.to(p) * dy**2)).sum(1)


@dataclass(frozen=True)
class DensityGrid:
    """exp(−E/T) normalised over an n × n grid of cell centres (rows y, columns x)."""

    x: np.ndarray  # (n,) cell centres along x
    y: np.ndarray  # (n,) cell centres along y
    energy: np.ndarray  # (n, n) E at the centres, [row = y, column = x]
    prob: np.ndarray  # (n, n) probability of each cell, summing to 1
    temperature: float

    @property
    def cell(self) -> tuple[float, float]:
        return float(self.x[1] - self.x[0]), float(self.y[1] - self.y[0])

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(n+1,) cell edges along x and along y."""
        dx, dy = self.cell
        return (np.append(self.x - dx / 2, self.x[-1] + dx / 2), np.append(self.y - dy / 2, self.y[-1] + dy / 2))

    def marginal_x(self) -> np.ndarray:
        """(n,) exact marginal density of x (per unit length) at the centres."""
        return self.prob.sum(0) / self.cell[0]

    def marginal_y(self) -> np.ndarray:
        return self.prob.sum(1) / self.cell[1]

    def density(self) -> np.ndarray:
        """(n, n) the normalised density p(x, y) at the centres."""
        return self.prob / (self.cell[0] * self.cell[1])

    def mean(self) -> np.ndarray:
        """(2,) E[(x, y)] under the grid density."""
        return np.array([(self.prob.sum(0) * self.x).sum(), (self.prob.sum(1) * self.y).sum()])

    def draw(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, 2) exact draws: a cell by its probability, then a uniform point inside it."""
        rng = np.random.default_rng(seed)
        flat = rng.choice(self.prob.size, size=n, p=self.prob.ravel())
        row, col = np.divmod(flat, len(self.x))
        dx, dy = self.cell
        return np.stack([self.x[col] + (rng.random(n) - 0.5) * dx,
                         self.y[row] + (rng.random(n) - 0.5) * dy], 1).astype(np.float32)


@dataclass(frozen=True)
class Toy:
    """A 2-D energy of the sampler lab, with what the page needs to draw and judge it."""

    name: str  # registry key, used in links
    title: str
    energy: Energy  # (B, 2) -> (B,), p ∝ exp(−E)
    box: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max: all but a negligible share of the mass
    step: float  # a Langevin step s that shows ULA's bias and still moves (HMC's ε is half of it)
    note: str  # one line about what it tests
    grid_n: int = 200  # cells per side of the exact grid: fine enough for the narrowest feature

    def grid(self, n: int | None = None, temperature: float = 1.0) -> DensityGrid:
        """exp(−E/T) on an n × n grid of the box (n = ``grid_n`` by default), normalised to cell probabilities."""
        n = n or self.grid_n
        x0, x1, y0, y1 = self.box
        dx, dy = (x1 - x0) / n, (y1 - y0) / n
        xs, ys = x0 + dx * (np.arange(n) + 0.5), y0 + dy * (np.arange(n) + 0.5)
        X, Y = np.meshgrid(xs, ys)  # (n, n), rows along y
        pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float64)
        with torch.no_grad():
            e = self.energy(pts).double().numpy().reshape(n, n)
        logp = np.where(np.isfinite(e), -e / temperature, -np.inf)
        w = np.exp(logp - logp.max())
        return DensityGrid(xs, ys, e, w / w.sum(), float(temperature))

    def starts(self, n: int, seed: int = 0, where: str = "uniform") -> torch.Tensor:
        """(n, 2) start points: spread uniformly over the box (``where="uniform"``), or all at one point a quarter
        of the way into the box from its lower-left corner (``"point"``: what only mixing can spread out)."""
        x0, x1, y0, y1 = self.box
        if where == "point":
            return torch.tensor([[x0 + 0.25 * (x1 - x0), y0 + 0.25 * (y1 - y0)]]).repeat(n, 1)
        if where != "uniform":
            raise ValueError(f"unknown start {where!r}: 'uniform' or 'point'")
        g = torch.Generator().manual_seed(int(seed))
        u = torch.rand(n, 2, generator=g)
        return torch.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], 1)


def _ring(radius: float, width: float) -> Energy:
    return lambda x: (x.norm(dim=1) - radius) ** 2 / (2 * width**2)


def _banana(x: torch.Tensor) -> torch.Tensor:
    # x₁ ~ N(0, 1.5²), x₂ | x₁ ~ N(0.4·x₁² − 1, 0.5²): a Gaussian bent along a parabola
    return 0.5 * (x[:, 0] / 1.5) ** 2 + 0.5 * ((x[:, 1] - 0.4 * x[:, 0] ** 2 + 1.0) / 0.5) ** 2


def _double_well(x: torch.Tensor) -> torch.Tensor:
    # E = 3(x² − 1)² + y²/2: minima at (±1, 0), a barrier of 3 nats at the origin
    return 3.0 * (x[:, 0] ** 2 - 1) ** 2 + 0.5 * x[:, 1] ** 2


def _on_circle(k: int, radius: float) -> np.ndarray:
    a = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


MB_SCALE = 20.0  # the lab samples exp(−E_MB/20): barriers of 1.8 and 5.3 nats out of the two shallower minima

LAB_ENERGIES: dict[str, Toy] = {t.name: t for t in (
    Toy("gaussian", "Gaussian N(0, I)", gaussian_energy([0.0, 0.0], np.eye(2)), (-4.5, 4.5, -4.5, 4.5), 0.8,
        "The simplest target: ULA's variance is 1/(1 − s/2) where it should be 1."),
    Toy("correlated", "Correlated Gaussian (ρ = 0.9)", gaussian_energy([0.0, 0.0], [[2.0, 1.8], [1.8, 2.0]]),
        (-6.0, 6.0, -6.0, 6.0), 0.2,
        "Variances 3.8 and 0.2 along the diagonals: a step the narrow direction allows crawls along the wide one."),
    Toy("mix4", "Mixture of 4 Gaussians", gaussian_mixture([[-2, -2], [-2, 2], [2, -2], [2, 2]], [0.5] * 4),
        (-4.5, 4.5, -4.5, 4.5), 0.15, "Four equal modes 4 apart: chains rarely cross between them at T = 1."),
    Toy("mix8", "Mixture of 8 Gaussians", gaussian_mixture(_on_circle(8, 3.0), [0.35] * 8),
        (-4.6, 4.6, -4.6, 4.6), 0.1, "Eight narrow modes on a circle of radius 3, about 5 nats apart."),
    Toy("ring", "Ring", _ring(2.5, 0.3), (-3.8, 3.8, -3.8, 3.8), 0.05,
        "All the mass near a circle of radius 2.5: moving means going around."),
    Toy("banana", "Banana", _banana, (-5.5, 5.5, -3.5, 11.0), 0.02,
        "A Gaussian bent along a parabola: narrow across, long along the curve."),
    Toy("double_well", "Double well", _double_well, (-2.2, 2.2, -4.5, 4.5), 0.008,
        "Two wells at (±1, 0) with a 3-nat barrier between them."),
    Toy("muller_brown", "Müller–Brown (÷20)", lambda x: muller_brown(x) / MB_SCALE, (-1.75, 1.3, -0.45, 2.2), 0.0025,
        "The chemists' test surface: three minima, two saddles, steep walls."),
)}


def custom(components) -> Toy:
    """A mixture the user places: ``components`` rows (x, y, std, weight). The box covers every component
    with 4 of its stds to spare."""
    c = np.asarray(components, dtype=np.float64).reshape(-1, 4)
    energy = gaussian_mixture(c[:, :2], c[:, 2], c[:, 3])
    pad = 4 * c[:, 2]
    box = (float((c[:, 0] - pad).min()), float((c[:, 0] + pad).max()),
           float((c[:, 1] - pad).min()), float((c[:, 1] + pad).max()))
    # cells of at most a third of the narrowest std, in steps of 20 (the binned KL's bins), 200 … 800 per side
    side = max(box[1] - box[0], box[3] - box[2])
    n = int(min(800, max(200, 20 * math.ceil(3 * side / c[:, 2].min() / 20))))
    return Toy("custom", "Your mixture", energy, box, float(0.8 * c[:, 2].min() ** 2),
               f"{len(c)} component(s) you placed.", grid_n=n)
