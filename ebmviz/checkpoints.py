"""Checkpoints: one ``.safetensors`` file per model, JSON metadata in its header, never pickle.

A file holds the module's ``state_dict`` tensors and one metadata entry, ``"ebmviz"``, a JSON
object with at least ``kind`` (a key of ``ebmviz.models.KINDS``) and ``arch`` (the model
config). Training adds ``dataset``, ``train_config``, ``command``, ``wall_time_s``, ``device``,
``metrics``, ``history`` and the sampling settings ``model.draw`` starts with (``sampler``: the
``LangevinConfig`` fields; the CF-EBM also ``cascade``). Any unreadable file raises
``CheckpointError`` naming the path and the reason: a header that is not JSON, a pickle or zip (a ``.pt``
file: never unpickled), metadata fields of the wrong type (``META_TYPES``), an architecture config too big to
build (``MAX_ARCH_NUMBER``, ``MAX_ARCH_LIST``) or whose tensors differ from the file's (checked on the "meta"
device, before any memory is allocated). The app loads by name through ``named``, never by path.
The shipped folder (``checkpoint_dir``) is the repository's ``checkpoints/``; ``$EBMVIZ_CHECKPOINT_DIR``
(``ebmviz run --checkpoints DIR``) *adds* folders to it. Reading, writing and the header checks every safetensors
file of ours shares are ``ebmviz.storage``'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from ebmviz import storage
from ebmviz.models import KINDS, Model

SUFFIX = storage.SUFFIX
META_KEY = "ebmviz"
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
MAX_HEADER = storage.MAX_HEADER  # a safetensors header above this is not one of ours (``read_meta`` refuses it unread)
MAX_ARCH_NUMBER = 1e6  # no architecture config number (width, channels, snapshot count) is above this
MAX_ARCH_LIST = 64  # nor a list in it longer than this
META_TYPES = {  # the metadata fields pages read: (JSON types, in words); None (not recorded) is always allowed
    **dict.fromkeys(("arch", "dataset", "train_config", "metrics", "sampler", "cascade", "two_stage", "flow",
                     "refinement"), ((dict,), "an object")),
    **dict.fromkeys(("title", "command", "device", "git_commit", "machine"), ((str,), "text")),
    **dict.fromkeys(("wall_time_s", "epochs", "margin"), ((int, float), "a number")),
    **dict.fromkeys(("iterations", "n_train", "rounds", "threads"), ((int,), "a whole number")),
    **dict.fromkeys(("history", "cascade_history", "sampler_history", "two_stage_history"),
                    ((list,), "a list of objects")),
}


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or of an unknown kind."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"checkpoint {path}: {reason}")


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # file stem (``stem@folder`` for an added file whose stem a shipped one has), what the app shows
    path: Path
    kind: str | None  # None when the file could not be read
    meta: dict
    error: str | None = None  # why the file is unusable, or None
    added: bool = False  # from an added folder (``added_dirs``), not the shipped one


def checkpoint_dir() -> Path:
    """The shipped models' folder: ``$EBMVIZ_SHIPPED_DIR`` or the repository's ``checkpoints/`` (scores and maps live
    here too)."""
    env = os.environ.get("EBMVIZ_SHIPPED_DIR")
    return Path(env) if env else REPO_CHECKPOINTS


def added_dirs() -> list[Path]:
    """The folders whose models are *added* to the shipped ones: ``$EBMVIZ_CHECKPOINT_DIR`` (several joined by
    ``os.pathsep``), which ``ebmviz run --checkpoints DIR`` sets; the shipped folder itself is left out."""
    raw = os.environ.get("EBMVIZ_CHECKPOINT_DIR", "")
    shipped = checkpoint_dir().resolve()
    out = []
    for part in raw.split(os.pathsep):
        if part.strip() and Path(part).expanduser().resolve() != shipped and Path(part).expanduser() not in out:
            out.append(Path(part).expanduser())
    return out


def resolve(path_or_name: str | Path) -> Path:
    """A path as given when it exists, has the suffix or a folder part; else ``<checkpoint_dir>/<name>.safetensors``."""
    return storage.resolve(path_or_name, checkpoint_dir())


def named(name: str) -> Path:
    """The file of the checkpoint called ``name``: in the shipped folder, else the one ``list_checkpoints`` lists
    under that name from an added folder. What the app loads. A name that is a path (a separator, "..", a drive)
    raises ``CheckpointError``, so a name never reaches outside the folders."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name or ":" in name:
        raise CheckpointError(name, "not a checkpoint name (a name is a file stem in the checkpoint folder)")
    shipped = checkpoint_dir() / f"{name}{SUFFIX}"
    if shipped.is_file() or not added_dirs():
        return shipped
    return next((i.path for i in list_checkpoints() if i.name == name), shipped)


def _sane(value, depth: int = 0) -> bool:
    """Whether an architecture config is small enough to build: numbers up to ``MAX_ARCH_NUMBER``, lists of at
    most ``MAX_ARCH_LIST`` items, nesting at most 4 deep (a bigger one would allocate or loop before any check)."""
    if depth > 4:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _sane(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return len(value) <= MAX_ARCH_LIST and all(_sane(v, depth + 1) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value) <= MAX_ARCH_NUMBER
    return value is None or isinstance(value, str | bool)


def _read(path: Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """(metadata, tensor name -> shape) of a checkpoint file, validating the header without loading tensors."""
    try:
        meta, shapes = storage.read_header(path, META_KEY, "ebmviz.checkpoints.save")
    except storage.HeaderError as exc:
        raise CheckpointError(path, exc.reason) from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise CheckpointError(path, "metadata has no 'kind'")
    if not isinstance(meta["kind"], str) or meta["kind"] not in KINDS:
        raise CheckpointError(path, f"unknown kind {str(meta['kind'])[:40]!r} (known: {', '.join(KINDS)})")
    for key, (types, words) in META_TYPES.items():
        value = meta.get(key)
        rows_ok = not isinstance(value, list) or all(isinstance(r, dict) for r in value)  # history: one dict a row
        if value is not None and (isinstance(value, bool) or not isinstance(value, types) or not rows_ok):
            raise CheckpointError(path, f"metadata field {key!r} is not {words}")
    if not _sane(meta.get("arch") or {}):
        raise CheckpointError(path, f"architecture config is not a small JSON object (numbers up to "
                                    f"{MAX_ARCH_NUMBER:g}, lists up to {MAX_ARCH_LIST} items)")
    return meta, shapes


def read_meta(path: Path | str) -> dict:
    """The metadata dict of a checkpoint file (a path or a shipped name), validating the header without
    loading tensors."""
    return _read(resolve(path))[0]


def save(module: Model, path: Path | str, meta: dict) -> Path:
    """Write ``module``'s tensors and ``meta`` atomically (temp file in the same folder + rename).

    ``meta["kind"]``, ``meta["arch"]`` and ``meta["title"]`` default to the module's own.
    """
    path = Path(path)
    meta = dict(meta)
    meta.setdefault("kind", getattr(module, "kind", None))
    if meta["kind"] not in KINDS:
        raise ValueError(f"cannot save kind {meta['kind']!r}; register it in ebmviz.models.KINDS")
    meta.setdefault("arch", module.arch())
    meta.setdefault("title", module.title)
    return storage.write(path, module.state_dict(), {META_KEY: json.dumps(meta)})


class _NoInit(TorchFunctionMode):
    """Skips random initialisation (``normal_``, ``uniform_``, ``randn``, …) while a model is built on the "meta"
    device: those ops have no meta kernel of their own, and their Python fallback imports torch's compiler
    (about 1 s and 150 MB of memory, once per process) only to fill tensors that have no values anyway."""

    SKIP = frozenset({"normal_", "uniform_", "fill_", "zero_", "bernoulli_", "exponential_", "random_",
                      "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
                      "orthogonal_", "constant_"})

    DRAW = frozenset({"randn", "rand"})  # random factories: an empty tensor of the same size instead

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name, kwargs = getattr(func, "__name__", ""), kwargs or {}
        if name in self.SKIP and args and isinstance(args[0], torch.Tensor):
            return args[0]
        if name in self.DRAW and func in (torch.randn, torch.rand):
            return torch.empty(*args, **{k: v for k, v in kwargs.items() if k in ("size", "dtype", "device")})
        return func(*args, **kwargs)


def load(path_or_name: str | Path, device: str | torch.device = "cpu") -> Model:
    """Build the module named by the file's ``kind``, load its tensors, return it in eval mode.

    Parameters have ``requires_grad`` off (samplers only need input gradients); ``module.meta``
    holds the metadata dict. Raises ``CheckpointError`` for any unusable file.
    """
    path = resolve(path_or_name)
    meta, shapes = _read(path)
    cls = KINDS[meta["kind"]]
    try:  # first without memory ("meta" tensors): a config whose tensors differ from the file's allocates nothing
        with torch.device("meta"), _NoInit():
            probe = cls.from_arch(meta.get("arch") or {}, meta)
    except Exception as exc:  # TypeError for a wrong field; a model's own check may raise anything
        raise CheckpointError(path, f"architecture config does not fit {cls.__name__}: {exc}") from None
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    if want != shapes:
        diff = sorted(set(want) ^ set(shapes)) or sorted(k for k in want if want[k] != shapes[k])
        raise CheckpointError(path, f"tensors do not match the architecture: {len(diff)} differ, e.g. "
                                    f"{', '.join(diff[:3])}")
    module = cls.from_arch(meta.get("arch") or {}, meta)
    try:
        _, tensors = storage.read_tensors(path)
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ...
        raise CheckpointError(path, f"cannot read tensors: {exc}") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise CheckpointError(path, f"tensors do not match the architecture: {' '.join(first)}") from None
    module.eval().requires_grad_(False)
    return module.to(device)


STATE_FILES = "state*"  # a training run folder's resumable state (training/run.py): not a model, not listed


def _infos(folder: Path, added: bool) -> list[CheckpointInfo]:
    out = []
    for p in sorted(folder.glob(f"*{SUFFIX}")):
        if added and p.match(f"{STATE_FILES}{SUFFIX}"):
            continue
        try:
            meta = read_meta(p)
            out.append(CheckpointInfo(p.stem, p, meta["kind"], meta, added=added))
        except CheckpointError as exc:
            out.append(CheckpointInfo(p.stem, p, None, {}, exc.reason, added=added))
    return out


def list_checkpoints(folder: Path | str | None = None) -> list[CheckpointInfo]:
    """Every ``*.safetensors`` in ``folder``, readable or not; without a folder, the shipped ones and then those of
    every added folder (a stem already taken is listed as ``stem@<folder name>``; a missing folder as one entry with
    its error)."""
    if folder is not None:
        return _infos(Path(folder), False)
    out = _infos(checkpoint_dir(), False)
    for extra in added_dirs():
        if not extra.is_dir():
            out.append(CheckpointInfo(extra.name or str(extra), extra, None, {},
                                      f"the added checkpoint folder {extra} does not exist", added=True))
            continue
        taken = {i.name for i in out}
        for info in _infos(extra, True):
            name = info.name if info.name not in taken else f"{info.name}@{extra.resolve().name}"
            out.append(replace(info, name=name))
    return out
