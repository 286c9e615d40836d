"""The shape every method's model has, written once.

A method is a subclass of ``Model`` that sets its class attributes and writes ``forward``:

    kind        the checkpoint's ``kind``, its key in ``ebmviz.models.KINDS``
    Config      frozen dataclass of the architecture; ``arch()`` is its JSON form (``meta["arch"]``)
    title       one line for the app and the checkpoint's metadata
    is_energy   ``model(x)`` is an energy E(x) (B,) for x (B, 1, 28, 28) in [-1, 1], p(x) ∝ exp(−E(x))
    image_shape (C, H, W) of those images: (1, 28, 28) for every shipped method, a user model's own shape
    further_energies  other image energies the model defines, name -> method (x -> (B,)); ``named_energy``
    Draws       the type ``draw`` returns, None when the model does not sample
    DrawConfig  the settings ``draw`` takes; ``draw_key`` is where a checkpoint ships them in its
                metadata and ``draw_default`` what a model without them uses

``draw(n, seed, config=None)`` is the one sampling entry of every method. An energy model draws by
Langevin from uniform noise unless it overrides ``draw`` with its own procedure (a cascade, a
generator and a refinement, …); whatever it returns has ``final`` (n, 1, 28, 28) float32 in [-1, 1]
and ``grad_evals``, the energy-gradient evaluations spent per sample (see ``Samples``).

``contrastive_loss`` is the maximum-likelihood update every energy here is trained with.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ebmviz.sampling import LangevinConfig, Trajectory, langevin
from ebmviz.sampling.starts import make_starts
from ebmviz.storage import to_json


@runtime_checkable
class Samples(Protocol):
    """What every ``draw`` returns, whatever else its type holds."""

    @property
    def final(self) -> np.ndarray: ...  # (n, 1, 28, 28) float32 in [-1, 1]

    @property
    def grad_evals(self) -> int: ...  # energy-gradient evaluations per sample


@dataclass(frozen=True)
class Refined:
    """What a model with a generator draws: samples g(z) of its prior's z, then Langevin on its exp(−E) from them."""

    generated: np.ndarray  # (n, 1, 28, 28) float32 g(z)
    refinement: Trajectory  # the Langevin run started at ``generated`` (0 steps: the samples as they are)

    @property
    def final(self) -> np.ndarray:
        return self.refinement.final

    @property
    def grad_evals(self) -> int:
        return self.refinement.grad_evals


class Model(nn.Module):
    """Base of every method's module: config, metadata, architecture record and ``draw``."""

    kind: ClassVar[str]
    Config: ClassVar[type]
    title: ClassVar[str] = ""
    image_shape: ClassVar[tuple[int, int, int]] = (1, 28, 28)  # (C, H, W) of the images E takes; a user model's own
    is_energy: ClassVar[bool] = True
    further_energies: ClassVar[dict[str, str]] = {}
    Draws: ClassVar[type | None] = Trajectory
    DrawConfig: ClassVar[type | None] = LangevinConfig
    draw_key: ClassVar[str] = "sampler"
    draw_default: ClassVar[Any] = LangevinConfig()

    def __init__(self, config: Any = None, meta: dict | None = None):
        super().__init__()
        self.config = self.Config() if config is None else config
        self.meta: dict = dict(meta or {})  # the checkpoint's metadata; empty for a fresh model

    @classmethod
    def from_arch(cls, arch: dict, meta: dict | None = None) -> Model:
        """The model an ``arch()`` dict describes (raises TypeError when the dict does not fit ``Config``)."""
        return cls(cls.Config(**arch), meta)

    def arch(self) -> dict:
        """The architecture config as a JSON-able dict (tuples as lists: equal to itself after a trip through JSON)."""
        return to_json(asdict(self.config))

    @property
    def device(self) -> torch.device:
        first = next(itertools.chain(self.parameters(), self.buffers()), None)
        return first.device if first is not None else torch.device("cpu")

    def named_energy(self, name: str | None = None) -> Any:
        """The image energy called ``name``, x (B, 1, 28, 28) -> (B,): the model itself for None, else one of
        ``further_energies``. Raises ``ValueError`` for a name the model does not define."""
        if name is None:
            return self
        if name not in self.further_energies:
            raise ValueError(f"a {type(self).__name__} has no energy {name!r}"
                             + (f"; it has {', '.join(self.further_energies)}" if self.further_energies else ""))
        return getattr(self, self.further_energies[name])

    def draw_config(self) -> Any:
        """The sampling settings this checkpoint ships (``meta[draw_key]``), else ``draw_default``."""
        if self.DrawConfig is None:
            raise TypeError(f"{type(self).__name__} does not draw samples")
        shipped = self.meta.get(self.draw_key)
        return self.DrawConfig.from_dict(shipped) if shipped else self.draw_default

    def draw(self, n: int, seed: int = 0, config: Any = None) -> Samples:
        """n samples by Langevin on exp(−E) from U(−1, 1) noise: a ``Trajectory`` of n chains.

        ``config`` (a ``LangevinConfig``) defaults to ``draw_config()``; the same seed gives the same samples.
        """
        if not self.is_energy or self.Draws is None:
            raise TypeError(f"{type(self).__name__} does not draw samples")
        config = self.draw_config() if config is None else config
        x0 = make_starts("noise", n, seed, shape=self.image_shape).to(self.device)
        return langevin(self, x0, config, seed=seed)


@dataclass(frozen=True)
class ContrastiveLoss:
    """One maximum-likelihood update's terms; ``loss`` is what the optimiser minimises."""

    loss: torch.Tensor  # cd + α·(mean E(x⁺)² + mean E(x⁻)²)
    cd: torch.Tensor  # mean E(x⁺) − mean E(x⁻): contrastive divergence, the ML gradient's surrogate
    e_real: torch.Tensor  # mean E(x⁺) on data
    e_fake: torch.Tensor  # mean E(x⁻) on the model's samples


def contrastive_loss(e_real: torch.Tensor, e_fake: torch.Tensor, alpha: float = 0.0) -> ContrastiveLoss:
    """The ML update of an energy, p ∝ exp(−E): lower E on data (B,), raise it on samples (B',).

    ∇_θ of mean E(x⁺) − mean E(x⁻) is the log-likelihood gradient with x⁻ ~ p_θ; the α term keeps
    energies near zero (Du & Mordatch 2019). The samples must not carry gradients to θ: pass E of
    detached samples.
    """
    cd = e_real.mean() - e_fake.mean()
    loss = cd + alpha * (e_real.pow(2).mean() + e_fake.pow(2).mean()) if alpha else cd
    return ContrastiveLoss(loss=loss, cd=cd, e_real=e_real.mean(), e_fake=e_fake.mean())
