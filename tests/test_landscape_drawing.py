"""The disconnectivity-graph layout, routes through the tree and energy profiles along paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmviz.landscape import barriers
from ebmviz.landscape.graph import draw_tree, merge_level, route
from ebmviz.landscape.paths import band_between, polyline_profile
from tests.test_landscape import MB_SADDLE_AC, A, C, mb_map, muller_brown  # noqa: F401 (mb_map is a fixture)

INF = np.inf


def three_minima_and_a_loner() -> np.ndarray:
    """Minima 0..3 with E = 0, 2, 1, 5: 0–2 join at 3, then 1 at 4; 3 is never joined (no barrier)."""
    b = np.full((4, 4), INF)
    np.fill_diagonal(b, [0.0, 2.0, 1.0, 5.0])
    b[0, 2] = b[2, 0] = 3.0
    b[1, 2] = b[2, 1] = 4.0
    b[0, 1] = b[1, 0] = 6.0  # not in the spanning tree: 1 is reached through 2 at 4
    return b


def test_draw_tree_places_lower_children_first_and_draws_elbows():
    b = three_minima_and_a_loner()
    tree = barriers.merge_tree(np.diag(b), b)
    d = draw_tree(tree)
    # root of {0, 1, 2} (lowest minimum 0) first; inside it {0, 2} before 1; the loner 3 last
    np.testing.assert_array_equal(d.leaf_x, [0, 2, 1, 3])
    np.testing.assert_allclose(d.merge_x, [0.5, 1.25])  # (0 + 1)/2, then (0.5 + 2)/2
    np.testing.assert_allclose(d.merge_y, [3.0, 4.0])
    np.testing.assert_array_equal(d.merge_pair, [[0, 2], [1, 2]])
    first = np.column_stack([d.line_x[:4], d.line_y[:4]])  # leaf 0 up to 3, across to leaf 2, down to E_2 = 1
    np.testing.assert_allclose(first, [[0, 0], [0, 3], [1, 3], [1, 1]])
    second = np.column_stack([d.line_x[5:9], d.line_y[5:9]])  # the {0, 2} merge up to 4, across to leaf 1
    np.testing.assert_allclose(second, [[0.5, 3], [0.5, 4], [2, 4], [2, 2]])
    assert np.isnan(d.line_x[4]) and len(d.line_x) == 10


def test_route_follows_the_spanning_edges_and_merge_level_is_its_highest_barrier():
    b = three_minima_and_a_loner()
    tree = barriers.merge_tree(np.diag(b), b)
    assert route(tree, 0, 1) == [0, 2, 1]  # not the direct pair, whose barrier 6 is higher
    assert route(tree, 1, 0) == [1, 2, 0] and route(tree, 2, 2) == [2]
    assert route(tree, 0, 3) is None
    assert merge_level(tree, 0, 1) == 4.0 and merge_level(tree, 0, 2) == 3.0 and merge_level(tree, 1, 1) == 2.0
    assert merge_level(tree, 0, 3) == INF


def test_polyline_profile_is_the_energy_along_the_pieces():
    energy = lambda x: x.pow(2).sum(1)  # noqa: E731
    v = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    p = polyline_profile(energy, v, n_per_piece=5)
    assert len(p.energy) == 9 and list(p.vertex) == [0, 4, 8]
    np.testing.assert_allclose(p.distance, [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])
    np.testing.assert_allclose(p.energy, [1, 0.25, 0, 0.25, 1, 1.25, 2, 3.25, 5])
    assert p.barrier == 5.0
    np.testing.assert_allclose(p.pick(3), [[-1, 0], [1, 0], [1, 2]])
    with pytest.raises(ValueError, match="two vertices"):
        polyline_profile(energy, v[:1])


def test_band_between_two_muller_brown_minima_crosses_the_published_saddle(mb_map):  # noqa: F811
    path = band_between(muller_brown, mb_map, A, C)
    assert torch.allclose(path[0], torch.from_numpy(mb_map.minima[A])) and len(path) == mb_map.config.n_images
    curved = polyline_profile(muller_brown, path)
    straight = polyline_profile(muller_brown, torch.from_numpy(mb_map.minima[[A, C]]))
    assert curved.barrier == pytest.approx(MB_SADDLE_AC[1], abs=0.5)
    assert straight.barrier > curved.barrier + 40  # the straight segment climbs far above the saddle


def test_recorded_descent_ends_where_the_plain_one_does_and_never_climbs():
    from ebmviz.landscape.minima import descend

    starts = torch.tensor([[0.5, 1.0], [-1.0, 0.2], [0.9, 0.6]])
    kw = dict(n_steps=200, first_move=0.05, move_tol=1e-4)
    plain = descend(muller_brown, starts, **kw)
    rec = descend(muller_brown, starts, **kw, record_every=10)
    assert plain.path is None and torch.equal(plain.x, rec.x)
    assert rec.path.shape[1:] == starts.shape and len(rec.path) == len(rec.path_energy) >= 3
    assert torch.equal(rec.path[0], starts) and torch.equal(rec.path[-1], rec.x)
    assert (rec.path_energy[1:] <= rec.path_energy[:-1]).all()  # every taken step lowers E
