"""Occlusion masks hide exactly what they say; restoration keeps observed pixels and reduces error."""

import numpy as np
import pytest
import torch

from ebmviz.analysis.restoration import restore
from ebmviz.sampling import LangevinConfig
from ebmviz.transforms import (
    MASKS,
    add_noise,
    block_mask,
    interpolations,
    make_mask,
    occlude,
    pixel_mask,
    random_shifts,
    translate,
)

SHAPE = (5, 1, 28, 28)


def test_pixel_mask_hides_the_exact_share_per_image():
    m = pixel_mask(SHAPE, 0.25, seed=3)
    assert m.dtype == torch.bool and m.shape == SHAPE
    assert m.flatten(1).sum(1).tolist() == [196] * 5
    assert not torch.equal(m[0], m[1])  # a different pattern per image
    assert torch.equal(m, pixel_mask(SHAPE, 0.25, seed=3))


def test_block_masks():
    one = block_mask(SHAPE, 10, 1, seed=0)
    assert one.flatten(1).sum(1).tolist() == [100] * 5
    for img in one[:, 0]:  # a single filled square
        rows, cols = img.any(1).nonzero(), img.any(0).nonzero()
        assert len(rows) == 10 and len(cols) == 10 and img[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    many = block_mask(SHAPE, 4, 5, seed=0)
    assert (many.flatten(1).sum(1) <= 80).all() and (many.flatten(1).sum(1) >= 16).all()
    assert make_mask("block", SHAPE, share=0.25).flatten(1).sum(1).tolist() == [196] * 5
    with pytest.raises(ValueError, match="block size"):
        block_mask(SHAPE, 29)
    with pytest.raises(ValueError, match="unknown mask kind"):
        make_mask("stripes", SHAPE)
    assert set(MASKS) == {"pixels", "block", "blocks", "salt-and-pepper"}


def test_occlude_changes_only_hidden_pixels():
    x = torch.rand(SHAPE) * 2 - 1
    m = make_mask("pixels", SHAPE, share=0.5, seed=1)
    for kind in ("pixels", "salt-and-pepper"):
        y = occlude(x, m, kind)
        assert torch.equal(y[~m], x[~m])
        hidden = y[m]
        assert torch.all((hidden == -1) | (hidden == 1))
    sp = occlude(x, m, "salt-and-pepper")[m]
    assert 0.4 < (sp == 1).float().mean() < 0.6  # black and white about equally
    assert torch.all(occlude(x, m, "pixels")[m] == -1)


def test_add_noise_is_seeded_and_clamped():
    x = torch.zeros(SHAPE)
    a, b = add_noise(x, 0.5, seed=2), add_noise(x, 0.5, seed=2)
    assert torch.equal(a, b) and a.abs().max() <= 1 and 0.4 < a.std() < 0.5  # clamping trims the std


def _quadratic(center: torch.Tensor, width: float = 0.2):
    """E(x) = ‖x − center‖² / (2·width²): its samples concentrate around ``center``."""
    return lambda x: ((x - center) ** 2).flatten(1).sum(1) / (2 * width**2)


def test_inpainting_keeps_observed_pixels_and_recovers_hidden_ones():
    clean = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(123)) * 1.6 - 0.8
    hidden = make_mask("block", clean.shape, share=0.25, seed=0)
    seen = occlude(clean, hidden, "block")
    cfg = LangevinConfig(n_steps=200, step_size=0.01, noise_std=0.01, grad_clip=None, record_every=50)
    r = restore(_quadratic(clean), seen, clean, cfg, hidden=hidden, seed=0)
    assert r.frames.shape == (5, 3, 1, 28, 28) and r.error.shape == (5, 3)
    h = hidden.numpy()
    for frame in r.frames:  # observed pixels are the observation in every frame
        np.testing.assert_array_equal(frame[~h], seen.numpy()[~h])
    assert (r.error[0] > 0.05).all() and (r.error[-1] < 0.002).all()


def test_denoising_reduces_error():
    clean = torch.zeros(2, 1, 28, 28)
    noisy = add_noise(clean, 0.4, seed=1)
    cfg = LangevinConfig(n_steps=100, step_size=0.01, noise_std=0.0, grad_clip=None, record_every=100)
    r = restore(_quadratic(clean), noisy, clean, cfg)
    assert r.error[0].min() > 0.02 and r.error[-1].max() < 0.001


@pytest.mark.parametrize("name,hidden_per_image", [("P.5", 392), ("P.7", 549), ("B9", 81), ("B13", 169)])
def test_paper_occlusions_hide_what_they_say(name, hidden_per_image):
    from ebmviz.transforms import occlusion

    x = torch.rand(SHAPE) * 2 - 1
    seen, hidden = occlusion(name, x, seed=4)
    assert hidden.flatten(1).sum(1).tolist() == [hidden_per_image] * 5
    assert torch.equal(seen[~hidden], x[~hidden])
    if name.startswith("P"):
        assert torch.all(seen[hidden].abs() == 1)  # salt (white) or pepper (black)


def test_multiple_blocks_and_overrides():
    from ebmviz.transforms import occlusion

    x = torch.zeros(SHAPE)
    _, hidden = occlusion("MB10", x, seed=0)
    counts = hidden.flatten(1).sum(1)
    assert (counts <= 160).all() and (counts > 16 * 4).all()  # ten 4×4 blocks, some overlapping
    _, big = occlusion("B9", x, seed=0, size=12)
    assert big.flatten(1).sum(1).tolist() == [144] * 5
    with pytest.raises(ValueError, match="unknown occlusion"):
        occlusion("B99", x)


def test_interpolations_average_two_different_images():
    images = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 1, 2, 2).clone()  # image i is all i
    mid = interpolations(images, 200, seed=3)
    assert mid.shape == (200, 1, 2, 2)
    values = mid[:, 0, 0, 0]
    pairs = {(a + b) / 2 for a in range(5) for b in range(5) if a != b}
    assert set(values.tolist()) <= pairs and len(set(values.tolist())) > 3
    two = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert torch.equal(interpolations(two, 10, seed=0), torch.full((10, 1, 2, 2), 0.5))  # always the other one
    assert torch.equal(interpolations(images, 50, seed=1), interpolations(images, 50, seed=1))


def test_translate_moves_each_image_by_its_own_shift_and_passes_gradients():
    x = torch.arange(2 * 25, dtype=torch.float32).view(2, 1, 5, 5).requires_grad_(True)
    y = translate(x, torch.tensor([[1, 2], [-1, 0]]))
    assert y[0, 0, 1:, 2:].tolist() == x[0, 0, :4, :3].tolist()  # down 1, right 2
    assert (y[0, 0, 0] == -1).all() and (y[0, 0, :, :2] == -1).all()  # black where nothing came from
    assert y[1, 0, :4].tolist() == x[1, 0, 1:].tolist() and (y[1, 0, 4] == -1).all()  # up 1
    y.sum().backward()
    assert x.grad[0, 0, :4, :3].eq(1).all() and x.grad[0, 0, 4].eq(0).all()  # moved-out pixels get no gradient
    assert translate(x, torch.zeros(2, 2, dtype=torch.long)) is x


def test_random_shifts_cover_the_range_and_are_seeded():
    a = random_shifts(2000, 2, torch.Generator().manual_seed(0))
    assert a.shape == (2000, 2) and set(a.unique().tolist()) == {-2, -1, 0, 1, 2}
    assert torch.equal(a, random_shifts(2000, 2, torch.Generator().manual_seed(0)))
