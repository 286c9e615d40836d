"""Where a map is drawn: an image energy as it is, or a generator's latent space, as ADELM maps (Hill, Nijkamp &
Zhu 2019). In image space the shipped energies' minima are not digits (short-run: a few 7s, 1s and 5s; the
triangle and CF-EBM energies: mostly junk); through a generator they are.
"""

from __future__ import annotations

import torch

from ebmviz.analysis.latent import Generator, LatentEnergy
from ebmviz.landscape.result import LandscapeConfig
from ebmviz.sampling import Energy


@torch.no_grad()
def _loss(generator: Generator, z: torch.Tensor, x: torch.Tensor, prior: float) -> torch.Tensor:
    return (generator(z) - x).pow(2).flatten(1).sum(1) + prior * z.pow(2).sum(1)


def fit_latents(generator: Generator, images: torch.Tensor, nz: int, *, steps: int = 400, inits: int = 4,
                lr: float = 0.05, prior: float = 0.01, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes z (N, nz) whose generated images match ``images`` (N, 1, 28, 28): for each image, Adam on
    ‖g(z) − x‖² + prior·‖z‖² (summed over pixels) for ``steps`` steps, the learning rate falling to 0 on a
    cosine, from ``inits`` starts (z = 0, then N(0, I) draws from ``seed``); the lowest loss is kept.

    Returns (z (N, nz), loss (N,)). The generator's parameters are not changed (it should be in eval mode).
    """
    if inits < 1 or steps < 0:
        raise ValueError(f"need inits ≥ 1 and steps ≥ 0, got {inits} and {steps}")
    g = torch.Generator().manual_seed(int(seed))
    x = images.detach()
    best_z, best = None, None
    for i in range(inits):
        z0 = torch.zeros(len(x), nz) if i == 0 else torch.randn(len(x), nz, generator=g)
        z = z0.to(x.device).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = (generator(z) - x).pow(2).flatten(1).sum(1) + prior * z.pow(2).sum(1)
            (grad,) = torch.autograd.grad(loss.sum(), z)  # gradients to z only, never to the generator
            z.grad = grad
            opt.step()
            sched.step()
        z = z.detach()
        loss = _loss(generator, z, x, prior)
        if best is None:
            best_z, best = z, loss
        else:
            better = loss < best
            best_z, best = torch.where(better[:, None], z, best_z), torch.where(better, loss, best)
    return best_z, best


def map_energy(model: torch.nn.Module, space: str, temperature: float = 1.0) -> tuple[Energy, Generator | None]:
    """The energy a map of ``model`` descends and the decoder of its states to images: (model, None) in image
    space, (``LatentEnergy``, the generator) in latent space. Raises ``ValueError`` for a model without a
    generator in latent space, or an unknown space."""
    if space == "image":
        return model, None
    if space != "latent":
        raise ValueError(f"space must be 'image' or 'latent', got {space!r}")
    if not hasattr(model, "generator"):
        raise ValueError(f"a {type(model).__name__} has no generator to map a latent space through")
    return LatentEnergy(model, model.generator, temperature), model.generator


def codes_for(model: torch.nn.Module, images: torch.Tensor, method: str = "auto", *, steps: int = 400,
              inits: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latent codes (N, nz) of ``images`` (N, 1, 28, 28) as a latent map's starts: the inference network's mean
    (``method="infer"``, or ``"auto"`` when the model has one) or ``fit_latents`` (``"fit"``). Returns the codes and
    the fit's loss (N,) (None when inferred). Raises ``ValueError`` when the model cannot give codes that way."""
    has_inference = hasattr(model, "inference")
    if method not in ("auto", "infer", "fit"):
        raise ValueError(f"method must be 'auto', 'infer' or 'fit', got {method!r}")
    if method == "infer" and not has_inference:
        raise ValueError(f"a {type(model).__name__} has no inference network; fit the codes instead")
    if not hasattr(model, "generator"):
        raise ValueError(f"a {type(model).__name__} has no generator, so no latent space")
    if method == "infer" or (method == "auto" and has_inference):
        with torch.no_grad():
            return model.inference(images)[0], None
    return fit_latents(model.generator, images, model.config.nz, steps=steps, inits=inits, seed=seed)


def space_config(space: str, **settings) -> LandscapeConfig:
    """``LandscapeConfig`` for a space: images stay in [−1, 1] and are one minimum within L2 distance 1.0;
    ``settings`` override any field."""
    base = {"clamp": (-1.0, 1.0), "merge_tol": 1.0} if space == "image" else {}
    return LandscapeConfig(**(base | settings))
