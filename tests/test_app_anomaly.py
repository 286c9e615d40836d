"""AppTest: the anomaly page — the stored AUROC table, one model's live scores matching the stored numbers, edits
of a held-out digit moving its score, and links."""

import base64

import numpy as np
import pytest

from ebmviz.analysis import zoo
from ebmviz.analysis.anomaly import GOAL_SETS, goal
from ebmviz.app.drawpad import decode_ink
from ebmviz.images import DRAWING_SIDE
from tests.test_app import open_page, texts
from tests.test_app_lab import open_with_link
from tests.tolerances import AUROC_ABS, auroc_mismatches

PAGE = "views/anomaly.py"


def score_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Score −E"))


def test_stored_table_lists_every_scored_energy_and_the_live_scores_match_it():
    at = open_page(PAGE)
    stored = zoo.read_scores()
    (table,) = (d.value for d in at.dataframe)  # the page opens on the stored table
    at.segmented_control(key="anomaly_view").set_value("One model").run()
    assert not at.exception
    (per_set,) = (d.value for d in at.dataframe)  # the picked model's AUROCs
    assert set(GOAL_SETS) - {"Fashion-MNIST"} <= set(table.columns) and {"goal mean", "goal min"} <= set(table.columns)
    assert set(table.index) == ({n for n, e in stored.models.items() if e.auroc}
                                | {f"{n} · {f}" for n, e in stored.models.items() for f in e.further_auroc or {}})
    live = dict(per_set["AUROC"])  # shortrun-mnist, computed at page load
    row = stored.models["shortrun-mnist"].auroc  # stored by python -m training scores, on another machine
    assert not auroc_mismatches(live, row)  # within AUROC_ABS: float noise between CPUs flips near-ties
    off = {k: v + 2 * AUROC_ABS for k, v in row.items()}
    assert len(auroc_mismatches(live, off)) == len(live)  # a stored value off by twice the tolerance fails
    g = goal(dict(live))  # None where Fashion-MNIST is missing (as in CI): then the page says nothing of the goal
    assert (g is not None) == ("Over the goal's six sets" in texts(at))
    if g is not None:
        assert f"mean **{g[0]:.3f}**, lowest **{g[1]:.3f}**" in texts(at)


def test_a_models_further_energy_is_scored_as_stored_and_scores_your_digit():
    stored = zoo.read_scores().models["triangle-mnist"].further_auroc["generator −log p(x)"]
    at = open_page(PAGE)
    at.segmented_control(key="anomaly_view").set_value("One model").run()
    at.selectbox(key="anomaly_ckpt").set_value("triangle-mnist").run()
    own = at.dataframe[0].value["AUROC"]
    at.radio(key="anomaly_energy").set_value("generator −log p(x)").run()
    assert not at.exception
    live = at.dataframe[0].value["AUROC"]
    assert not auroc_mismatches(dict(live), stored)  # the page's live scores vs python -m training scores
    off = {k: v - 2 * AUROC_ABS for k, v in stored.items()}
    assert len(auroc_mismatches(dict(live), off)) == len(live)  # a stored value off by twice the tolerance fails
    assert live["rotated 90°"] != own["rotated 90°"]  # another energy, other scores
    at.segmented_control(key="anomaly_view").set_value("Your digit").run()
    assert not at.exception and "under `triangle-mnist · generator −log p(x)`" in texts(at)
    at.selectbox(key="anomaly_ckpt").set_value("shortrun-mnist").run()  # no further energies: no choice, model(x)
    assert not at.exception and not [r for r in at.radio if r.key == "anomaly_energy"]
    assert "under `shortrun-mnist`" in texts(at)
    assert any("has no energy" in i.value for i in at.info)  # the triangle's choice does not carry over silently
    at.selectbox(key="anomaly_ckpt").set_value("coarse_to_fine-mnist").run()  # its own energy(x, stage, β) method
    assert not at.exception and "under `coarse_to_fine-mnist`" in texts(at)


def test_a_link_to_a_further_energy_opens_it_and_one_the_model_lacks_says_so():
    at = open_with_link(PAGE, {"view": "One model", "model": "triangle-mnist", "energy": "generator −log p(x)"})
    assert at.radio(key="anomaly_energy").value == "generator −log p(x)"
    at = open_with_link(PAGE, {"view": "One model", "model": "shortrun-mnist", "energy": "generator −log p(x)"})
    assert not at.exception and any("`shortrun-mnist` has no energy" in i.value for i in at.info)


def test_editing_a_digit_moves_its_score_and_a_link_picks_model_and_digit():
    at = open_page(PAGE)
    at.segmented_control(key="anomaly_view").set_value("Your digit").run()
    before = score_line(at)
    at.slider(key="anomaly_rotate").set_value(180).run()
    assert not at.exception and score_line(at) != before
    at.checkbox(key="anomaly_erase_on").check().run()
    at.checkbox(key="anomaly_stroke_on").check().run()
    assert not at.exception and "more typical than" in score_line(at)
    linked = open_with_link(PAGE, {"view": "Your digit", "model": "ebgan-mnist", "digit": "7", "rotate": "90"})
    assert linked.selectbox(key="anomaly_ckpt").value == "ebgan-mnist"
    assert linked.number_input(key="anomaly_digit").value == 7 and linked.slider(key="anomaly_rotate").value == 90
    assert "under `ebgan-mnist`" in score_line(linked)
    bad = open_with_link(PAGE, {"view": "Your digit", "model": "../../etc/passwd"})
    assert any("model=" in w.value for w in bad.warning) and bad.selectbox(key="anomaly_ckpt").value == "shortrun-mnist"


def test_a_drawing_is_scored_once_the_pad_sends_ink():
    """The pad's strokes reach Python as its component state; AppTest sets that state as the browser would."""
    at = open_page(PAGE)
    at.segmented_control(key="anomaly_view").set_value("Your digit").run()
    at.radio(key="anomaly_source").set_value("a drawing").run()
    waiting = "Meanwhile the page scores the held-out digit chosen below."
    assert not at.exception and waiting in [c.value for c in at.caption]
    held_out_zero = score_line(at)
    ink = np.zeros((DRAWING_SIDE, DRAWING_SIDE), np.uint8)
    ink[6:50, 25:31] = 255  # a 1
    at.session_state["anomaly_pad"] = {"ink": base64.b64encode(ink.tobytes()).decode()}
    at.run()
    assert not at.exception and score_line(at) != held_out_zero
    assert waiting not in [c.value for c in at.caption]
    at.session_state["anomaly_pad"] = {"ink": base64.b64encode(bytes(DRAWING_SIDE**2)).decode()}  # an empty pad
    at.run()
    assert not at.exception and any("nothing is drawn yet" in i.value for i in at.info)
    assert score_line(at) == held_out_zero


@pytest.mark.parametrize("text", [None, "", 42, "not base64!", base64.b64encode(b"short").decode()])
def test_the_pad_state_that_is_not_a_full_grid_reads_as_nothing(text):
    assert decode_ink(text) is None
