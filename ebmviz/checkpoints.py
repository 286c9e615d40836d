"""Checkpoints: one ``.safetensors`` file per model, JSON metadata in its header, never pickle.

A file holds the module's ``state_dict`` tensors and one metadata entry, ``"ebmviz"``, a JSON
object with at least ``kind`` (a key of ``ebmviz.models.KINDS``) and ``arch`` (the model
config). Training adds ``dataset``, ``train_config``, ``command``, ``wall_time_s``, ``device``,
``metrics``, ``history`` and the sampling settings ``model.draw`` starts with (``sampler``: the
``LangevinConfig`` fields; the CF-EBM also ``cascade``). Any unreadable file raises
``CheckpointError`` naming the path and the reason.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ebmviz.models import KINDS, Model

SUFFIX = ".safetensors"
META_KEY = "ebmviz"
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
MAX_HEADER = 100 * 1024 * 1024  # a safetensors header above this is not one of ours


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or of an unknown kind."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"checkpoint {path}: {reason}")


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # file stem, what the app shows and ``load`` accepts
    path: Path
    kind: str | None  # None when the file could not be read
    meta: dict
    error: str | None = None  # why the file is unusable, or None


def checkpoint_dir() -> Path:
    """``$EBMVIZ_CHECKPOINT_DIR`` or the repository's ``checkpoints/``."""
    env = os.environ.get("EBMVIZ_CHECKPOINT_DIR")
    return Path(env) if env else REPO_CHECKPOINTS


def resolve(path_or_name: str | Path) -> Path:
    """A path as given when it exists or has a suffix; else ``<checkpoint_dir>/<name>.safetensors``."""
    p = Path(path_or_name)
    if p.suffix == SUFFIX or p.exists() or len(p.parts) > 1:
        return p
    return checkpoint_dir() / f"{p.name}{SUFFIX}"


def read_meta(path: Path | str) -> dict:
    """The metadata dict of a checkpoint file (a path or a shipped name), validating the header without
    loading tensors."""
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(path, f"truncated: {size} bytes, not a safetensors file")
        n = int.from_bytes(head, "little")
        if n <= 0 or n > MAX_HEADER or 8 + n > size:
            raise CheckpointError(path, "corrupt or truncated safetensors header")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(path, "corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "corrupt safetensors header")
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    if 8 + n + max(ends, default=0) > size:
        raise CheckpointError(path, f"truncated: tensor data ends past the file's {size} bytes")
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise CheckpointError(path, "no ebmviz metadata (not saved by ebmviz.checkpoints.save)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise CheckpointError(path, "ebmviz metadata is not valid JSON") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise CheckpointError(path, "metadata has no 'kind'")
    if meta["kind"] not in KINDS:
        raise CheckpointError(path, f"unknown kind {meta['kind']!r} (known: {', '.join(KINDS)})")
    return meta


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
    return write_safetensors(path, module.state_dict(), {META_KEY: json.dumps(meta)})


def write_safetensors(path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Atomic safetensors write: a temp file in the same folder, then a rename."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are shared files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path_or_name: str | Path, device: str | torch.device = "cpu") -> Model:
    """Build the module named by the file's ``kind``, load its tensors, return it in eval mode.

    Parameters have ``requires_grad`` off (samplers only need input gradients); ``module.meta``
    holds the metadata dict. Raises ``CheckpointError`` for any unusable file.
    """
    path = resolve(path_or_name)
    meta = read_meta(path)
    cls = KINDS[meta["kind"]]
    try:
        module = cls.from_arch(meta.get("arch", {}), meta)
    except TypeError as exc:
        raise CheckpointError(path, f"architecture config does not fit {cls.__name__}: {exc}") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ...
        raise CheckpointError(path, f"cannot read tensors: {exc}") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise CheckpointError(path, f"tensors do not match the architecture: {' '.join(first)}") from None
    module.eval().requires_grad_(False)
    return module.to(device)


def list_checkpoints(folder: Path | str | None = None) -> list[CheckpointInfo]:
    """Every ``*.safetensors`` in ``folder`` (default ``checkpoint_dir()``), readable or not."""
    folder = Path(folder) if folder is not None else checkpoint_dir()
    out = []
    for p in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            meta = read_meta(p)
            out.append(CheckpointInfo(p.stem, p, meta["kind"], meta))
        except CheckpointError as exc:
            out.append(CheckpointInfo(p.stem, p, None, {}, exc.reason))
    return out
