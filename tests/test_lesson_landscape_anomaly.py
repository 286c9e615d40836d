"""The lesson's landscape and anomaly stops: the landscape opens at the purest cut with 10–30 basins (the rule
checked against a brute-force scan of the stored map), says why with its numbers, places your digit by its
barriers and says what happened to it; both pages end with "What to notice" lines that carry the numbers on
screen."""

import re

import numpy as np
import pytest
import torch

from ebmviz.landscape import LandscapeConfig, load_map, map_energy, map_landscape
from ebmviz.landscape.cuts import WANTED, basins_at, default_cut, scan_cuts
from ebmviz.landscape.placing import place
from tests.test_app import notice as notice_lines, open_page

LANDSCAPE = "views/landscape.py"
ANOMALY = "views/anomaly.py"
SHIPPED = "ebgan-mnist-latent"  # the map the page opens with
FAST = "triangle-mnist-latent"  # codes from an inference network: a digit descends in about a second


def brute_force_cut(land, wanted=WANTED):
    """Every level where the basins change; at each, the basins from ``Landscape.basins`` and the purity counted
    start by start: (level, basins, starts in basins, sorted starts) of the purest level with ``wanted`` basins."""
    levels = np.unique(np.concatenate([land.energy, [lvl for lvl, _ in land.merges()]]))
    reached = land.assignment >= 0
    best = None
    for level in levels:
        groups = land.basins(level)
        if not wanted[0] <= len(groups) <= wanted[1]:
            continue
        wet = sorted_ = 0
        for g in groups:
            labels = land.labels[np.isin(land.assignment, g)]
            wet += len(labels)
            sorted_ += max(np.sum(labels == d) for d in range(10)) if len(labels) else 0
        purity = sorted_ / reached.sum()
        if best is None or purity > best[4]:
            best = (float(level), len(groups), wet, sorted_, purity)
    return best




# ------------------------------------------------------------------------------------------ the opening cut
@pytest.mark.parametrize("name", [SHIPPED, FAST])
def test_default_cut_is_the_purest_level_with_10_to_30_basins(name):
    land = load_map(name)
    level, n_basins, wet, sorted_, purity = brute_force_cut(land)
    cut = default_cut(scan_cuts(land))
    scan = scan_cuts(land)
    assert cut.level == pytest.approx(level) and cut.rule == "purity"
    assert WANTED[0] <= scan.basins[cut.index] <= WANTED[1]
    assert (scan.basins[cut.index], scan.wet[cut.index], scan.sorted[cut.index]) == (n_basins, wet, sorted_)
    assert scan.purity[cut.index] == pytest.approx(purity)
    b = basins_at(land, cut.level)  # the page's table counts the same
    assert len(b.groups) == n_basins and b.starts.sum() == wet and b.cut_purity == pytest.approx(purity)


def test_scan_matches_the_basins_at_every_level_of_a_small_map():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, -3.0]])

    def energy(x):  # four Gaussian wells of different depths
        d = torch.cdist(x, centres).pow(2)
        return -torch.logsumexp(-d / 0.8 + torch.tensor([0.0, 0.5, 1.0, 1.5]), dim=1)

    starts = torch.randn(40, 2, generator=g) * 2.5
    labels = (starts[:, 0] > 0).long().numpy() + 2 * (starts[:, 1] > 0).long().numpy()
    land = map_landscape(energy, starts, LandscapeConfig(n_steps=300, pairs="all", refine="none", merge_tol=0.1),
                         labels=labels)
    scan = scan_cuts(land)
    for i, level in enumerate(scan.levels):
        b = basins_at(land, level)
        assert scan.basins[i] == len(b.groups) and scan.wet[i] == b.starts.sum() and scan.sorted[i] == b.hits.sum()
    cut = default_cut(scan)  # fewer than 10 basins ever: it takes the levels with the most, the purest of them
    assert scan.basins[cut.index] == scan.basins.max()
    assert scan.purity[cut.index] == scan.purity[scan.basins == scan.basins.max()].max()


# ------------------------------------------------------------------------------------------ placing a digit
def test_a_point_is_placed_by_its_barriers_not_by_its_distance():
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 4.0]])

    def energy(x):  # three wells; the map is made from starts in the first two only
        return -torch.logsumexp(-torch.cdist(x, centres).pow(2) / 0.5, dim=1)

    starts = torch.tensor([[-2.5, 0.3], [-1.5, -0.2], [2.4, 0.1], [1.7, -0.3]])
    land = map_landscape(energy, starts, LandscapeConfig(n_steps=500, pairs="all", refine="none", merge_tol=0.2))
    assert land.n_minima == 2
    left = int(np.argmin(land.minima[:, 0]))
    at_minimum = place(energy, land, torch.from_numpy(land.minima[[left]]), float(land.energy[left]))
    assert at_minimum.kind == "minimum" and at_minimum.nearest == left
    slope = torch.tensor([[-2.0, 0.9]])  # on the left well's slope, 0.9 from its bottom: further than merge_tol
    p = place(energy, land, slope, float(energy(slope)))
    assert p.kind == "valley" and p.valley == left and p.distance > land.config.merge_tol
    third = torch.tensor([[0.0, 4.0]])  # the bottom of the well the map never visited
    p = place(energy, land, third, float(energy(third)))
    assert p.kind == "new" and p.climb > 0.5 and p.barrier > max(land.energy)
    assert p.basin(land, float(land.energy.max()), np.zeros(land.n_minima, int)) is None  # below its pass: a lake


# ------------------------------------------------------------------------------------------ the pages
def test_landscape_opens_at_the_purest_cut_and_ends_with_its_numbers():
    land = load_map(SHIPPED)
    level, n_basins, wet, sorted_, purity = brute_force_cut(land)
    at = open_page(LANDSCAPE)
    assert at.slider(key=f"ls_thr_{SHIPPED}").value == pytest.approx(level)
    assert f"{n_basins} basins at U(z) ≤ {level:.2f}" in [h.value for h in at.subheader]
    why = next(m.value for m in at.markdown if "The page opens at" in m.value)
    assert f"purity {sorted_}/{len(land.assignment)} = {purity:.2f}" in why and f"hold {wet} of the" in why
    lines = notice_lines(at)
    assert len(lines) == 3
    assert f"the {n_basins} basins hold {wet} of the {len(land.assignment)} starts" in lines[0]
    assert f"{sorted_} of those" in lines[0] and f"purity {purity:.2f}" in lines[0]
    joins = land.n_minima - len(land.tree.graph["roots"])
    assert f"of the graph's {joins} joins have no rise" in lines[1]
    assert "Between minima A = 0 and B = 1" in lines[2]
    assert at.get("page_link")[-1].proto.label.startswith("That was the last")  # the last stop: back home


def your_digit(index: int):
    at = open_page(LANDSCAPE)
    at.selectbox(key="ls_map").set_value(FAST).run()
    at.segmented_control(key="ls_view").set_value("Your digit").run()
    at.number_input(key="ls_idx").set_value(index).run()
    assert not at.exception, at.exception
    return at, next(m.value for m in at.markdown if m.value.startswith(("It ", "This digit")))


def test_your_digit_that_was_one_of_the_maps_starts_reaches_its_minimum():
    land = load_map(FAST)
    start = 2
    index, reached = land.meta["test_index"][start], int(land.assignment[start])
    at, story = your_digit(index)
    assert f"one of the map's {len(land.assignment)} starts (start {start})" in story
    assert f"It reaches **minimum {reached}**" in story and "a valley the map does not have" not in story
    assert notice_lines(at)[0].startswith("Your digit stopped 0.0") and f"minimum {reached}" in notice_lines(at)[0]


def test_your_digit_that_stops_apart_from_its_maps_minimum_is_in_that_minimums_valley():
    land = load_map(FAST)
    start = 0  # descended alone it stops 0.7 from where the map's batch descent did, with no barrier between
    index, reached = land.meta["test_index"][start], int(land.assignment[start])
    at, story = your_digit(index)
    assert f"(start {start})" in story
    if "no barrier separates them" in story:  # where this map was made: 0.71 apart, over merge_tol = 0.5
        assert f"reached **minimum {reached}**" in story
        assert f"in the valley of **minimum {reached}** (U(z) = {land.energy[reached]:.2f})" in story
        assert notice_lines(at)[0].startswith("Your digit stopped") and f"minimum {reached}, with no barrier" in \
            notice_lines(at)[0]
    else:  # another CPU's descent may stop within merge_tol of the stored minimum: then it reaches it
        assert f"It reaches **minimum {reached}**" in story, story


def test_your_digit_in_a_valley_the_map_lacks_says_so_with_its_pass():
    land = load_map(FAST)
    index = 1
    assert index not in land.meta["test_index"]
    at, story = your_digit(index)
    assert "ends near" not in story and "did not find" not in story  # the old, puzzling wording
    m = re.search(r"It stops at U\(z\) = (-?[\d.]+) in a valley the map does not have: the nearest of the map's "
                  r"(\d+) minima \(minimum (\d+)\) is ([\d.]+) away.*The lowest of those passes, U\(z\) = (-?[\d.]+) "
                  r"\(([\d.]+) above where it stopped\), leads to \*\*minimum (\d+)\*\*", story)
    assert m, story
    stop, n_minima, nearest, distance, barrier, climb, via = m.groups()
    assert int(n_minima) == land.n_minima and float(distance) > land.config.merge_tol
    assert float(barrier) - float(stop) == pytest.approx(float(climb), abs=0.011)
    # the pass it names, measured here on the straight segment from the descent's end to that minimum
    from ebmviz.app.landscape_digit import descend_digit
    from ebmviz.app.landscape_maps import open_map
    from ebmviz.checkpoints import load
    from ebmviz.data import load_dataset

    view = open_map(_map_file(FAST))
    d = descend_digit(view.name, view.mtime, load_dataset("mnist", "test")[0][index:index + 1].numpy(), index)
    ends = np.linalg.norm(land.minima.reshape(land.n_minima, -1) - d.end.reshape(1, -1), axis=1)
    assert int(np.argmin(ends)) == int(nearest) and ends.min() == pytest.approx(float(distance), abs=0.006)
    energy, _ = map_energy(load(land.meta["checkpoint"]), "latent", float(land.meta["temperature"]))
    t = torch.linspace(0, 1, land.config.n_path)[:, None]
    a, b = torch.from_numpy(d.end), torch.from_numpy(land.minima[[int(via)]])
    with torch.no_grad():
        top = float(energy((1 - t) * a + t * b).max())
    assert top == pytest.approx(float(barrier), abs=0.006)
    assert "At the threshold" in story and notice_lines(at)[0].startswith("Your digit found a valley the map does not")


def test_landscape_speaks_plainly_before_the_notation():
    at = open_page(LANDSCAPE)
    intro = at.markdown[0].value
    assert "$" not in intro  # no symbols before the words
    for term in ("**energy**", "**local minimum**", "**barrier**", "**basin**", "**disconnectivity graph**"):
        assert term in intro, term
    assert "**Purity**" in next(m.value for m in at.markdown if "The page opens at" in m.value)


# ------------------------------------------------------------------------------------------ anomaly
def stored_rows():
    """The stored table's rows as the page lists them: label -> AUROC per set."""
    from ebmviz.analysis import zoo

    rows = {}
    for name, entry in zoo.read_scores().models.items():
        if entry.auroc:
            rows[name] = entry.auroc
        for energy, row in (entry.further_auroc or {}).items():
            rows[f"{name} · {energy}"] = row
    return rows


def test_anomaly_speaks_plainly_and_its_table_ends_with_the_tables_numbers():
    from ebmviz.analysis.anomaly import GOAL_SETS, goal

    at = open_page(ANOMALY)
    intro = at.markdown[0].value
    assert "$" not in intro
    for term in ("**score**", "**held-out digits**", "**out-of-distribution set**", "**ROC curve**", "**AUROC**",
                 "**goal**"):
        assert term in intro, term
    rows = stored_rows()
    graded = {k: goal(r) for k, r in rows.items() if goal(r) is not None}
    best = max(graded, key=lambda k: graded[k][0])
    lines = notice_lines(at)
    assert lines[0].startswith(f"Best on the goal's {len(GOAL_SETS)} sets: {best}, mean {graded[best][0]:.3f}, "
                               f"lowest {graded[best][1]:.3f}")
    sets = {s for r in rows.values() for s in r}
    medians = {s: np.median([r[s] for r in rows.values() if s in r]) for s in sets}
    hardest = min(medians, key=medians.get)
    below = sum(r.get(hardest, 1) < 0.5 for r in rows.values())
    assert f"“{hardest}”, where the median row scores {medians[hardest]:.3f}; {below} of the {len(rows)}" in lines[1]
    red = sum(v < 0.85 for r in rows.values() for v in r.values())
    assert lines[2].startswith(f"{red} of the table's {sum(len(r) for r in rows.values())} AUROCs are red")


def score_shown(at) -> tuple[str, str]:
    """The score and the percentile the page prints for your image."""
    line = next(m.value for m in at.markdown if m.value.startswith("Score −E"))
    return re.search(r"Score −E = \*\*(-?[\d.e+-]+)\*\*.*\*\*([\d.]+)%\*\*", line).groups()


def test_anomaly_your_digit_ends_with_its_score_and_what_the_edit_did():
    at = open_page(ANOMALY)
    at.segmented_control(key="anomaly_view").set_value("Your digit").run()
    before = float(score_shown(at)[0])
    assert notice_lines(at)[1].startswith("No edits yet")
    at.slider(key="anomaly_rotate").set_value(90).run()
    assert not at.exception
    score, share = score_shown(at)
    lines = notice_lines(at)
    assert f"your image scores {score}: more typical than {share}% of the" in lines[0]
    assert lines[1].startswith(f"Rotated 90°: the score went {'up' if float(score) > before else 'down'} from "
                               f"{before:.4g} to {score}")


def _map_file(name: str) -> str:
    from ebmviz.landscape.storage import resolve

    return str(resolve(name))
