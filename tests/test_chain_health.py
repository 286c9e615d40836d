"""Saturation, pixel range and diversity of chains (ebmviz.analysis.chain_health) against values counted by hand on
constructed frames, and the diversity measure on a constructed collapse of real MNIST digits.

Tolerances: uint8 pixels map to [−1, 1] as u / 127.5 − 1 in float32, so a value computed by hand in float64 agrees to
about 1e-7 (float32's resolution near 1): 1e-6 is used. Block means are weighted sums of 3–4 float32 terms (same
1e-6). A uint8 frame quantizes each pixel by at most 0.5 / 127.5 ≈ 0.004, the bound used where float and uint8
frames of the same images are compared.
"""

import math

import numpy as np
import pytest

from ebmviz.analysis.chain_health import (
    DUPLICATE_DISTANCE,
    FEATURE_SIDE,
    WALL,
    Diversity,
    diversity,
    diversity_trace,
    features,
    pixel_range,
    saturation_share,
    unit,
)
from ebmviz.data import load_dataset
from ebmviz.images import to_u8

EXACT = 1e-6  # float32 rounding of a hand-computed value (see the module's docstring)
QUANTUM = 0.5 / 127.5  # largest change of a pixel read back from uint8


def u8(value: float) -> float:
    """The [−1, 1] value of uint8 pixel ``value`` (a float: interpolated pixels too)."""
    return value / 127.5 - 1


def test_unit_reads_uint8_and_floats_and_refuses_integers():
    assert unit(np.array([0, 255, 51], np.uint8)) == pytest.approx([-1.0, 1.0, u8(51)], abs=EXACT)
    x = np.array([[-0.25, 0.5]], np.float64)
    assert unit(x).dtype == np.float32 and unit(x).tolist() == [[-0.25, 0.5]]
    with pytest.raises(ValueError, match="uint8 pixels or floats"):
        unit(np.array([1, 2], np.int64))


def test_the_uint8_walls_are_0_1_254_255():
    pixels = np.arange(256, dtype=np.uint8)[:, None]  # 256 one-pixel images
    at_wall = saturation_share(pixels)
    assert np.flatnonzero(at_wall).tolist() == [0, 1, 254, 255]
    # the float path agrees on every value: |u / 127.5 − 1| ≥ 0.99
    assert (saturation_share(unit(pixels)) == at_wall).all()


def frames_u8() -> np.ndarray:
    """2 frames × 2 chains of 1 × 2 × 5 pixels (10 per chain, 20 per frame), counted by hand in the tests."""
    f0c0 = [0, 1, 2, 127, 128, 200, 253, 254, 255, 255]  # walls: 0, 1, 254, 255, 255 → 5 of 10
    f0c1 = [128] * 10  # none
    f1c0 = [254] * 9 + [100]  # 9 of 10
    f1c1 = [2, 3, 4, 5, 6, 7, 8, 9, 10, 255]  # 1 of 10 (2 and 253 are not walls)
    return np.array([[f0c0, f0c1], [f1c0, f1c1]], np.uint8).reshape(2, 2, 1, 2, 5)


def test_pixel_range_of_uint8_frames_counted_by_hand():
    r = pixel_range(frames_u8())
    assert r.per_chain.tolist() == [[0.5, 0.0], [0.9, 0.1]]
    assert r.saturation.tolist() == [0.25, 0.5]
    # numpy's linear percentile of n = 20 sorted values v: the 1st at position 0.01 · 19 = 0.19, v0 + 0.19 (v1 − v0);
    # the 99th at 18.81, v18 + 0.81 (v19 − v18).
    # frame 0 sorted: 0, 1, 2, 127, 128 ×11, 200, 253, 254, 255, 255 → 0.19 and 255
    # frame 1 sorted: 2 … 10, 100, 254 ×9, 255 → 2.19 and 254.81
    assert r.low == pytest.approx([u8(0.19), u8(2.19)], abs=EXACT)
    assert r.high == pytest.approx([1.0, u8(254.81)], abs=EXACT)


def test_float_frames_give_the_same_range_as_their_uint8_pixels():
    frames = frames_u8()
    r, f = pixel_range(frames), pixel_range(unit(frames))
    for a, b in ((r.saturation, f.saturation), (r.per_chain, f.per_chain), (r.low, f.low), (r.high, f.high)):
        assert a == pytest.approx(b, abs=EXACT)


def test_pixel_range_of_float_frames_without_a_channel_axis_counted_by_hand():
    # (F=1, B=2, H=2, W=4); |x| ≥ 0.99 is a wall, 0.989 is not
    c0 = [[-1.0, -0.995, -0.989, 0.0], [0.3, 0.5, 0.989, 0.99]]  # walls: −1, −0.995, 0.99 → 3 of 8
    c1 = [[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]]  # 8 of 8
    r = pixel_range(np.array([[c0, c1]], np.float32))
    assert r.per_chain == pytest.approx(np.array([[3 / 8, 1.0]]))
    assert r.saturation == pytest.approx([11 / 16])
    # 16 sorted values: −1 ×5, −0.995, −0.989, 0, 0.3, 0.5, 0.989, 0.99, 1 ×4; positions 0.15 and 14.85
    assert r.low == pytest.approx([-1.0], abs=EXACT)
    assert r.high == pytest.approx([1.0], abs=EXACT)
    # move the extremes in so both percentiles interpolate: chain 1 becomes 0.1 … 0.8
    c1 = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]
    r = pixel_range(np.array([[c0, c1]], np.float32))
    # sorted: −1, −0.995, −0.989, 0, 0.1, 0.2, 0.3, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.8, 0.989, 0.99
    assert r.low == pytest.approx([-1 + 0.15 * 0.005], abs=EXACT)
    assert r.high == pytest.approx([0.989 + 0.85 * 0.001], abs=EXACT)
    assert r.saturation == pytest.approx([3 / 16])


def test_saturation_share_per_image():
    x = np.zeros((3, 1, 2, 2), np.float32)
    x[0] = WALL  # every pixel exactly at the wall
    x[1, 0, 0] = [-1.0, 0.98]  # one of four
    assert saturation_share(x).tolist() == [1.0, 0.25, 0.0]
    assert saturation_share(to_u8(x)).tolist() == [1.0, 0.25, 0.0]


def test_bad_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match=r"\(F, B, C, H, W\) or \(F, B, H, W\)"):
        pixel_range(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) or \(B, H, W\)"):
        features(np.zeros((28, 28), np.float32))


def test_features_are_exact_area_means_of_28_by_28_blocks():
    # 28 / 8 = 3.5 pixels per block: column 3 ([3, 4)) is half in block 0 ([0, 3.5)) and half in block 1
    x = np.full((1, 1, 28, 28), -1.0, np.float32)
    x[..., 3] = 1.0
    f = features(x).reshape(FEATURE_SIDE, FEATURE_SIDE)
    # blocks 0 and 1 of every row: (3 · (−1) + 0.5 · 1) / 3.5 = −5/7; the other blocks see only −1
    expected = np.full((8, 8), -1.0)
    expected[:, :2] = -5 / 7
    assert f == pytest.approx(expected, abs=EXACT)
    # the left half at 1 lands exactly on blocks 0–3
    x = np.full((1, 28, 28), -1.0, np.float32)
    x[:, :, :14] = 1.0
    assert features(x).reshape(8, 8) == pytest.approx(np.repeat([[1.0] * 4 + [-1.0] * 4], 8, axis=0), abs=EXACT)


def test_features_keep_the_mean_and_are_plain_block_means_on_32_by_32_rgb():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 3, 30, 30)).astype(np.float32)  # 30 = 3.75 pixels per block
    f = features(x).reshape(5, 3, 64)
    # each pixel's weights sum to 64 / (30 · 30) of a block: the mean of the blocks is the image's mean
    assert f.mean(axis=2) == pytest.approx(x.mean(axis=(2, 3)), abs=EXACT)
    y = rng.uniform(-1, 1, (5, 3, 32, 32)).astype(np.float32)
    blocks = y.reshape(5, 3, 8, 4, 8, 4).mean(axis=(3, 5)).reshape(5, 3 * 64)  # channel-major: 3 × 8 × 8
    assert features(y) == pytest.approx(blocks, abs=EXACT)
    assert features(to_u8(y)) == pytest.approx(blocks, abs=QUANTUM)


def test_diversity_of_three_chains_by_hand():
    x = np.full((3, 1, 28, 28), -1.0, np.float32)
    x[1] = 0.0
    x[2, ..., :14] = 1.0  # left half white: 32 blocks at 1, 32 at −1
    # RMS distances: d(0, 1) = 1; d(0, 2) = √(32 · 2² / 64) = √2; d(1, 2) = 1
    d = diversity(x)
    assert d.mean_distance == pytest.approx((2 + math.sqrt(2)) / 3, abs=EXACT)
    assert d.near_duplicates == 0
    assert diversity(to_u8(x)).mean_distance == pytest.approx(d.mean_distance, abs=QUANTUM)


def test_near_duplicates_count_chains_closer_than_the_threshold_to_an_earlier_one():
    levels = [0.0, 0.01, 0.5, 0.2, 0.5]  # constant images: the RMS distance of two is the difference of levels
    x = np.array(levels, np.float32)[:, None, None, None] * np.ones((1, 1, 12, 12), np.float32)
    d = diversity(x)
    # chain 1 is 0.01 from chain 0, chain 4 equals chain 2; chain 3 is 0.19 from its nearest: 2 near-duplicates
    assert 0.01 < DUPLICATE_DISTANCE < 0.19
    assert d.near_duplicates == 2
    pairs = [abs(a - b) for i, a in enumerate(levels) for b in levels[i + 1:]]
    assert d.mean_distance == pytest.approx(sum(pairs) / 10, abs=EXACT)  # 2.98 / 10
    assert diversity(np.repeat(x[:1], 6, axis=0)) == Diversity(0.0, 5)  # all equal: B − 1
    one = diversity(x[:1])
    assert math.isnan(one.mean_distance) and one.near_duplicates == 0


def test_diversity_trace_is_diversity_of_each_frame():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 6, 3, 10, 10), dtype=np.uint8)
    frames[2, 3] = frames[2, 1]  # one duplicate in frame 2
    mean, dups = diversity_trace(frames)
    each = [diversity(f) for f in frames]
    assert mean == pytest.approx([d.mean_distance for d in each], abs=1e-12)
    assert dups.tolist() == [d.near_duplicates for d in each] == [0, 0, 1, 0]


def test_diversity_falls_on_a_constructed_collapse_of_real_digits():
    images, labels = load_dataset("mnist", "test")
    picks = [int(np.flatnonzero(labels.numpy() == d)[0]) for d in range(8)]  # the first 0, 1, …, 7: 8 distinct digits
    digits = images.numpy()[picks]  # (8, 1, 28, 28) in [−1, 1]
    # each chain moves a tenth of the way per step from its own digit to chain 0's digit, recorded as the app does
    a = np.linspace(0, 1, 11)[:, None, None, None, None]
    frames = to_u8((1 - a) * digits[None] + a * digits[:1][None])  # (11, 8, 1, 28, 28) uint8
    mean, dups = diversity_trace(frames)
    assert mean[0] > 0.2, mean  # distinct real digits are far apart (here about 0.53)
    # features are linear in the pixels, so without uint8 rounding the distance is (1 − a) × the first one; rounding
    # moves each feature by at most QUANTUM, each distance by at most 2 × QUANTUM
    assert mean == pytest.approx((1 - a.ravel()) * mean[0], abs=2 * QUANTUM)
    assert (np.diff(mean) < 0).all(), mean  # steps of 0.1 × mean[0] ≫ rounding: strictly falling
    assert mean[-1] == 0.0  # every chain holds the same pixels
    assert dups[0] == 0 and dups[-1] == 7, dups  # B − 1 near-duplicates at the end
    assert (np.diff(dups) >= 0).all(), dups
