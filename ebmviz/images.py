"""Images: float states in [-1, 1] and uint8 pixels, one conversion each way; uploaded pictures as digits.

A state x in [-1, 1] shows as the pixel round((x + 1)·127.5) in 0..255, and a pixel p reads back as
p/127.5 − 1. ``to_u8`` and ``from_u8`` are the only places that write this: samplers record frames with
them, figures and the app show them, training stores replay buffers with them.
"""

from __future__ import annotations

import io
import warnings
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 4096 * 4096  # refuse decompression bombs before decoding
MAX_BYTES = 5 * 1024 * 1024  # the largest upload decoded (.streamlit/config.toml's maxUploadSize is 5 MB too)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # the decoders an upload may reach (PIL guesses from bytes)
MIN_SIDE = 8  # a picture with fewer pixels than this on its longer side cannot show a digit

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def to_u8(x: Array) -> Array:
    """States in [-1, 1] (clipped first) -> uint8 pixels 0..255, same shape and kind (tensors come back on the CPU)."""
    if isinstance(x, torch.Tensor):
        return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    return ((np.clip(np.asarray(x, dtype=np.float32), -1, 1) + 1) * 127.5).round().astype(np.uint8)


def from_u8(pixels: Array) -> Array:
    """uint8 pixels 0..255 -> float32 states in [-1, 1], same shape and kind (a tensor stays on its device)."""
    if isinstance(pixels, torch.Tensor):
        return pixels.float() / 127.5 - 1.0
    return np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0


class ImageError(ValueError):
    """The bytes are not a usable image; the message says why."""


def image_from_bytes(raw: bytes) -> tuple[torch.Tensor, list[str]]:
    """Decode any PIL-readable image into (1, 1, 28, 28) float32 in [-1, 1], white on black.

    Colour or alpha is converted to grey, other sizes are resized (longer side to 28, aspect kept, padded), an
    animation gives its first frame, and a dark-on-light picture is inverted to MNIST's light-on-dark. Each change is
    reported in the returned notes. Raises ``ImageError`` for anything that cannot be decoded: empty, over
    ``MAX_BYTES``, over ``MAX_PIXELS`` (checked from the header, before decoding), under ``MIN_SIDE``, corrupt,
    or with non-finite pixel values.
    """
    notes: list[str] = []
    img = _decode(raw, notes, _grey)
    if img.size != (28, 28):
        notes.append(f"resized from {img.width}×{img.height} to 28×28")
        scale = 28 / max(img.size)  # the longer side to 28, up or down
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
        canvas = Image.new("L", (28, 28), 0)
        arr_small = np.asarray(img)
        bg = int(np.median(np.concatenate([arr_small[0], arr_small[-1]])))
        canvas.paste(bg, (0, 0, 28, 28))
        canvas.paste(img, ((28 - img.width) // 2, (28 - img.height) // 2))
        img = canvas
    arr = np.asarray(img, dtype=np.float32)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if border.mean() > 127:
        arr = 255 - arr
        notes.append("inverted to light-on-dark (MNIST digits are white on black)")
    x = torch.from_numpy(from_u8(arr)).view(1, 1, 28, 28)
    return x, notes


def _decode(raw: bytes, notes: list[str], convert) -> Image.Image:
    """``convert(image, notes)`` of the first frame of any picture PIL reads from one of ``FORMATS``, checked as
    ``image_from_bytes`` says (a conversion PIL cannot make is an ``ImageError`` too)."""
    if not raw:
        raise ImageError("the file is empty")
    if len(raw) > MAX_BYTES:
        raise ImageError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_BYTES / 2**20:g} MB")
    try:
        with warnings.catch_warnings():  # PIL warns above ~89 M pixels; the size is refused below anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=FORMATS)  # never EPS (Ghostscript) or other decoders
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(f"the image is {img.width}×{img.height}; the limit is 4096×4096")
        if max(img.size) < MIN_SIDE:
            raise ImageError(f"the image is {img.width}×{img.height} pixels; a digit needs at least {MIN_SIDE} "
                             "on the longer side")
        if getattr(img, "is_animated", False):
            notes.append("animated: its first frame was used")
            img.seek(0)
        img.load()
        img = convert(img, notes)
    except Image.DecompressionBombError:
        raise ImageError("the image declares far more pixels than 4096×4096 (a decompression bomb?)") from None
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a readable image (not a PNG, JPEG, GIF, BMP, WebP or TIFF picture)") from None
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        raise ImageError(f"not a readable image ({exc.__class__.__name__}: {exc})") from None
    return img


def image_for_shape(raw: bytes, shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[str]]:
    """Decode a picture into (1, C, H, W) float32 in [-1, 1] for a model of image ``shape``: MNIST's 1×28×28 goes
    through ``image_from_bytes`` (a digit: grey, centred, light on dark); any other shape keeps the picture as it is,
    in grey (C = 1) or RGB (C = 3, alpha over white), resized to H×W. Raises ``ImageError`` as ``image_from_bytes``."""
    c, h, w = shape
    if (c, h, w) == (1, 28, 28):
        return image_from_bytes(raw)
    notes: list[str] = []
    img = _decode(raw, notes, _grey if c == 1 else _rgb)
    if img.size != (w, h):
        notes.append(f"resized from {img.width}×{img.height} to {w}×{h}")
        img = img.resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32).reshape(h, w, c).transpose(2, 0, 1)
    return torch.from_numpy(from_u8(np.ascontiguousarray(arr))).view(1, c, h, w), notes


def _rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """A decoded picture as 8-bit RGB: alpha over white."""
    if img.mode == "RGB":
        return img
    notes.append(f"converted from mode {img.mode} to RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img.convert("RGBA"))
    return img.convert("RGB")


def _grey(img: Image.Image, notes: list[str]) -> Image.Image:
    """A decoded picture as 8-bit grey (mode L): alpha over white, deep or float values stretched to 0..255."""
    if img.mode == "L":
        return img
    notes.append(f"converted from mode {img.mode} to greyscale")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        base = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(base, img.convert("RGBA"))
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageError("the image holds non-finite pixel values (NaN or infinity)")
        span = arr.max() - arr.min()
        arr = (arr - arr.min()) / (span if span > 0 else 1) * 255
        img = Image.fromarray(arr.astype(np.uint8))
    return img.convert("L")


DRAWING_SIDE = 56  # the drawing pad sends its ink as a DRAWING_SIDE² grid of uint8 (two samples per MNIST pixel)
MIN_INK = 4.0  # the least ink (sum of pixels / 255) that counts as a drawing, not a stray click
MNIST_CENTRE = 14.0  # row and column of MNIST digits' centre of mass, counting pixels from 0


def digit_from_drawing(ink: np.ndarray) -> torch.Tensor:
    """Ink drawn on a pad, (H, W) uint8 with 255 for full ink, as MNIST prepared its digits: the inked box scaled
    so its longer side is 20 px (aspect kept, anti-aliased), then placed in the 28×28 field with its centre of
    mass at MNIST's centre, pixel (14, 14) counting from 0 (where the embedded digits' centres of mass lie on
    average: 13.999, 14.005). Returns (1, 1, 28, 28) float32 in [-1, 1], white on black.

    Raises ``ImageError`` when the pad holds less than ``MIN_INK`` of ink (nothing drawn yet) or the array is not
    a 2-D grid of 0..255 values.
    """
    arr = np.asarray(ink)
    if arr.ndim != 2 or min(arr.shape) < MIN_SIDE:
        raise ImageError(f"a drawing must be a 2-D grid of at least {MIN_SIDE}×{MIN_SIDE}, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise ImageError("a drawing's values must lie in 0..255")
    if arr.sum() / 255 < MIN_INK:
        raise ImageError("nothing is drawn yet")
    rows, cols = np.nonzero(arr > 0)
    box = arr[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    scale = 20 / max(box.shape)
    h, w = max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))
    small = np.asarray(Image.fromarray(box.astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS), np.float64)
    mass = small.sum()
    cy = (small.sum(1) * np.arange(h)).sum() / mass  # centre of mass, rows
    cx = (small.sum(0) * np.arange(w)).sum() / mass
    top, left = round(MNIST_CENTRE - cy), round(MNIST_CENTRE - cx)
    field = np.zeros((28, 28))
    t0, l0 = max(top, 0), max(left, 0)  # the box can be pushed past an edge by a lopsided mass; clip it there
    t1, l1 = min(top + h, 28), min(left + w, 28)
    field[t0:t1, l0:l1] = small[t0 - top: t1 - top, l0 - left: l1 - left]
    return torch.from_numpy(from_u8(field.clip(0, 255).round())).view(1, 1, 28, 28).float()
