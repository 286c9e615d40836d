"""Stored numbers survive another summation order: the AUROCs of ``checkpoints/scores.json`` recomputed with torch
on 1 and 2 threads and with oneDNN off, as a user's CPU would compute them (``tests/tolerances.py``)."""

import numpy as np
import pytest

from ebmviz import checkpoints
from ebmviz.analysis import zoo
from ebmviz.analysis.anomaly import HELD_OUT, SETS_SEED, auroc_row, make_sets, scores
from ebmviz.data import DataError, load_dataset_with_source
from tests.tolerances import AUROC_ABS, ORDERS, auroc_mismatches, reduction_order

# The short-run model's energy: cheap (seconds an order). The triangle's generator −log p(x), the page's other
# recomputed AUROC, takes minutes an order here; its comparison keeps the same tolerance (test_app_anomaly.py).
ENERGIES = (("shortrun-mnist", None),)


@pytest.fixture(scope="module")
def scored():
    """(the held-out digits, the sets) as ``python -m training scores`` builds them."""
    digits = load_dataset_with_source("mnist", "test").images[:HELD_OUT]
    try:
        fashion = load_dataset_with_source("fashion-mnist", "test").images
    except DataError:
        fashion = None
    return digits, make_sets(digits, SETS_SEED, fashion)


@pytest.mark.parametrize("order", ORDERS, ids=str)
@pytest.mark.parametrize(("name", "energy"), ENERGIES)
def test_the_stored_aurocs_hold_in_every_reduction_order(scored, name, energy, order):
    digits, sets = scored
    entry = zoo.read_scores().models[name]
    stored = entry.auroc if energy is None else entry.further_auroc[energy]
    with reduction_order(order):
        live = auroc_row(checkpoints.load(name).named_energy(energy), digits, sets)
    assert set(live) <= set(stored)
    assert not auroc_mismatches(live, stored)
    assert len(auroc_mismatches(live, {k: v + 2 * AUROC_ABS for k, v in stored.items()})) == len(live)


def test_the_orders_really_differ_and_only_in_the_last_digits(scored):
    """The switches change the sums (else the test above proves nothing), by float noise only."""
    digits, _ = scored
    model = checkpoints.load(ENERGIES[0][0])
    runs = []
    for order in ORDERS:
        with reduction_order(order):
            runs.append(scores(model, digits).astype(np.float64))
    differ = [not np.array_equal(runs[0], r) for r in runs[1:]]
    assert any(differ), "no switch changed a single energy: the orders are not being exercised"
    scale = np.abs(runs[0]).max()
    for r in runs[1:]:
        assert np.abs(r - runs[0]).max() <= 1e-4 * scale  # float32 noise, relative to the energies' size
