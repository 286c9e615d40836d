"""Every model the app offers, by name: the shipped checkpoints, those of added folders, and the user's own models.

``entries()`` lists them (an unusable one with its error, so a page can say why it is missing), ``load(name)``
gives the ``Model``. Names are what pickers show and links carry; a name never becomes a path or code: checkpoint
files are found through ``checkpoints.named`` and user models through the specs the operator gave
(``user_model.registered``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch

from ebmviz import checkpoints
from ebmviz.models import KINDS, Model
from ebmviz.user_model import UserEnergy, UserModelError, UserSpec, load_user_model, registered


@dataclass(frozen=True)
class Entry:
    name: str  # what the app shows and links carry
    cls: type[Model] | None  # the model's class (None when unusable)
    origin: str  # "shipped", "added" (from an added checkpoint folder) or "yours" (the user's own model)
    where: str  # the checkpoint file, or the user model's PATH.py:FACTORY
    error: str | None = None  # why it cannot be used, or None
    spec: UserSpec | None = None  # a user model's spec


@functools.lru_cache(maxsize=32)
def _user(spec: UserSpec) -> UserEnergy | UserModelError:
    """A user model, loaded once per process (its factory runs once); its error instead of raising."""
    try:
        return load_user_model(spec)
    except UserModelError as exc:
        return exc


def user_entries(taken: set[str] = frozenset()) -> list[Entry]:
    """The user models the operator named (``$EBMVIZ_USER_MODELS``), each loaded and checked."""
    try:
        specs = registered()
    except ValueError as exc:
        return [Entry("your models", None, "yours", "$EBMVIZ_USER_MODELS", str(exc))]
    out, seen = [], set(taken)
    for spec in specs:
        if spec.label in seen:
            out.append(Entry(spec.label, None, "yours", spec.target, f"the name {spec.label!r} is taken by another "
                                                                     "model; give this one --name", spec))
            continue
        seen.add(spec.label)
        got = _user(spec)
        if isinstance(got, UserModelError):
            out.append(Entry(spec.label, None, "yours", spec.target, got.reason, spec))
        else:
            out.append(Entry(spec.label, type(got), "yours", spec.target, None, spec))
    return out


def entries() -> list[Entry]:
    """Shipped checkpoints, then those of added folders, then the user's models; unusable ones carry their error."""
    out = [Entry(i.name, KINDS[i.kind] if i.error is None else None, "added" if i.added else "shipped", str(i.path),
                 i.error) for i in checkpoints.list_checkpoints()]
    return out + user_entries({e.name for e in out})


def names(accept=lambda cls: True) -> list[str]:
    """Names of the usable models whose class ``accept``s."""
    return [e.name for e in entries() if e.error is None and accept(e.cls)]


def load(name: str, device: str | torch.device = "cpu") -> Model:
    """The model called ``name`` in eval mode with frozen parameters, resolved as ``entries`` lists it (a user model
    whose name a checkpoint has never shadows it). A checkpoint raises ``CheckpointError``, a user model
    ``UserModelError``; a name nobody gave raises ``CheckpointError`` (not a checkpoint of the folders)."""
    taken = {i.name for i in checkpoints.list_checkpoints()}
    for entry in user_entries(taken) if name not in taken else []:
        if entry.name == name and entry.spec is not None:
            got = _user(entry.spec) if entry.error is None else UserModelError(name, entry.error)
            if isinstance(got, UserModelError):
                raise got
            # the loaded model is shared by every session: another device gets its own copy, never a move
            return got if got.device == torch.device(device) else copy.deepcopy(got).to(device)
    return checkpoints.load(checkpoints.named(name), device=device)
