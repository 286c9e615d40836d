"""Landscape maps against exact answers: the Müller–Brown potential, a flooded 2-D grid, constructed labels.

Everything runs on CPU in well under a second per map.
"""

from __future__ import annotations

import dataclasses
import math
import time

import networkx as nx
import numpy as np
import pytest
import torch

from ebmviz.data import load_dataset
from ebmviz.images import to_u8
from ebmviz.landscape import (
    Landscape,
    LandscapeConfig,
    LandscapeError,
    load_map,
    map_landscape,
    save_map,
    storage,
)
from ebmviz.landscape.exact import flooded_merges
from ebmviz.landscape.storage import map_path
from ebmviz.sampling.toy2d import muller_brown, wells_energy

# ----------------------------------------------------------------------------- Müller–Brown potential
# Published stationary points. We checked them ourselves (scipy BFGS / root on the analytic gradient, float64):
# minima (−0.5582, 1.4417) −146.700, (0.6235, 0.0280) −108.167, (−0.0500, 0.4667) −80.768, Hessian eigenvalues
# all positive; saddles (−0.8220, 0.6243) −40.665 and (0.2125, 0.2930) −72.249, one negative eigenvalue each.
# ``test_muller_brown_reference_points`` re-checks them with torch.
MB_MINIMA = np.array([[-0.558, 1.442], [0.623, 0.028], [-0.050, 0.467]])  # A (deepest), B, C: ascending energy
MB_MIN_E = np.array([-146.70, -108.17, -80.77])
MB_SADDLE_AC = ((-0.822, 0.624), -40.66)  # the minimum-energy path A → C crosses this saddle …
MB_SADDLE_BC = ((0.212, 0.293), -72.25)  # … and C → B this one
A, B, C = 0, 1, 2


def mb_starts(n: int = 8) -> torch.Tensor:
    """An n×n grid over the box [−1.5, 1.2] × [−0.2, 2.0]: (n², 2)."""
    xs, ys = torch.linspace(-1.5, 1.2, n), torch.linspace(-0.2, 2.0, n)
    return torch.stack(torch.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)


MB_CONFIG = LandscapeConfig(merge_tol=0.05, move_tol=1e-4, pairs="all", refine="all")


@pytest.fixture(scope="module")
def mb_map() -> Landscape:
    return map_landscape(muller_brown, mb_starts(), MB_CONFIG)


def same_tree(m1, m2, tol: float) -> bool:
    """The same groups of minima (so the same hierarchy and merge order), each merging at levels within tol."""
    a, b = {s: e for e, s in m1}, {s: e for e, s in m2}
    return a.keys() == b.keys() and all(abs(a[s] - b[s]) <= tol for s in a)


def test_muller_brown_reference_points():
    def hessian_eigenvalues(p: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvalsh(torch.autograd.functional.hessian(lambda q: muller_brown(q[None])[0], p))

    for (x, y), e in zip(MB_MINIMA, MB_MIN_E, strict=True):
        p = torch.tensor([x, y], dtype=torch.float64)
        assert float(muller_brown(p[None])) == pytest.approx(e, abs=0.05)
        assert (hessian_eigenvalues(p) > 0).all()
    for (x, y), e in (MB_SADDLE_AC, MB_SADDLE_BC):
        p = torch.tensor([x, y], dtype=torch.float64)
        assert float(muller_brown(p[None])) == pytest.approx(e, abs=0.05)
        eig = hessian_eigenvalues(p)
        assert eig[0] < 0 < eig[1]


def test_muller_brown_minima(mb_map):
    assert mb_map.n_minima == 3
    np.testing.assert_allclose(mb_map.minima, MB_MINIMA, atol=1e-2)
    np.testing.assert_allclose(mb_map.energy, MB_MIN_E, atol=0.1)
    assert mb_map.minima.dtype == np.float32 and mb_map.images is None
    assert mb_map.assignment.shape == (64,) and set(mb_map.assignment.tolist()) == {0, 1, 2}
    assert mb_map.converged.all()


def test_muller_brown_barriers(mb_map):
    lin, ref = mb_map.barrier_linear, mb_map.barrier_refined
    # the elastic band finds both published saddles
    assert ref[A, C] == pytest.approx(MB_SADDLE_AC[1], abs=0.5) and ref[C, A] == ref[A, C]
    assert ref[B, C] == pytest.approx(MB_SADDLE_BC[1], abs=0.5)
    # A → B has no lower route than through C: its band crosses the higher saddle
    assert ref[A, B] == pytest.approx(MB_SADDLE_AC[1], abs=0.5)
    # the straight A–C segment misses the curved path by far (measured +3.39 against −40.66) …
    assert lin[A, C] > MB_SADDLE_AC[1] + 40
    # … while the straight C–B segment runs within 0.003 of saddle S2, so there both agree with it
    assert lin[B, C] == pytest.approx(MB_SADDLE_BC[1], abs=0.05)
    off = ~np.eye(3, dtype=bool)
    assert (ref[off] <= lin[off]).all()
    top = np.maximum.outer(mb_map.energy, mb_map.energy)
    assert (ref[off] >= top[off]).all() and (lin[off] >= top[off]).all()
    np.testing.assert_array_equal(np.diag(mb_map.barrier), mb_map.energy)
    np.testing.assert_array_equal(mb_map.barrier[off], ref[off])  # the tree uses the refined barriers


def test_muller_brown_tree_and_basins(mb_map):
    m = mb_map.merges()
    # the shallow minimum C joins B's basin at saddle S2, then both join the deepest A at saddle S1
    assert [s for _, s in m] == [frozenset({B, C}), frozenset({A, B, C})]
    assert m[0][0] == pytest.approx(MB_SADDLE_BC[1], abs=0.5)
    assert m[1][0] == pytest.approx(MB_SADDLE_AC[1], abs=0.5)
    t = mb_map.tree
    assert t.graph["roots"] == [4] and t.nodes[4]["n_starts"] == 64
    assert all(t.nodes[i]["kind"] == "minimum" and t.nodes[i]["energy"] == mb_map.energy[i] for i in range(3))
    assert [[g.tolist() for g in mb_map.basins(h)] for h in (-200.0, -100.0, -75.0, -60.0, -30.0)] == [
        [], [[A], [B]], [[A], [B], [C]], [[A], [B, C]], [[A, B, C]]]  # C (E = −80.8) is dry below its energy
    levels = np.array([-200.0, -100.0, -75.0, -60.0, -30.0])
    np.testing.assert_array_equal(mb_map.basin_counts(levels), [0, 2, 3, 2, 1])


def test_muller_brown_sparse_tree_refinement_matches():
    """Default settings (knn pairs, bands on the spanning tree only) give the same tree for less work."""
    sparse = map_landscape(muller_brown, mb_starts(), LandscapeConfig(merge_tol=0.05, move_tol=1e-4))
    full = map_landscape(muller_brown, mb_starts(), MB_CONFIG)
    assert same_tree(sparse.merges(), full.merges(), tol=0.05)
    assert not np.isfinite(sparse.barrier_refined[A, B])  # never in the spanning tree, never refined
    assert sparse.cost.refine.gradient < full.cost.refine.gradient


def test_map_is_deterministic(mb_map):
    again = map_landscape(muller_brown, mb_starts(), MB_CONFIG)
    for k in ("minima", "energy", "assignment", "barrier_linear", "barrier_refined"):
        np.testing.assert_array_equal(getattr(again, k), getattr(mb_map, k))


def test_non_finite_start_is_left_out():
    starts = torch.cat([mb_starts(4), torch.tensor([[math.nan, 0.0]])])
    m = map_landscape(muller_brown, starts, LandscapeConfig(merge_tol=0.05, refine="none"))
    assert m.assignment[-1] == -1 and (m.assignment[:-1] >= 0).all() and not m.converged[-1]


def test_config_is_validated():
    with pytest.raises(ValueError, match="pairs"):
        map_landscape(muller_brown, mb_starts(2), LandscapeConfig(pairs="some"))
    with pytest.raises(ValueError, match="n_images"):
        LandscapeConfig(n_images=2).validate()
    c = LandscapeConfig(clamp=(-1.0, 1.0), refine="none")
    assert LandscapeConfig.from_dict(c.to_dict()) == c


# ----------------------------------------------------------------------------- a landscape with many minima
WELLS_STARTS = (torch.rand(100, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 4.5


@pytest.fixture(scope="module")
def wells_maps() -> dict[str, Landscape]:
    energy = wells_energy(25, seed=0, box=4.0)
    return {mode: map_landscape(energy, WELLS_STARTS, LandscapeConfig(merge_tol=0.05, pairs=mode, k_nearest=8))
            for mode in ("all", "knn")}


def test_sparse_and_all_pairs_give_the_same_tree(wells_maps):
    full, sparse = wells_maps["all"], wells_maps["knn"]
    assert 10 <= full.n_minima <= 30
    np.testing.assert_array_equal(full.minima, sparse.minima)
    assert same_tree(full.merges(), sparse.merges(), tol=0.01)
    m = full.n_minima
    assert np.isfinite(full.barrier_linear).all() and np.isfinite(sparse.barrier_linear).sum() < m * m
    assert sparse.cost.evaluations < full.cost.evaluations
    assert sparse.cost.linear.forward < full.cost.linear.forward
    assert sparse.cost.descent == full.cost.descent or sparse.cost.descent.gradient == full.cost.descent.gradient


def test_tree_matches_a_flooded_grid(wells_maps):
    """The barriers' single-linkage tree equals the exact one from flooding a fine grid (levels within 0.05)."""
    m = wells_maps["knn"]
    truth = flooded_merges(wells_energy(25, seed=0, box=4.0), m.minima, extent=6.0)
    assert same_tree(m.merges(), truth, tol=0.05)
    done = np.isfinite(m.barrier_refined)
    assert (m.barrier_refined[done] <= m.barrier_linear[done]).all() and done.sum() > 2 * (m.n_minima - 1)


def test_purity_on_constructed_labels(mb_map):
    a = mb_map.assignment
    labels = np.where(a == A, 7, np.where(a == B, 3, 0))
    c_starts = np.flatnonzero(a == C)
    labels[c_starts[: len(c_starts) // 2]] = 3  # half of C's starts look like B's, the rest are 0s
    m = dataclasses.replace(mb_map, labels=labels)
    n_b, n_c, half = (a == B).sum(), len(c_starts), len(c_starts) // 2
    np.testing.assert_allclose(m.purity(-75.0), [1.0, 1.0, (n_c - half) / n_c])
    np.testing.assert_allclose(m.purity(-60.0), [1.0, max(n_b + half, n_c - half) / (n_b + n_c)])
    np.testing.assert_allclose(m.purity(0.0), [(a == A).sum() / len(a)])
    with pytest.raises(ValueError, match="labels"):
        mb_map.purity(0.0)


def test_labels_pass_through():
    labels = np.arange(64) % 3
    m = map_landscape(muller_brown, mb_starts(), LandscapeConfig(merge_tol=0.05, refine="none"), labels=labels)
    np.testing.assert_array_equal(m.labels, labels)
    assert m.purity(1e9).shape == (1,)


# ----------------------------------------------------------------------------- progress
def test_progress_grows_a_drawable_map():
    calls = []
    cfg = LandscapeConfig(merge_tol=0.05, batch_size=16, pairs="all")
    result = map_landscape(muller_brown, mb_starts(), cfg, progress=lambda d, t, p: calls.append((d, t, p)))
    done = [d for d, _, _ in calls]
    assert len(calls) >= 4 and done == sorted(set(done)) and {t for _, t, _ in calls} == {calls[0][1]}
    assert done[-1] == calls[0][1] and calls[-1][2] is not None
    np.testing.assert_array_equal(calls[-1][2].barrier, result.barrier)
    for _, _, p in calls:
        m = p.n_minima
        assert p.assignment.shape == (64,) and p.minima.shape == (m, 2) and p.barrier.shape == (m, m)
        assert p.tree.number_of_nodes() >= m and len(p.basins(0.0)) >= 1
    first = calls[0][2]  # after the first descent chunk: some minima, no barriers yet
    assert (first.assignment[16:] == -1).all() and np.isinf(first.barrier[~np.eye(first.n_minima, dtype=bool)]).all()


# ----------------------------------------------------------------------------- images and latent maps
def test_image_shaped_states():
    gen = torch.Generator().manual_seed(0)
    centres = torch.rand(3, 1, 28, 28, generator=gen) * 1.6 - 0.8  # three fixed "images"

    def bowls(x: torch.Tensor) -> torch.Tensor:  # soft minimum of quadratic bowls around the centres
        sq = ((x[:, None] - centres[None]) ** 2).flatten(2).sum(-1)  # (B, 3)
        return -torch.logsumexp(-sq / 8.0, dim=1)

    starts = centres.repeat(4, 1, 1, 1) + 0.2 * torch.randn(12, 1, 28, 28, generator=gen)
    m = map_landscape(bowls, starts, LandscapeConfig(merge_tol=1.0, clamp=(-1.0, 1.0)))
    assert m.minima.shape == (3, 1, 28, 28) and m.images.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(m.images, m.minima)
    order = m.assignment[:3]  # start k is centre k plus noise
    np.testing.assert_allclose(m.minima[order], centres.numpy(), atol=1e-2)
    assert m.barrier.shape == (3, 3) and np.isfinite(m.barrier).all()
    assert sorted(m.tree.graph["roots"]) == [4] and len(m.basins(float(m.energy.max()))) == 3


def test_latent_map_with_decode():
    decode = lambda z: torch.tanh(z[:, :1, None, None]).expand(-1, 1, 28, 28)  # (M, 2) -> (M, 1, 28, 28)
    m = map_landscape(muller_brown, mb_starts(4), LandscapeConfig(merge_tol=0.05, refine="none"), decode=decode)
    assert m.images.shape == (m.n_minima, 1, 28, 28)
    np.testing.assert_allclose(m.images[:, 0, 0, 0], np.tanh(m.minima[:, 0]), atol=1e-6)


# ----------------------------------------------------------------------------- storage
def test_save_load_round_trip(mb_map, tmp_path):
    path = save_map(mb_map, tmp_path / "mb.safetensors", meta={"checkpoint": "toy", "n_starts": 64})
    back = load_map(path)
    for k in storage.ARRAYS:
        np.testing.assert_array_equal(getattr(back, k), getattr(mb_map, k))
        assert getattr(back, k).dtype == getattr(mb_map, k).dtype
    assert back.images is None and back.labels is None
    assert back.config == mb_map.config and back.cost == mb_map.cost and back.meta["checkpoint"] == "toy"
    assert nx.utils.graphs_equal(back.tree, mb_map.tree)
    assert [g.tolist() for g in back.basins(-60.0)] == [g.tolist() for g in mb_map.basins(-60.0)]


def test_named_maps_and_cache_paths(mb_map, tmp_path, monkeypatch):
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    save_map(mb_map, "toy")
    assert (tmp_path / "maps" / "toy.safetensors").is_file()
    assert load_map("toy").n_minima == 3
    (tmp_path / "net.safetensors").write_bytes(b"weights v1")
    cfg = LandscapeConfig()
    p = map_path("net", cfg, {"starts": "generator", "n": 100})
    assert p.parent == tmp_path / "maps" / "cache" and p.name.startswith("net-")
    assert p == map_path("net", cfg, {"n": 100, "starts": "generator"})
    assert p != map_path("net", LandscapeConfig(n_path=16), {"starts": "generator", "n": 100})
    assert p != map_path("net", cfg, {"starts": "data", "n": 100})
    (tmp_path / "net.safetensors").write_bytes(b"weights v2")
    assert p != map_path("net", cfg, {"starts": "generator", "n": 100})
    with pytest.raises(LandscapeError, match="no such checkpoint"):
        map_path("missing", cfg)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign", "missing"])
def test_bad_files_raise_landscape_error(mb_map, tmp_path, damage):
    path = save_map(mb_map, tmp_path / "m.safetensors")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 40])
    elif damage == "garbage":
        path.write_bytes(data[:8] + b"\xff" * (len(data) - 8))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":  # a valid safetensors file without map metadata
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(path))
    else:
        path.unlink()
    with pytest.raises(LandscapeError) as err:
        load_map(path)
    assert str(path) in str(err.value) and err.value.reason


def test_load_is_fast_for_500_minima(tmp_path):
    m, n = 500, 2000
    rng = np.random.default_rng(0)
    energy = np.sort(rng.normal(size=m))
    lin = np.full((m, m), np.inf)
    pairs = rng.integers(0, m, size=(8 * m, 2))
    lin[pairs[:, 0], pairs[:, 1]] = lin[pairs[:, 1], pairs[:, 0]] = np.maximum(energy[pairs[:, 0]],
                                                                               energy[pairs[:, 1]]) + rng.random(8 * m)
    np.fill_diagonal(lin, energy)
    big = Landscape(minima=rng.normal(size=(m, 1, 28, 28)).astype(np.float32), images=None, energy=energy,
                    assignment=rng.integers(0, m, size=n), converged=np.ones(n, dtype=bool), barrier_linear=lin,
                    barrier_refined=np.where(rng.random((m, m)) < 0.5, lin, np.inf), step_size=np.ones(m),
                    labels=rng.integers(0, 10, size=n), config=LandscapeConfig())
    path = save_map(big, tmp_path / "big.safetensors")
    t = time.perf_counter()
    back = load_map(path)
    back.tree, back.basins(0.0)
    assert time.perf_counter() - t < 2.0
    assert nx.utils.graphs_equal(back.tree, big.tree)


def test_latent_energy_is_the_image_energy_through_the_generator_plus_the_prior():
    from ebmviz.landscape.spaces import LatentEnergy

    lin = torch.nn.Linear(3, 784)
    gen = lambda z: lin(z).view(-1, 1, 28, 28)  # noqa: E731
    energy = lambda x: x.pow(2).flatten(1).sum(1)  # noqa: E731
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    u = LatentEnergy(energy, gen, temperature=0.25)(z)
    torch.testing.assert_close(u, energy(gen(z)) * 4 + 0.5 * (z**2).sum(1))
    with pytest.raises(ValueError, match="temperature"):
        LatentEnergy(energy, gen, temperature=0.0)


def test_fit_latents_recovers_the_codes_of_a_linear_generator_and_leaves_it_unchanged():
    from ebmviz.landscape.spaces import fit_latents

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 784)
    before = [p.detach().clone() for p in lin.parameters()]
    gen = lambda z: lin(z).view(-1, 1, 28, 28)  # noqa: E731
    z_true = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = gen(z_true)
    z, loss = fit_latents(gen, x, 4, steps=300, inits=2, lr=0.1, prior=0.0, seed=2)
    torch.testing.assert_close(z, z_true, atol=2e-2, rtol=0)
    assert loss.shape == (6,) and (loss < 1e-2).all()
    assert all(torch.equal(a, b) for a, b in zip(before, lin.parameters(), strict=True))
    assert all(p.grad is None for p in lin.parameters())
    z2, loss2 = fit_latents(gen, x, 4, steps=0, inits=3, seed=2)  # no steps: the best of the three starts
    assert z2.shape == (6, 4) and torch.isfinite(loss2).all()


@pytest.mark.slow
def test_landscape_map_tool_stores_a_scored_map(tmp_path):
    from training.__main__ import main as training_main

    out = tmp_path / "ebgan-latent.safetensors"
    assert training_main(["landscape-map", "ebgan-mnist", "--space", "latent", "--n", "6", "--fit-steps", "5",
                          "--fit-inits", "1", "--n-steps", "30", "--layout", "pca", "--out", str(out)]) == 0
    land = load_map(out)
    assert land.assignment.shape == (6,) and land.images.shape == (land.n_minima, 1, 28, 28)
    digits, labels = load_dataset("mnist", "test")
    index = land.meta["test_index"]
    assert np.array_equal(land.start_images, to_u8(digits[index].numpy()))
    assert np.array_equal(land.labels, labels[index])
    assert land.layout.shape == (6 + land.n_minima, 2) and np.isfinite(land.layout).all()
    assert land.minima.shape[1] == 32 and land.meta["space"] == "latent" and land.meta["temperature"] == 0.01
    q = land.meta["minima_quality"]
    assert 0 <= q["confident_share"] <= 1 and len(q["labels"]) == land.n_minima
    out = tmp_path / "tri-latent.safetensors"  # codes from the triangle's inference network, no layout
    assert training_main(["landscape-map", "triangle-mnist", "--space", "latent", "--n", "5", "--n-steps", "20",
                          "--temperature", "0.3", "--layout", "none", "--out", str(out)]) == 0
    land = load_map(out)
    assert land.meta["codes_from"] == "inference network mean"
    assert land.layout is None and land.start_images.shape[0] == 5
    out = tmp_path / "sr-image.safetensors"
    assert training_main(["landscape-map", "shortrun-mnist", "--space", "image", "--n", "4", "--n-steps", "10",
                          "--layout", "none", "--out", str(out)]) == 0
    assert load_map(out).minima.shape[1:] == (1, 28, 28)
    with pytest.raises(SystemExit):  # no generator to map a latent space through
        training_main(["landscape-map", "shortrun-mnist", "--space", "latent", "--n", "2", "--out", str(out)])


def test_a_map_stores_pictures_of_any_image_shape_and_refuses_mixed_ones(mb_map, tmp_path):
    """A user model's map keeps its (3, 32, 32) pictures; pictures of two shapes, or of 2 channels, are refused."""
    m, n = mb_map.n_minima, len(mb_map.assignment)
    rgb = dataclasses.replace(mb_map, images=np.zeros((m, 3, 32, 32), np.float32),
                              start_images=np.zeros((n, 3, 32, 32), np.uint8))
    back = load_map(save_map(rgb, tmp_path / "rgb.safetensors"))
    assert back.images.shape == (m, 3, 32, 32) and back.start_images.shape == (n, 3, 32, 32)
    for images, starts in (((m, 3, 32, 32), (n, 1, 28, 28)), ((m, 2, 28, 28), (n, 2, 28, 28))):
        bad = dataclasses.replace(mb_map, images=np.zeros(images, np.float32), start_images=np.zeros(starts, np.uint8))
        with pytest.raises(LandscapeError, match="of one shape, C = 1 or 3"):
            load_map(save_map(bad, tmp_path / "bad.safetensors"))
