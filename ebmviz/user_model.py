"""The user's own energy: a factory the operator names on the command line, its safetensors weights, its images.

``UserSpec`` is what ``ebmviz run --model PATH.py:FACTORY [--weights …] [--data …] [--name …] [--shape C,H,W]
[--negate] [--range LO,HI]`` says; ``load_user_model(spec)`` builds it and returns a ``UserEnergy``, a ``Model``
like every shipped one, so every sampler, map and score takes it. ``UserModelError`` names the model and the
problem for each thing that can go wrong on load (checked in this order):

1. the file or module is missing, or importing it raises;
2. the factory is missing, not callable, raises (its error is shown) or returns no ``nn.Module``;
3. the weights are not a safetensors file, or their names or shapes differ from the module's;
4. the image shape is unknown, out of range, or differs between ``--shape``, the module's ``image_shape`` attribute
   and the data;
5. on a batch of the data (or of noise without data): the output is not one number per image (B,), not finite, or
   has no gradient with respect to x; a ``decode`` (with ``latent_dim``) that raises, gives another size or
   non-finite images.

Optional extras: ``generate(n, seed)`` (the pages' generator starts: ``UserGenerator``), and ``decode(z)`` with an
int ``latent_dim`` (``model.generator``, a ``UserDecoder``: the landscape's latent-space maps).

The code run is only ever the operator's: a spec comes from the command line or ``$EBMVIZ_USER_MODELS`` (which
``ebmviz run`` writes), never from a link, an upload or a checkpoint folder.

Value range: the app's pixels are in [−1, 1]. A model trained on [lo, hi] (``--range 0,1``) is called on
lo + (x + 1)·(hi − lo)/2, so E is still a function of the app's x. ``--negate`` turns a model that returns a logit
or −E into an energy: E(x) = −f(x).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ebmviz import storage
from ebmviz.image_sets import ImageSet, ImageSetError, check_shape, load_images
from ebmviz.models import Model
from ebmviz.sampling import LangevinConfig

ENV = "EBMVIZ_USER_MODELS"  # JSON list of UserSpec dicts: what ``ebmviz run --model …`` hands the app's process
PROBE = 16  # images the load-time checks run the energy on
# The sampler a user model starts with on the pages: the short-run recipe most image EBMs train with (IGEBM, JEM,
# Nijkamp et al.: s = 10 on a gradient clipped to ±0.03, σ = 0.005), 256 steps. A module may set its own with a
# ``langevin`` dict attribute of LangevinConfig fields.
USER_SAMPLER = LangevinConfig(n_steps=256, step_size=10.0, noise_std=0.005, grad_clip=0.03, record_every=4)


class UserModelError(ValueError):
    """A user model that cannot be used; the message names it and the problem."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"model {name}: {reason}")


@dataclass(frozen=True)
class UserSpec:
    """One ``--model`` of the command line and its options."""

    target: str  # "path/to/file.py:factory" or "package.module:factory"
    weights: str | None = None  # a .safetensors file of the module's state_dict
    data: str | None = None  # the user's images (``ebmviz.image_sets``)
    name: str = ""  # what the app calls it ("" -> the factory's name)
    shape: tuple[int, int, int] | None = None  # (C, H, W) when neither the module nor the data says
    negate: bool = False  # the module returns −E (a logit): E = −f(x)
    value_range: tuple[float, float] = (-1.0, 1.0)  # the pixel range the module was trained on

    @property
    def label(self) -> str:
        """The name the app shows and links use."""
        return self.name or self.target.rsplit(":", 1)[-1]

    def to_dict(self) -> dict:
        return {"target": self.target, "weights": self.weights, "data": self.data, "name": self.name,
                "shape": list(self.shape) if self.shape else None, "negate": self.negate,
                "value_range": list(self.value_range)}

    @classmethod
    def from_dict(cls, d: dict) -> UserSpec:
        return cls(str(d["target"]), d.get("weights"), d.get("data"), str(d.get("name") or ""),
                   tuple(int(s) for s in d["shape"]) if d.get("shape") else None, bool(d.get("negate")),
                   tuple(float(v) for v in d.get("value_range") or (-1.0, 1.0)))


def registered() -> list[UserSpec]:
    """The specs in ``$EBMVIZ_USER_MODELS`` (what ``ebmviz run --model`` passed); [] when unset. A value that is not
    a JSON list of specs raises ``ValueError``."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return []
    try:
        return [UserSpec.from_dict(d) for d in json.loads(raw)]
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"${ENV} is not a JSON list of model specs ({exc})") from None


@dataclass(frozen=True)
class UserConfig:
    """The ``Config`` of a ``UserEnergy``: where it came from (shown on the Models page)."""

    target: str = ""
    weights: str | None = None
    weights_sha256: str | None = None
    data: str | None = None
    image_shape: tuple[int, int, int] = (1, 28, 28)
    negate: bool = False
    value_range: tuple[float, float] = (-1.0, 1.0)
    parameters: int = 0
    extras: tuple[str, ...] = field(default_factory=tuple)  # optional methods found: "generate", "decode"
    nz: int = 0  # the decoder's latent size (``latent_dim``), 0 without one


class UserEnergy(Model):
    """A user's module as a ``Model``: E(x) = ±f(lo + (x + 1)·(hi − lo)/2) for x (B, C, H, W) in [−1, 1].

    ``UserGenerator`` adds ``generate(n, seed)`` when the user's module has one.
    """

    kind = "user"
    Config = UserConfig
    title = "your own energy model"
    draw_default = USER_SAMPLER

    def __init__(self, net: nn.Module, config: UserConfig, meta: dict | None = None):
        super().__init__(config, meta)
        self.net = net
        self.image_shape = config.image_shape
        lo, hi = config.value_range
        self._lo, self._half = lo, (hi - lo) / 2
        self._same_range = (lo, hi) == (-1.0, 1.0)
        if "decode" in config.extras:  # the latent landscape maps descend U(z) = E(g(z))/T + ‖z‖²/2 through it
            self.generator = UserDecoder(net, lo, self._half, config.image_shape)

    def to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """App pixels in [−1, 1] -> the module's range [lo, hi]."""
        return x if self._same_range else self._lo + (x + 1) * self._half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.to_model_range(x))
        return -out if self.config.negate else out


class UserDecoder(nn.Module):
    """A user module's ``decode(z)`` as a generator g: z (n, latent_dim) -> images (n, C, H, W) in the app's [−1, 1]
    (its output mapped from the module's range, not clamped: the latent energy's gradient goes through it)."""

    def __init__(self, net: nn.Module, lo: float, half: float, shape: tuple[int, int, int]):
        super().__init__()
        self.net, self._lo, self._half, self._shape = net, lo, half, tuple(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net.decode(z)
        return ((out - self._lo) / self._half - 1).reshape(len(z), *self._shape)


class UserGenerator(UserEnergy):
    """A ``UserEnergy`` whose module has ``generate(n, seed)``: the pages offer generator starts."""

    def generate(self, n: int, seed: int) -> torch.Tensor:
        """The module's ``generate(n, seed)``, mapped into [−1, 1] and clamped: (n, C, H, W). Anything it raises, or
        an output of another size, is a ``ValueError`` naming it (the pages show it as the start's message)."""
        try:
            out = self.net.generate(n, seed)
        except Exception as exc:
            raise ValueError(f"your model's generate({n}, {seed}) raised {type(exc).__name__}: {exc}") from None
        if not isinstance(out, torch.Tensor) or out.numel() != n * math.prod(self.image_shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"your model's generate({n}, {seed}) returned {got}, not {n} images of shape "
                             f"{self.image_shape}")
        return ((out - self._lo) / self._half - 1).clamp(-1, 1).reshape(n, *self.image_shape)


def _import(spec: UserSpec) -> object:
    """The factory ``spec.target`` names; ``UserModelError`` for a missing file, module or name."""
    name = spec.label
    where, sep, factory = spec.target.rpartition(":")
    if not sep or not where or not factory:
        raise UserModelError(name, f"--model takes PATH.py:FACTORY or module:FACTORY, got {spec.target!r}")
    try:
        if where.endswith(".py") or os.sep in where or "/" in where:
            path = Path(where).expanduser().resolve()
            if not path.is_file():
                raise UserModelError(name, f"no such file {where}")
            module_name = f"ebmviz_user_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
            if module_name in sys.modules:
                module = sys.modules[module_name]
            else:
                loader = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(loader)
                sys.modules[module_name] = module
                try:
                    loader.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]
                    raise
        else:
            module = importlib.import_module(where)
    except UserModelError:
        raise
    except ModuleNotFoundError as exc:
        raise UserModelError(name, f"cannot import {where}: {exc}") from None
    except Exception as exc:  # the user's module raised while importing
        raise UserModelError(name, f"importing {where} raised {type(exc).__name__}: {exc}") from None
    fn = getattr(module, factory, None)
    if fn is None:
        found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))[:8]
        raise UserModelError(name, f"{where} has no {factory!r} (it defines: {', '.join(found) or 'nothing callable'})")
    if not callable(fn):
        raise UserModelError(name, f"{factory!r} in {where} is not callable")
    return fn


def _weights(net: nn.Module, spec: UserSpec) -> str:
    """Load ``spec.weights`` into ``net`` (strict); the file's SHA-256 prefix."""
    name, path = spec.label, Path(spec.weights).expanduser()
    if path.suffix != storage.SUFFIX:
        raise UserModelError(name, f"weights load from safetensors only, and {path.name} is not a .safetensors file "
                                   "(save one with safetensors.torch.save_file(model.state_dict(), "
                                   "'model.safetensors'); ebmviz never unpickles)")
    try:
        _, shapes = storage.read_header(path, None, "")
    except storage.HeaderError as exc:
        raise UserModelError(name, f"weights {path}: {exc.reason}") from None
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing, extra = sorted(set(want) - set(shapes)), sorted(set(shapes) - set(want))
    wrong = sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
    if missing or extra or wrong:
        parts = [f"missing {', '.join(missing[:3])}" if missing else "",
                 f"not in the module {', '.join(extra[:3])}" if extra else "",
                 "; ".join(f"{k} is {shapes[k]} in the file, {want[k]} in the module" for k in wrong[:3])]
        raise UserModelError(name, f"weights {path.name} do not match the module: {'; '.join(p for p in parts if p)}")
    try:
        _, tensors = storage.read_tensors(path)
        net.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise UserModelError(name, f"cannot read weights {path.name}: {exc}") from None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _shape(net: nn.Module, spec: UserSpec, data: ImageSet | None) -> tuple[int, int, int]:
    """(C, H, W) from ``--shape``, the module's ``image_shape`` and the data, which must agree."""
    said = {}
    if spec.shape is not None:
        said["--shape"] = tuple(spec.shape)
    if getattr(net, "image_shape", None) is not None:
        said["the module's image_shape"] = tuple(int(s) for s in net.image_shape)
    if data is not None:
        said["the data"] = data.shape
    if not said:
        raise UserModelError(spec.label, "its image shape is unknown: give --shape C,H,W, --data, or an image_shape "
                                         "attribute on the module")
    if len(set(said.values())) > 1:
        what = "image shape not matching the data" if data is not None else "the image shapes given disagree"
        raise UserModelError(spec.label, f"{what}: " + ", ".join(
            f"{k} says {'×'.join(map(str, v))}" for k, v in said.items()))
    shape = next(iter(said.values()))
    try:
        return check_shape(shape, next(iter(said)))
    except ImageSetError as exc:
        raise UserModelError(spec.label, str(exc)) from None


def _probe(model: UserEnergy, data: ImageSet | None, name: str) -> None:
    """Run E on ``PROBE`` images of the data (or of uniform noise): one finite number per image, with a gradient."""
    on = "the data" if data is not None else "uniform noise"
    if data is not None:
        x = torch.from_numpy(data.images[:PROBE]).clone()
    else:
        x = torch.rand(PROBE, *model.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x.requires_grad_(True)
    try:
        with torch.enable_grad():
            e = model(x)
    except Exception as exc:
        raise UserModelError(name, f"forward on {len(x)} images of shape {tuple(x.shape[1:])} raised "
                                   f"{type(exc).__name__}: {exc}") from None
    if not isinstance(e, torch.Tensor) or e.shape != (len(x),):
        got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
        raise UserModelError(name, f"forward returned {got} for {len(x)} images; an energy is one number per image, "
                                   f"shape ({len(x)},) (e.g. .squeeze(1) or .sum over the other dimensions)")
    bad = int((~torch.isfinite(e)).sum())
    if bad:
        raise UserModelError(name, f"energies not finite on {on}: {bad} of {len(x)} images give NaN or ±inf")
    grad = torch.autograd.grad(e.sum(), x, allow_unused=True)[0] if e.requires_grad else None
    if grad is None:
        raise UserModelError(name, "no gradient with respect to x: the energy does not depend on its input through "
                                   "autograd (a detach, torch.no_grad or a numpy step inside forward?); Langevin "
                                   "sampling needs ∇ₓE")
    if not torch.isfinite(grad).all():
        raise UserModelError(name, f"the gradient ∇ₓE is not finite on {on}")
    if hasattr(model, "generator"):  # decode(z) must give finite images of the model's shape
        z = torch.randn(4, model.config.nz, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                images = model.generator(z)
        except Exception as exc:
            raise UserModelError(name, f"decode(z) for z of shape (4, {model.config.nz}) (latent_dim) raised "
                                       f"{type(exc).__name__}: {exc}") from None
        if not torch.isfinite(images).all():
            raise UserModelError(name, "decode(z) gives images that are not finite")


def load_user_model(spec: UserSpec, device: str | torch.device = "cpu") -> UserEnergy:
    """Build, load and check the model ``spec`` names (module docstring); ``UserModelError`` for every problem."""
    name = spec.label
    factory = _import(spec)
    try:
        net = factory()
    except Exception as exc:
        raise UserModelError(name, f"{spec.target} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise UserModelError(name, f"{spec.target} returned {type(net).__name__}, not a torch nn.Module")
    sha = _weights(net, spec) if spec.weights else None
    data = None
    if spec.data:
        try:
            data = load_images(spec.data)
        except ImageSetError as exc:
            raise UserModelError(name, f"--data {exc}") from None
    shape = _shape(net, spec, data)
    lo, hi = spec.value_range
    if not (np.isfinite([lo, hi]).all() and lo < hi):
        raise UserModelError(name, f"--range must be LO,HI with LO < HI, got {lo:g},{hi:g}")
    nz = getattr(net, "latent_dim", None)
    nz = int(nz) if isinstance(nz, int) and not isinstance(nz, bool) and nz > 0 else 0
    extras = tuple(k for k in ("generate", "decode") if callable(getattr(net, k, None)) and (k != "decode" or nz))
    config = UserConfig(spec.target, spec.weights, sha, spec.data, shape, spec.negate, (lo, hi),
                        sum(p.numel() for p in net.parameters()), extras, nz)
    sampler = USER_SAMPLER
    if isinstance(getattr(net, "langevin", None), dict):
        sampler = replace(sampler, **{k: v for k, v in net.langevin.items() if k in USER_SAMPLER.to_dict()})
    meta = {"kind": "user", "title": f"{name}: your own energy model ({spec.target})", "sampler": sampler.to_dict(),
            "dataset": {"source": data.source if data else "no data given (--data)"}}
    model = (UserGenerator if "generate" in extras else UserEnergy)(net, config, meta)
    model.eval().requires_grad_(False)
    model.data = data  # the user's images (ImageSet) or None: starts, maps and anomaly sets use them
    _probe(model, data, name)
    return model.to(device)
