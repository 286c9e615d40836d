"""The contract every method meets, checked by walking ``ebmviz.models.KINDS`` (CONTRIBUTING.md, "Adding a method").

A new kind is covered here without editing this file: registered, saved and loaded back, its trainer
found, and its shipped checkpoint's energy and ``draw`` checked.
"""

import dataclasses
import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ebmviz
from ebmviz import checkpoints
from ebmviz.data import load_dataset
from ebmviz.models import KINDS, Model
from ebmviz.models.base import Samples, contrastive_loss
from training.run import RunConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_the_model_shape_and_a_trainer(kind, tmp_path):
    cls = KINDS[kind]
    assert issubclass(cls, Model) and cls.kind == kind and cls.title
    assert dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen
    assert (cls.Draws is None) == (cls.DrawConfig is None)
    model = cls()
    arch = json.loads(json.dumps(model.arch()))  # what a checkpoint stores
    assert cls.from_arch(arch).config == model.config
    path = checkpoints.save(model, tmp_path / f"{kind}.safetensors", {"note": "contract"})
    loaded = checkpoints.load(path)
    assert type(loaded) is cls and loaded.meta["note"] == "contract" and loaded.meta["title"] == cls.title
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    trainer = importlib.import_module(f"training.{kind}")  # ``python -m training <kind>`` runs it
    configs = [v for v in vars(trainer).values()
               if isinstance(v, type) and issubclass(v, RunConfig) and v is not RunConfig]
    assert callable(trainer.main) and len(configs) == 1, configs


def _shipped(kind: str) -> Model:
    names = [i.name for i in checkpoints.list_checkpoints(checkpoints.REPO_CHECKPOINTS) if i.kind == kind]
    assert names, f"no shipped checkpoint of kind {kind!r} in checkpoints/"
    return checkpoints.load(names[0])


@pytest.mark.parametrize("kind", [k for k, cls in KINDS.items() if cls.is_energy])
def test_shipped_energies_are_energies(kind):
    """model(x) is E(x): (B,) for x (B, 1, 28, 28) in [-1, 1], finite, deterministic, with input gradients."""
    model = _shipped(kind)
    digits, _ = load_dataset("mnist", "test")
    x = torch.cat([digits[:5], torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1])
    e = model(x)
    assert e.shape == (8,) and e.dtype == torch.float32 and torch.isfinite(e).all()
    assert torch.equal(model(x), e)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xg).sum(), xg)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    # every energy the model names is one too, and None names model(x) itself (a subclass method of the same
    # name must not hide it: the anomaly page calls it on every energy model)
    assert model.named_energy(None) is model
    for name in model.further_energies:
        f = model.named_energy(name)(x)
        assert f.shape == (8,) and torch.isfinite(f).all() and torch.equal(model.named_energy(name)(x), f)


@pytest.mark.parametrize("kind", [k for k, cls in KINDS.items() if cls.Draws is not None])
def test_shipped_models_draw_their_declared_type(kind):
    model = _shipped(kind)
    cfg = model.draw_config()
    assert isinstance(cfg, model.DrawConfig)
    a = model.draw(3, seed=0)
    assert isinstance(a, model.Draws) and isinstance(a, Samples)
    assert a.final.shape == (3, 1, 28, 28) and a.final.dtype == np.float32
    assert a.final.min() >= -1 and a.final.max() <= 1 and isinstance(a.grad_evals, int) and a.grad_evals >= 0
    np.testing.assert_array_equal(model.draw(3, seed=0).final, a.final)
    assert not np.array_equal(model.draw(3, seed=1).final, a.final)


def test_models_that_do_not_draw_say_so():
    for cls in KINDS.values():
        if cls.Draws is None:
            with pytest.raises(TypeError, match="does not draw"):
                cls().draw(1)


def test_the_readme_library_example_runs():
    """The README's "Library" snippet, run as written (the public names in ``ebmviz/__init__.py``)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Library\n\n```python\n(.*?)```", readme, re.S)
    assert block, "README has no Library example"
    scope: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)  # the project's own documentation, not user input
    assert isinstance(scope["model"], ebmviz.Model) and scope["samples"].final.shape[1:] == (1, 28, 28)


def test_contrastive_loss_is_the_ml_update_with_its_regulariser():
    e_real, e_fake = torch.tensor([1.0, -1.0, 3.0]), torch.tensor([2.0, 4.0])
    terms = contrastive_loss(e_real, e_fake, alpha=0.5)
    assert terms.cd.item() == pytest.approx(1.0 - 3.0)
    assert terms.loss.item() == pytest.approx(-2.0 + 0.5 * ((1 + 1 + 9) / 3 + (4 + 16) / 2))
    assert contrastive_loss(e_real, e_fake).loss.item() == pytest.approx(-2.0)  # α = 0: the ML surrogate alone
    # its gradient lowers data energy and raises sample energy
    e_real.requires_grad_(True)
    e_fake.requires_grad_(True)
    contrastive_loss(e_real, e_fake).loss.backward()
    assert torch.all(e_real.grad > 0) and torch.all(e_fake.grad < 0)
