"""Files of tensors with JSON in their header (``.safetensors``), never pickle; and the one conversion to JSON.

Checkpoints (``ebmviz.checkpoints``), landscape maps (``ebmviz.landscape.storage``) and the trainers' resumable
state (``training.state``) are each one safetensors file: named tensors plus header metadata, text -> text, whose
one entry of ours holds a JSON object. This module holds what they share:

- ``write``: tensors and metadata to a file atomically (temp file in the same folder, fsync, rename).
- ``read_header``: the JSON entry and the tensors' shapes of a file from anywhere, checked against the file's size
  before anything is parsed or allocated; ``HeaderError`` says why a file is refused, and each caller turns it into
  its own error naming the path.
- ``read_tensors``: every tensor and the metadata of a file.
- ``resolve``: a name or a path given by the user, to a file in a folder.
- ``to_json``: a value in JSON's own types (tuples, numpy values), for configs, exports and settings.

It imports nothing from ebmviz, so that every other module may use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

SUFFIX = ".safetensors"
MAX_HEADER = 100 * 1024 * 1024  # a safetensors header above this is not one of ours


class HeaderError(ValueError):
    """Why a file is not a readable safetensors file with our metadata, in words (``reason``)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def to_json(value: Any) -> Any:
    """``value`` in JSON's own types, recursively: dicts (keys kept), lists and tuples as lists, numpy scalars and
    arrays as Python numbers and lists; anything else as it is (``json.dumps`` refuses what it cannot write).

    A config with tuples compares equal to itself after a trip through JSON only in this form."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def resolve(name_or_path: str | Path, folder: Path) -> Path:
    """A path as given when it exists, has the suffix or a folder part; else ``folder/<name>.safetensors``."""
    p = Path(name_or_path)
    if p.suffix == SUFFIX or p.exists() or len(p.parts) > 1:
        return p
    return folder / f"{p.name}{SUFFIX}"


def write(path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``tensors`` (copied to the CPU, contiguous) and ``metadata`` (header entries, text) atomically.

    A temp file ``.<stem>.<random>.tmp`` in the same folder is written, synced and renamed over ``path``, so a
    crash leaves the old file or the new one, never half of one (a trainer deletes such temp files of a killed
    run by that name). The file is 0644: checkpoints are shared files.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash of the machine leaves old or new
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _not_safetensors(head: bytes) -> str:
    """Why the file whose first 8 bytes are ``head`` is not a safetensors file, in words."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a torch.save .pt file?), not a safetensors checkpoint; ebmviz never unpickles"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (a .pt or .pkl file?), not a safetensors checkpoint; ebmviz never unpickles"
    return "corrupt or truncated safetensors header (not a safetensors file)"


def read_header(path: Path, key: str | None, writer: str) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """(the JSON value of metadata entry ``key``, tensor name -> shape) of a safetensors file, without its tensors.

    The header's length, its JSON, every tensor's shape and offsets and the end of the tensor data are checked
    against the file's size first, so a hostile file (a pickle, a zip, a header of 2⁶² bytes, JSON nested 10⁵ deep)
    is refused before it allocates anything. ``writer`` names what writes such files, for the reason of a file
    without the entry; ``key`` None reads any safetensors file (a user's weights) and gives None for the entry.
    Raises ``HeaderError`` with the reason.
    """
    if not path.is_file():
        raise HeaderError("no such file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise HeaderError(f"truncated: {size} bytes, not a safetensors file")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > MAX_HEADER or 8 + n > size:
                raise HeaderError(_not_safetensors(head))
            text = f.read(n)
    except OSError as exc:  # unreadable: permissions, a vanished file, an I/O error
        raise HeaderError(f"cannot read the file ({exc.strerror or exc})") from None
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HeaderError("corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise HeaderError("corrupt safetensors header (not a JSON object)")
    shapes, end = {}, 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        offsets, shape = (v.get("data_offsets"), v.get("shape")) if isinstance(v, dict) else (None, None)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)
                and isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise HeaderError(f"corrupt safetensors header: no valid shape and offsets for {k[:40]!r}")
        shapes[k], end = tuple(shape), max(end, offsets[1])
    if 8 + n + end > size:
        raise HeaderError(f"truncated: tensor data ends past the file's {size} bytes")
    if key is None:
        return None, shapes
    extra = header.get("__metadata__") or {}
    raw = extra.get(key) if isinstance(extra, dict) else None
    if raw is None:
        raise HeaderError(f"no {key} metadata (not saved by {writer})")
    try:
        value = json.loads(raw)
    except (TypeError, json.JSONDecodeError, RecursionError):
        raise HeaderError(f"{key} metadata is not valid JSON") from None
    return value, shapes


def read_tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(header metadata, name -> tensor on the CPU) of a safetensors file; raises whatever safetensors raises (its
    ``SafetensorError``, ``OSError``, …), which callers that read files from anywhere turn into their own error."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
