"""Divergence triangle (Han, Nijkamp, Fang, Hill, Zhu & Wu, CVPR 2019) scaled to MNIST.

Three models on (z, x), z ∈ R^d, x (B, 1, 28, 28) in [-1, 1]:

    generator   P(x, z) = p(z)·p_θ(x|z),    p(z) = N(0, I),  x = g_θ(z) + ε,  ε ~ N(0, s²I)
                (or, once ``python -m training fit-prior`` has run, a learned mixture p_ψ(z): ``models.prior``)
    inference   Q(x, z) = q_data(x)·q_φ(z|x),  q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x))
    energy      Π(x, z) = π_α(x)·q_φ(z|x),  π_α(x) ∝ exp(−E_α(x))   (the paper's f_α = −E_α)

trained jointly by  min_{θ,φ} max_α  Δ = KL(Q‖P) + KL(P‖Π) − KL(Q‖Π).
One update takes three steps, E, I and G; ``energy_step``, ``inference_step`` and ``generator_step``
give each step's loss and the trainer calls them (``losses`` gathers all three for one batch).
``draw`` gives generator samples refined by a few Langevin steps on E_α (``Refined``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ebmviz.models.base import ContrastiveLoss, Model, Refined, contrastive_loss
from ebmviz.models.nets import DeconvGenerator
from ebmviz.models.prior import MixturePrior
from ebmviz.sampling import LangevinConfig, langevin


@dataclass(frozen=True)
class TriangleConfig:
    nz: int = 32  # d, latent dimension
    width: int = 32  # c, conv channels (c and 2c)
    hidden: int = 256  # fully connected units
    obs_std: float = math.sqrt(0.5)  # s: ‖x − g(z)‖² summed over pixels is the −log p(x|z) up to const.
    prior_components: int = 0  # K of a learned mixture prior p_ψ(z) (``fit-prior``); 0: N(0, I), as the paper


def _trunk(c: int, hidden: int) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, hidden) features; the E and I nets share this shape (not weights)."""
    return nn.Sequential(
        nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c, 14, 14)
        nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, 2c, 7, 7)
        nn.Flatten(), nn.Linear(2 * c * 49, hidden), nn.LeakyReLU(0.2),
    )


class Inference(nn.Module):
    """q_φ(z|x): (B, 1, 28, 28) -> μ (B, nz), log σ² (B, nz)."""

    def __init__(self, nz: int, c: int, hidden: int):
        super().__init__()
        self.trunk = _trunk(c, hidden)
        self.head = nn.Linear(hidden, 2 * nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.trunk(x)).chunk(2, dim=1)
        return mu, logvar


class EnergyNet(nn.Module):
    """E_α: (B, 1, 28, 28) -> (B,), low on data."""

    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.trunk = _trunk(c, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(-1)


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """−log N(z; μ, diag e^{logvar}) per row (B,), without the constant (d/2)·log 2π."""
    return 0.5 * (logvar + (z - mu) ** 2 / (logvar.exp() + 1e-6)).sum(dim=1)


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag e^{logvar}) ‖ N(0, I)) per row (B,)."""
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)


@dataclass(frozen=True)
class TriangleWeights:
    """Weights of the terms in the three steps' losses (the trainer's flags of the same names)."""

    sleep_weight: float = 0.1  # sleep-phase NLL −log q_φ(z|g(z)) in the I and G steps
    kl_weight: float = 1.0  # KL(q_φ(z|x)‖p(z)) in the I step: 1 is the ELBO with s² = 1/2; the public code's 1/d
    energy_l2: float = 0.0  # E² regulariser in the E step (0: as the paper)


@dataclass(frozen=True)
class InferenceTerms:
    """I step: ``loss`` = recon + w_KL·kl_z + w_sleep·sleep_nll, minimised over φ (KL(Q‖P) and the sleep phase)."""

    loss: torch.Tensor
    recon: torch.Tensor  # ‖g(z̃) − x‖² summed over pixels, mean over the batch, z̃ ~ q_φ(z|x)
    kl_z: torch.Tensor  # KL(q_φ(z|x) ‖ p(z)) summed over latent dimensions, mean over the batch
    sleep_nll: torch.Tensor  # −log q_φ(z|g(z)) on dream data z ~ p(z), mean over the batch


@dataclass(frozen=True)
class GeneratorTerms:
    """G step: ``loss`` = recon + e_fake + w_sleep·sleep_nll, minimised over θ (KL(Q‖P) + KL(P‖Π))."""

    loss: torch.Tensor
    recon: torch.Tensor  # as in ``InferenceTerms``, with the current φ
    e_fake: torch.Tensor  # mean E(g(z)): the generator chases low energy
    sleep_nll: torch.Tensor  # −log q_φ(z|g(z)), gradients through g(z)


@dataclass(frozen=True)
class TriangleLosses:
    """All three steps' terms on one batch at the same parameters (the trainer re-evaluates before each step)."""

    energy: ContrastiveLoss  # E step: min_α mean E(x) − mean E(g(z)) (g(z) detached)
    inference: InferenceTerms  # I step
    generator: GeneratorTerms  # G step
    kl_qp: torch.Tensor  # KL(Q‖P) up to the data entropy and constants (``TriangleModel.kl_qp``)

    @property
    def energy_gap(self) -> torch.Tensor:
        """E_P[E] − E_Q[E] = KL(P‖Π) − KL(Q‖Π) up to the entropies of P and q_data; the E step raises it."""
        return -self.energy.cd


# The refinement a model without shipped settings uses: a few small, clipped steps. Longer or larger moves
# leave the generator's samples for blob-like minima of E (checkpoints/README.md has the numbers).
REFINEMENT = LangevinConfig(n_steps=10, step_size=1.0, noise_std=0.005, grad_clip=0.01, record_every=1)


class TriangleModel(Model):
    """Generator g_θ, inference q_φ and energy E_α; ``model(x)`` is E_α(x) and ``draw`` gives ``Refined``."""

    kind = "triangle"
    Config = TriangleConfig
    title = "Divergence triangle: generator, inference and energy models"
    Draws = Refined
    draw_default = REFINEMENT
    further_energies = {"generator −log p(x)": "free_energy"}

    def __init__(self, config: TriangleConfig | None = None, meta: dict | None = None):
        super().__init__(config, meta)
        config = self.config
        self.generator = DeconvGenerator(config.nz, config.width, config.hidden)
        self.inference = Inference(config.nz, config.width, config.hidden)
        self.energy_net = EnergyNet(config.width, config.hidden)
        # per-pixel mean of the training images (1, 1, 28, 28): the fill-with-the-mean baseline
        self.register_buffer("data_mean", torch.zeros(1, 1, 28, 28))
        self.prior = MixturePrior(config.prior_components, config.nz) if config.prior_components else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """E_α(x) (B,): the module is an energy for ``ebmviz.sampling``, p ∝ exp(−E)."""
        return self.energy_net(x)

    def encode(self, x: torch.Tensor, sample: bool = False, gen: torch.Generator | None = None) -> torch.Tensor:
        """z for x: μ_φ(x), or a reparameterised draw μ + σ·ε when ``sample``."""
        mu, logvar = self.inference(x)
        if not sample:
            return mu
        eps = torch.randn(mu.shape, generator=gen).to(mu.device) if gen is not None else torch.randn_like(mu)
        return mu + (0.5 * logvar).exp() * eps

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x -> μ_φ(x) -> g_θ(μ): (B, 1, 28, 28) -> (B, 1, 28, 28)."""
        return self.generator(self.encode(x))

    def latents(self, n: int, seed: int = 0, learned: bool = True) -> torch.Tensor:
        """n codes (n, nz) from ``seed``: from the learned prior p_ψ when the model has one and ``learned``, else
        from N(0, I)."""
        g = torch.Generator().manual_seed(seed)
        if learned and self.prior is not None:
            return self.prior.sample(n, g)
        return torch.randn(n, self.config.nz, generator=g).to(self.data_mean.device)

    def prior_energy(self, z: torch.Tensor) -> torch.Tensor:
        """−log p(z) up to a constant (B,) for codes z (B, nz): of p_ψ when learned, else ‖z‖²/2."""
        return -self.prior.log_prob(z) if self.prior is not None else 0.5 * z.pow(2).sum(1)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (B,) with its normalising constant: the learned prior's, else N(0, I)'s."""
        if self.prior is not None:
            return self.prior.log_prob(z)
        return -0.5 * (z.pow(2).sum(1) + z.shape[1] * math.log(2 * math.pi))

    def free_energy(self, x: torch.Tensor, draws: int = 16, seed: int = 0) -> torch.Tensor:
        """−log p_θ(x) (B,) in nats, the generator model's own energy of x (B, 1, 28, 28), p(x) = ∫ p(z) p_θ(x|z) dz:
        the importance-weighted estimate (Burda, Grosse & Salakhutdinov 2016) with q_φ(z|x) as the proposal,

            −log (1/K) Σ_k p(z_k)·N(x; g(z_k), s²I) / q_φ(z_k|x),   z_k = μ_φ(x) + σ_φ(x)·ε_k,

        an upper bound on −log p(x) in expectation that tightens as K = ``draws`` grows, and exact when q_φ(z|x) is
        the true posterior. p(z) is the learned prior when the model has one. The ε_k (K, nz) are drawn from
        ``seed`` and shared by every image, so an image's value does not depend on the batch it is in."""
        mu, logvar = self.inference(x)
        eps = torch.randn(draws, mu.shape[1], generator=torch.Generator().manual_seed(seed)).to(mu.device)
        s2, pixels = self.config.obs_std**2, x[0].numel()
        log_w = []
        for e in eps:
            z = mu + (0.5 * logvar).exp() * e
            log_px = -((self.generator(z) - x) ** 2).flatten(1).sum(1) / (2 * s2) - 0.5 * pixels * math.log(
                2 * math.pi * s2)
            log_q = -0.5 * (logvar + e.pow(2) + math.log(2 * math.pi)).sum(1)  # (z − μ)²/σ² = ε²
            log_w.append(log_px + self.log_prior(z) - log_q)
        return math.log(draws) - torch.stack(log_w).logsumexp(dim=0)

    def generate(self, n: int, seed: int = 0, learned: bool = True) -> torch.Tensor:
        """n samples g_θ(z), z drawn from ``seed`` by ``latents``: (n, 1, 28, 28)."""
        return self.generator(self.latents(n, seed, learned))

    def draw(self, n: int, seed: int = 0, config: LangevinConfig | None = None) -> Refined:
        """n generator samples from ``seed``, refined by Langevin on exp(−E_α) with ``config`` (default: shipped).

        ``config.n_steps = 0`` leaves the generator's samples as they are.
        """
        config = self.draw_config() if config is None else config
        with torch.no_grad():
            x = self.generate(n, seed)
        return Refined(generated=x.cpu().numpy(), refinement=langevin(self, x, config, seed=seed))

    def recover(self, seen: torch.Tensor, hidden: torch.Tensor, n_iter: int = 10) -> list[torch.Tensor]:
        """Fill hidden pixels by alternating inference and generation.

        Starts from the observation with hidden pixels set to the data mean, then repeats
        x ← observed pixels ⊕ g_θ(μ_φ(x)) on the hidden ones. Returns [x_0, x_1, …, x_n_iter].
        """
        hidden = hidden.to(seen.device)
        x = torch.where(hidden, self.data_mean.expand_as(seen), seen)
        out = [x]
        for _ in range(n_iter):
            x = torch.where(hidden, self.reconstruct(x), seen)
            out.append(x)
        return out

    # ----------------------------------------------------------------- the three steps' losses
    def vae_terms(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """recon = mean_B ‖g(z̃) − x‖²_sum with z̃ = μ + σ·ε, and KL(q_φ(z|x)‖p(z)) per row (B,)."""
        mu, logvar = self.inference(x)
        z_tilde = mu + (0.5 * logvar).exp() * eps
        recon = ((self.generator(z_tilde) - x) ** 2).flatten(1).sum(1).mean()
        return recon, kl_to_prior(mu, logvar)

    def sleep_term(self, z: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Sleep phase: mean −log q_φ(z | g(z)) on dream pairs (z, fake = g(z))."""
        mu, logvar = self.inference(fake)
        return gaussian_nll(z, mu, logvar).mean()

    def energy_step(self, x: torch.Tensor, fake: torch.Tensor,
                    w: TriangleWeights = TriangleWeights()) -> ContrastiveLoss:
        """E step on data x and generator samples ``fake`` (detached): minimising ``loss`` over α maximises
        KL(P‖Π) − KL(Q‖Π) = E_P[E] − E_Q[E] + const."""
        return contrastive_loss(self.energy_net(x), self.energy_net(fake.detach()), w.energy_l2)

    def inference_step(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                       w: TriangleWeights = TriangleWeights()) -> InferenceTerms:
        """I step on data x, prior draws z (B', d), their images ``fake`` = g(z) and ε (B, d) for z̃ = μ + σ·ε."""
        recon, kl = self.vae_terms(x, eps)
        sleep = self.sleep_term(z, fake.detach())
        return InferenceTerms(loss=recon + w.kl_weight * kl.mean() + w.sleep_weight * sleep,
                              recon=recon, kl_z=kl.mean(), sleep_nll=sleep)

    def generator_step(self, x: torch.Tensor, z: torch.Tensor, eps: torch.Tensor,
                       w: TriangleWeights = TriangleWeights()) -> GeneratorTerms:
        """G step: reconstruct x through q_φ and g_θ, and lower E on g(z) and −log q_φ(z|g(z))."""
        recon, _ = self.vae_terms(x, eps)
        fake = self.generator(z)
        e_fake = self.energy_net(fake).mean()
        sleep = self.sleep_term(z, fake)
        return GeneratorTerms(loss=recon + e_fake + w.sleep_weight * sleep, recon=recon, e_fake=e_fake,
                              sleep_nll=sleep)

    def kl_qp(self, terms: InferenceTerms) -> torch.Tensor:
        """KL(Q‖P) up to the data entropy and constants: −log p(x|z̃) + KL(q(z|x)‖p(z)) = recon/(2s²) + kl_z."""
        return terms.recon / (2 * self.config.obs_std**2) + terms.kl_z

    def losses(self, x: torch.Tensor, z: torch.Tensor, eps: torch.Tensor,
               w: TriangleWeights = TriangleWeights()) -> TriangleLosses:
        """The three steps' terms for data x (B, 1, 28, 28), prior draws z (B', d) and ε (B, d), at the
        current parameters. Training takes the steps in the order E, I, G, each on fresh terms."""
        fake = self.generator(z)
        inference = self.inference_step(x, z, fake, eps, w)
        return TriangleLosses(energy=self.energy_step(x, fake, w), inference=inference,
                              generator=self.generator_step(x, z, eps, w), kl_qp=self.kl_qp(inference))


def interpolate(model: TriangleModel, a: torch.Tensor, b: torch.Tensor,
                n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Images g((1−t)·μ(a) + t·μ(b)) for n values of t in [0, 1], and their energies: (n, 1, 28, 28), (n,)."""
    za, zb = model.encode(a[None] if a.dim() == 3 else a), model.encode(b[None] if b.dim() == 3 else b)
    t = torch.linspace(0, 1, n, device=za.device)[:, None]
    x = model.generator((1 - t) * za + t * zb)
    return x, model(x)


def recovery_error(x: torch.Tensor, clean: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Per-image mean |x − clean| on hidden pixels, relative to the pixel range (the paper's Table III): (B,)."""
    diff = (x - clean).abs() / 2.0 * hidden
    return diff.flatten(1).sum(1) / hidden.flatten(1).sum(1).clamp_min(1)

