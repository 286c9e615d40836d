"""The user's own images: a folder of PNG/JPEG files, an ``.npz`` or IDX files, as (N, C, H, W) float32 in [−1, 1].

``load_images(path)`` reads any of the three and returns an ``ImageSet``; ``ImageSetError`` names the path and the
problem for anything it cannot use. The layouts:

- a folder of ``.png`` / ``.jpg`` / ``.jpeg`` files, all of one size; an ImageFolder layout (one sub-folder per
  class) gives labels, the classes in sorted order;
- an ``.npz`` with ``images`` (N, H, W), (N, H, W, C) or (N, C, H, W), C = 1 or 3, uint8 (0…255) or float in [0, 1]
  or [−1, 1], and optional ``labels`` (N,) integers; read with ``allow_pickle=False``, so an object array is refused
  unread;
- an IDX file of images (``…-images-idx3-ubyte``, plain or ``.gz``), with labels from the ``…-labels-idx1-ubyte``
  beside it when there is one.

Images in a model's own value range ([0, 1], say) are still read into [−1, 1]: the app's pixels are always there, and
a user model maps them to its range itself (``ebmviz.user_model``). At most ``MAX_IMAGES`` are kept (a note says so).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ebmviz.data import DataError, read_idx
from ebmviz.images import MAX_PIXELS

MAX_IMAGES = 10_000  # images kept from one source (10,000 RGB 128 px images: 2 GB of float32 — the upper end)
MAX_FILE_BYTES = 1 << 30  # an .npz or IDX file larger than this is refused before it is read
SIDES = (8, 128)  # smallest and largest image side a model may have
CHANNELS = (1, 3)  # grayscale or RGB
SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageSetError(ValueError):
    """Images that cannot be used; the message names the path and the reason."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, C, H, W) float32 in [−1, 1]
    labels: np.ndarray | None  # (N,) int64, or None when the source has none
    source: str  # where they came from, shown in the app
    classes: tuple[str, ...] = ()  # an ImageFolder's class names (label i is classes[i]); () otherwise
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was changed on the way (capped, …)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)


def check_shape(shape: tuple[int, ...], where: Path | str = "image shape") -> tuple[int, int, int]:
    """``shape`` as (C, H, W) ints when C is 1 or 3 and each side is within ``SIDES``; else ``ImageSetError``."""
    if len(shape) != 3 or not all(isinstance(s, int | np.integer) for s in shape):
        raise ImageSetError(where, f"an image shape is (C, H, W), got {tuple(shape)}")
    c, h, w = (int(s) for s in shape)
    if c not in CHANNELS:
        raise ImageSetError(where, f"images need 1 (grey) or 3 (RGB) channels, got {c}")
    if not (SIDES[0] <= h <= SIDES[1] and SIDES[0] <= w <= SIDES[1]):
        raise ImageSetError(where, f"image sides must be {SIDES[0]}–{SIDES[1]} pixels, got {h}×{w}")
    return c, h, w


def to_unit_box(pixels: np.ndarray, where: Path | str) -> np.ndarray:
    """uint8 0…255, or floats in [0, 1] or [−1, 1], as float32 in [−1, 1]. NaN, ±inf or values outside both boxes
    raise ``ImageSetError``."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(pixels.dtype, np.floating) and not np.issubdtype(pixels.dtype, np.integer):
        raise ImageSetError(where, f"images must be uint8 or float, got {pixels.dtype}")
    x = pixels.astype(np.float32)
    if not np.isfinite(x).all():
        raise ImageSetError(where, f"{int((~np.isfinite(x)).sum())} pixel values are NaN or infinite")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1:
        return x * 2 - 1
    if lo >= -1 and hi <= 1:
        return x
    raise ImageSetError(where, f"float pixels must lie in [0, 1] or [−1, 1]; these span [{lo:.3g}, {hi:.3g}] "
                               "(uint8 0…255 is read too)")


def _channels_first(images: np.ndarray, where: Path | str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) -> (N, C, H, W)."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[-1] in CHANNELS:
        return images.transpose(0, 3, 1, 2)
    if images.ndim == 4 and images.shape[1] in CHANNELS:
        return images
    raise ImageSetError(where, f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; got shape "
                               f"{images.shape}")


def _labels(labels: np.ndarray | None, n: int, where: Path | str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ImageSetError(where, f"labels must be {n} integers, one per image; got {labels.dtype} of shape "
                                   f"{labels.shape}")
    return labels.astype(np.int64)


def _finish(images: np.ndarray, labels, source: str, where, classes=(), notes=()) -> ImageSet:
    """Check, cap and convert (N, C, H, W) pixels into an ``ImageSet``."""
    if len(images) == 0:
        raise ImageSetError(where, "no images")
    check_shape(images.shape[1:], where)
    notes = list(notes)
    if len(images) > MAX_IMAGES:
        notes.append(f"kept the first {MAX_IMAGES:,} of {len(images):,} images")
        images, labels = images[:MAX_IMAGES], None if labels is None else labels[:MAX_IMAGES]
    return ImageSet(np.ascontiguousarray(to_unit_box(images, where)), labels, source, tuple(classes), tuple(notes))


def read_npz(path: Path) -> ImageSet:
    """An ``.npz`` with ``images`` and optional ``labels``; nothing pickled is ever loaded."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise ImageSetError(path, f"no array called 'images' (found: {', '.join(z.files) or 'none'})")
            images = z["images"]
            labels = z["labels"] if "labels" in z.files else None
    except ImageSetError:
        raise
    except ValueError as exc:  # allow_pickle=False refusing an object array
        raise ImageSetError(path, f"holds pickled objects, which are never loaded ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ImageSetError(path, f"not a readable .npz file ({exc})") from None
    images = _channels_first(images, path)
    return _finish(images, _labels(labels, len(images), path), f"{path.name} ({len(images):,} images)", path)


def read_idx_images(path: Path) -> ImageSet:
    """An IDX image file (N, H, W) uint8, with the labels file beside it when it exists."""
    try:
        images = read_idx(path)
    except DataError as exc:
        raise ImageSetError(path, str(exc).removeprefix(f"{path}: ")) from None
    labels, partner = None, path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    if partner != path and partner.is_file():
        try:
            labels = read_idx(partner)
        except DataError as exc:
            raise ImageSetError(partner, str(exc)) from None
    images = _channels_first(images, path)
    return _finish(images, _labels(labels, len(images), partner), f"{path.name} ({len(images):,} images)", path)


def _decode(path: Path, mode: str) -> np.ndarray:
    """One image file as (H, W) or (H, W, 3) uint8 in ``mode`` ("L" or "RGB")."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageSetError(path, f"{img.width}×{img.height} pixels is too large an image")
            return np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageSetError(path, f"not a readable image ({exc.__class__.__name__})") from None


def read_folder(folder: Path) -> ImageSet:
    """PNG/JPEG files in ``folder``, or in its class sub-folders (ImageFolder: the sub-folder is the label)."""
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = tuple(p.name for p in subs if any(f.suffix.lower() in SUFFIXES for f in p.iterdir()))
    if classes:
        files = [(f, i) for i, c in enumerate(classes) for f in sorted((folder / c).iterdir())
                 if f.suffix.lower() in SUFFIXES]
    else:
        files = [(f, -1) for f in sorted(folder.iterdir()) if f.suffix.lower() in SUFFIXES]
    if not files:
        raise ImageSetError(folder, "no .png, .jpg or .jpeg files here or in its sub-folders")
    notes = []
    if len(files) > MAX_IMAGES:
        notes.append(f"kept the first {MAX_IMAGES:,} of {len(files):,} image files")
        files = files[:MAX_IMAGES]
    try:
        with Image.open(files[0][0]) as first:
            mode = "L" if first.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageSetError(files[0][0], f"not a readable image ({exc.__class__.__name__})") from None
    pixels = []
    for f, _ in files:
        px = _decode(f, mode)
        if pixels and px.shape != pixels[0].shape:
            raise ImageSetError(f, f"is {px.shape[1]}×{px.shape[0]} pixels, but {files[0][0].name} is "
                                   f"{pixels[0].shape[1]}×{pixels[0].shape[0]}: every image must have one size")
        pixels.append(px)
    images = _channels_first(np.stack(pixels), folder)
    labels = np.array([i for _, i in files], dtype=np.int64) if classes else None
    what = f"{len(classes)} classes" if classes else "no labels"
    return _finish(images, labels, f"{folder.name}/ ({len(images):,} images, {what})", folder, classes, notes)


def load_images(path: Path | str) -> ImageSet:
    """The images at ``path`` (a folder, an ``.npz`` or an IDX file) in [−1, 1]; ``ImageSetError`` otherwise."""
    path = Path(path)
    if not path.exists():
        raise ImageSetError(path, "no such file or folder")
    if path.is_dir():
        return read_folder(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImageSetError(path, f"is {path.stat().st_size / 2**30:.1f} GB; the limit is {MAX_FILE_BYTES >> 30} GB")
    if path.suffix.lower() == ".npz":
        return read_npz(path)
    if "idx" in path.name.lower() or path.suffix == ".gz":
        return read_idx_images(path)
    raise ImageSetError(path, "not a folder of images, an .npz or an IDX file (…-images-idx3-ubyte)")
