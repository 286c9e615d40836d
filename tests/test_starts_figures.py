"""Start states, the shipped short-run model's interface, and the figure builders."""

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.analysis.embedding import fit_pca
from ebmviz.figures.chains import projection_figure, traces_figure
from ebmviz.figures.images import labelled_grid, tile
from ebmviz.sampling.starts import START_KINDS, make_starts


def test_every_start_kind():
    data = torch.rand(10, 1, 28, 28) * 2 - 1
    image = torch.zeros(1, 1, 28, 28)
    for start in START_KINDS:
        model = checkpoints.load("triangle-mnist" if start == "generator" else "shortrun-mnist")
        x = make_starts(start, 5, seed=1, data=data, model=model, image=image)
        assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1, start
        assert torch.equal(x, make_starts(start, 5, seed=1, data=data, model=model, image=image))
    clean = make_starts("data", 50, seed=2, data=data)
    noisy = make_starts("data+noise", 50, seed=2, data=data, data_noise=0.3)
    assert 0.1 < (noisy - clean).std() < 0.35


def test_start_kinds_that_cannot_be_served_say_why():
    with pytest.raises(ValueError, match="no data"):
        make_starts("data", 2)
    with pytest.raises(ValueError, match="no replay buffer"):
        make_starts("replay", 2, model=object())
    with pytest.raises(ValueError, match="no generator"):
        make_starts("generator", 2, model=checkpoints.load("shortrun-mnist"))
    with pytest.raises(ValueError, match="upload an image"):
        make_starts("upload", 2)
    with pytest.raises(ValueError, match="unknown start"):
        make_starts("zeros", 2)


def test_shipped_model_energy_and_replay():
    model = checkpoints.load("shortrun-mnist")
    e = model(torch.rand(3, 1, 28, 28) * 2 - 1)
    assert e.shape == (3,) and torch.isfinite(e).all()
    buf = model.replay_samples(8, seed=0)
    assert buf.shape == (8, 1, 28, 28) and buf.std() > 0.1  # real stored states, not zeros


def test_tile_and_labelled_grid_shapes():
    imgs = np.random.default_rng(0).integers(0, 256, (10, 1, 28, 28), dtype=np.uint8)
    t = tile(imgs, ncol=4, pad=2)
    assert t.shape == (3 * 30 + 2, 4 * 30 + 2) and t.dtype == np.uint8
    np.testing.assert_array_equal(t[2:30, 2:30], imgs[0, 0])
    g = labelled_grid(imgs, [f"{i}" for i in range(10)], ncol=5, scale=2)
    assert g.shape[1] == 5 * (56 + 4) + 4 and g.ndim == 2


def test_traces_and_projection_figures():
    rng = np.random.default_rng(0)
    e, g, s = rng.normal(size=(11, 4)), rng.random((10, 4)), rng.random((10, 4))
    fig = traces_figure(e, g, s, accept=(rng.random((10, 4)) > 0.5).astype(float), selected=2)
    names = [t.name for t in fig.data]
    assert "median chain" in names and "chain 2" in names and any("acceptance" in (n or "") for n in names)
    np.testing.assert_allclose(fig.data[1].y, np.median(e, axis=1))
    images = rng.random((50, 1, 28, 28)).astype(np.float32) * 2 - 1
    pca = fit_pca(images)
    xy = pca.transform(images)
    assert xy.shape == (50, 2) and abs(xy.mean()) < 1e-4
    paths = np.stack([xy[:3], xy[3:6]])  # (F=2, B=3, 2)
    proj = projection_figure(xy, np.arange(50) % 10, paths, ["a", "b", "c"], selected=1)
    markers = [t for t in proj.data if t.customdata is not None]
    assert [int(t.customdata[0]) for t in markers] == [0, 1, 2]


def test_live_traces_draw_every_kth_step_and_the_last():
    rng = np.random.default_rng(1)
    t = 1000
    e, g, s = rng.normal(size=(t + 1, 4)), rng.random((t, 4)), rng.random((t, 4))
    accept = (rng.random((t, 4)) > 0.5).astype(float)
    full = traces_figure(e, g, s, accept=accept, selected=1)
    live = traces_figure(e, g, s, accept=accept, selected=1, max_points=100)
    assert len(full.data) == len(live.data)
    for a, b in zip(full.data, live.data, strict=True):
        if b.fill == "toself":
            continue  # the band: its outline, tested through the median beside it
        assert 90 <= len(b.x) <= 101 < len(a.x), (b.name, len(b.x))
        assert b.x[-1] == a.x[-1]  # the live trace reaches the newest step
        # each point drawn is that step's own value, not an average over the skipped ones
        np.testing.assert_allclose(b.y, np.asarray(a.y)[np.searchsorted(np.asarray(a.x), np.asarray(b.x))])
    energy_median = live.data[1]
    assert list(energy_median.x[:3]) == [0, 11, 22] and energy_median.x[-1] == t
    np.testing.assert_allclose(energy_median.y, np.median(e[energy_median.x], axis=1))
