"""Evaluator metrics against exact answers, the shipped evaluator's behaviour, and upload decoding."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ebmviz import checkpoints
from ebmviz.analysis import metrics
from ebmviz.data import load_dataset
from ebmviz.figures.images import labelled_grid, png
from ebmviz.images import DRAWING_SIDE, MNIST_CENTRE, ImageError, digit_from_drawing, image_from_bytes, to_u8
from training.evaluator import gaussian_blur


def test_frechet_distance_of_gaussians_is_exact():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) + np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # equal covariances: the distance is the squared mean difference, 1 + 4 = 5
    assert metrics.frechet_distance(a, b) == pytest.approx(5.0, abs=0.1)
    # N(0, I) vs N(0, 4I) in 3-D: tr(I + 4I − 2·2I) = 3
    assert metrics.frechet_distance(a, 2 * rng.normal(size=(20000, 3))) == pytest.approx(3.0, abs=0.15)


def test_class_entropy():
    assert metrics.class_entropy(np.arange(1000) % 10) == pytest.approx(math.log(10))
    assert metrics.class_entropy(np.zeros(50, dtype=int)) == 0.0


def test_saturation():
    assert metrics.saturation(np.full((2, 1, 28, 28), 1.0, np.float32)) == 1.0
    assert metrics.saturation(np.zeros((2, 1, 28, 28), np.uint8)) == 0.0


@pytest.fixture(scope="module")
def evaluator():
    return checkpoints.load("evaluator-mnist")


@pytest.fixture(scope="module")
def held_out():
    return load_dataset("mnist", "test")


def test_evaluator_classifies_held_out_digits(evaluator, held_out):
    x, y = held_out
    pred = metrics.classify(evaluator, x)
    assert (pred.label == y.numpy()).mean() > 0.95
    assert (pred.confidence > 0.9).mean() > 0.8


def test_evaluator_does_not_call_junk_a_digit(evaluator, held_out):
    x, y = held_out
    g = torch.Generator().manual_seed(123)
    noise = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    blurred = gaussian_blur(x[:200], sigma=2.5)
    i = torch.arange(200)
    j = torch.tensor([int(torch.nonzero(y != y[k])[k % 50]) for k in range(200)])  # another class
    blends = 0.5 * x[i] + 0.5 * x[j]
    for name, junk in (("uniform noise", noise), ("blurs", blurred), ("blends of two digits", blends)):
        share = (metrics.classify(evaluator, junk).confidence > 0.9).mean()
        assert share < 0.1, (name, share)


def _png(array, mode=None):
    buf = io.BytesIO()
    img = Image.fromarray(array)
    assert mode is None or img.mode == mode, img.mode
    img.save(buf, "PNG")
    return buf.getvalue()


def test_upload_of_a_28x28_grey_digit_is_unchanged(held_out):
    u8 = ((held_out[0][0, 0].numpy() + 1) * 127.5).round().astype(np.uint8)
    x, notes = image_from_bytes(_png(u8, "L"))
    assert notes == [] and x.shape == (1, 1, 28, 28)
    np.testing.assert_allclose(x[0, 0].numpy(), u8 / 127.5 - 1, atol=1e-6)


def test_upload_of_another_size_and_mode_is_converted_with_notes():
    rgba = np.zeros((60, 90, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[..., :3] = 255  # white background
    rgba[20:40, 30:60, :3] = 0  # a dark bar
    x, notes = image_from_bytes(_png(rgba, "RGBA"))
    assert x.shape == (1, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    text = " ".join(notes)
    assert "RGBA" in text and "90×60" in text and "inverted" in text
    assert x[0, 0, 14, 14] > 0.5 and x[0, 0, 0, 0] < -0.5  # the bar is now bright on black


def test_sixteen_bit_and_bad_bytes():
    deep = (np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 80)
    x, notes = image_from_bytes(_png(deep))
    assert torch.isfinite(x).all() and x.shape == (1, 1, 28, 28) and notes
    for raw, match in ((b"", "empty"), (b"not an image at all", "not a readable image"),
                       (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable image")):
        with pytest.raises(ImageError, match=match):
            image_from_bytes(raw)


def test_nearest_neighbours_by_hand():
    x = np.stack([np.full((1, 28, 28), v, np.float32) for v in (-1.0, -0.5, 1.0)])
    dist, idx = metrics.nearest_neighbours(x)  # on the [0, 1] scale the images are 0, 0.25 and 1
    np.testing.assert_allclose(dist, [0.25, 0.25, 0.75])
    assert idx.tolist() == [1, 0, 1]


def _centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    m = pixels.sum()
    return (pixels.sum(1) * np.arange(28)).sum() / m, (pixels.sum(0) * np.arange(28)).sum() / m


@pytest.mark.parametrize("box", [(5, 26, 50, 32), (2, 2, 12, 40), (40, 40, 54, 54)])  # tall, wide, small in a corner
def test_a_drawing_is_centred_and_scaled_as_mnist(box):
    ink = np.zeros((DRAWING_SIDE, DRAWING_SIDE), np.uint8)
    r0, c0, r1, c1 = box
    ink[r0:r1, c0:c1] = 255
    pixels = to_u8(digit_from_drawing(ink))[0, 0].numpy().astype(float)
    rows, cols = np.nonzero(pixels > 0)
    longer = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert 20 <= longer <= 22  # the inked box to 20 px (the anti-aliasing may add a faint pixel on each side)
    cy, cx = _centre_of_mass(pixels)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # MNIST's centre, to the nearest whole-pixel move


def test_mnist_centre_is_where_the_embedded_digits_centre_their_mass(held_out):
    pixels = to_u8(held_out[0][:, 0]).numpy().astype(float)
    centres = np.array([_centre_of_mass(p) for p in pixels])
    assert np.abs(centres.mean(0) - MNIST_CENTRE).max() < 0.1


def test_held_out_digits_drawn_on_the_pad_keep_their_class(evaluator, held_out):
    """200 test digits, drawn at the pad's size (each pixel twice as wide) and read back: MNIST's digits are
    already 20 px boxes centred by mass, so the evaluator should name nearly all of them as before."""
    x, _ = held_out
    digits = to_u8(x[:200, 0]).numpy()
    back = torch.cat([digit_from_drawing(np.kron(d, np.ones((2, 2), np.uint8))) for d in digits])
    same = (metrics.classify(evaluator, back).label == metrics.classify(evaluator, x[:200]).label).mean()
    assert same >= 0.95, same
    centres = np.array([_centre_of_mass(p) for p in to_u8(back[:, 0]).numpy().astype(float)])
    assert np.abs(centres.mean(0) - MNIST_CENTRE).max() < 0.15  # where MNIST puts them (13.5 would be 0.5 off)


@pytest.mark.parametrize("ink, message", [
    (np.zeros((DRAWING_SIDE, DRAWING_SIDE), np.uint8), "nothing is drawn"),
    (np.zeros((4, 4), np.uint8), "2-D grid"),
    (np.zeros((3, DRAWING_SIDE, DRAWING_SIDE)), "2-D grid"),
    (np.full((DRAWING_SIDE, DRAWING_SIDE), 300.0), "0..255"),
    (np.full((DRAWING_SIDE, DRAWING_SIDE), np.nan), "0..255"),
])
def test_a_bad_or_empty_drawing_is_refused_with_a_message(ink, message):
    with pytest.raises(ImageError, match=message):
        digit_from_drawing(ink)


def test_frames_as_fast_png_decode_to_the_same_pixels(held_out):
    """``png`` (zlib level 1, what the Langevin page sends while playing) loses nothing: grey grids and RGB pictures
    come back pixel for pixel, as PNG, which ``st.image`` passes on without encoding again."""
    grid = labelled_grid(to_u8(held_out[0][:16]).numpy(), [str(i) for i in range(16)], ncol=8, font_px=14)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    for picture in (grid, rgb):
        data = png(picture)
        back = Image.open(io.BytesIO(data))
        assert back.format == "PNG"
        np.testing.assert_array_equal(np.asarray(back), picture)
