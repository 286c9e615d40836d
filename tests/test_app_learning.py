"""AppTest: the learning-dynamics page — both flows on one iteration slider, the collapse read from the shipped
curves, the few-shot sets with their nearest training digits and the GAN contrast, live training, links."""

import json

import numpy as np
import pytest

from ebmviz import checkpoints
from ebmviz.analysis.learning_dynamics import Curves, collapse_onset
from tests.test_app import open_page, texts
from tests.test_app_lab import open_with_link

PAGE = "views/learning_dynamics.py"


def _shipped_onset(name: str) -> int | None:
    return collapse_onset(Curves.from_history(checkpoints.read_meta(checkpoints.resolve(name))["history"]))


def image_captions(at) -> str:
    return " ".join(img.caption for el in at.get("image") for img in el.proto.imgs)


def _vlines(at, key: str) -> list[float]:
    """x of the vertical lines in the chart whose key is ``key``."""
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    return [s["x0"] for s in json.loads(chart.proto.spec)["layout"].get("shapes", [])]


def test_full_set_runs_side_by_side_with_the_collapse_read_from_their_curves():
    at = open_page(PAGE)
    body = texts(at)
    assert "frame_kl-mnist" in body and "frame_jko-mnist" in body
    kl, jko = _shipped_onset("frame_kl-mnist"), _shipped_onset("frame_jko-mnist")
    assert kl is not None and jko is None  # the shipped KL run collapses, the JKO run holds (measured, not assumed)
    assert f"collapsed** from iteration {kl:,}" in body and "stable" in body
    slider = at.slider(key="ld_it_full")
    assert slider.value == slider.max == checkpoints.read_meta(checkpoints.resolve("frame_kl-mnist"))["iterations"]
    assert kl in _vlines(at, "ld_it_full_gap")  # the collapse marked on the curve
    at.slider(key="ld_it_full").set_value(200).run()
    assert not at.exception
    body = texts(at)
    assert f"({kl - 200:,} ahead)" in body  # before the collapse the page says how far ahead it is
    row = Curves.from_history(checkpoints.read_meta(checkpoints.resolve("frame_kl-mnist"))["history"]).row_at(200)
    assert f"Gap at iteration 200: **{row['gap']:.3g}**" in body
    assert 200 in _vlines(at, "ld_it_full_gap")  # the current iteration marked


def test_few_shot_sets_show_training_digits_nearest_neighbours_and_the_gan():
    at = open_page(PAGE)
    at.segmented_control(key="ld_view").set_value("Few-shot").run()
    assert not at.exception
    assert at.segmented_control(key="ld_shots").options == ["5 digits", "20 digits"]
    body = texts(at)
    assert "The 5 training digits" in image_captions(at)
    assert "A GAN on the same 5 digits" in [h.value for h in at.subheader]
    assert "ebgan5-mnist" in body and at.select_slider(key="ld_gan_it") is not None
    assert body.count("Median squared distance to the nearest training digit") == 2
    at.segmented_control(key="ld_shots").set_value(20).run()
    assert not at.exception
    body = texts(at)
    assert "The 20 training digits" in image_captions(at) and "frame_jko20-mnist" in body
    assert "A GAN on the same 5 digits" not in [h.value for h in at.subheader]


def test_train_live_steps_resets_and_restarts_on_new_settings():
    at = open_page(PAGE)
    at.segmented_control(key="ld_view").set_value("Train live").run()
    assert "0 iterations logged" in texts(at)
    at.button(key="ld_step").click().run()
    assert not at.exception
    run = at.session_state["ld_run"]
    assert run.learner.iteration == 5 and len(run.rows) == 5 and run.frame_its == [0, 5]
    assert "5 iterations logged" in texts(at)
    assert np.isfinite([r.gap for r in run.rows]).all()
    at.button(key="ld_reset").click().run()
    assert at.session_state["ld_run"].learner.iteration == 0 and "0 iterations logged" in texts(at)
    at.select_slider(key="ld_live_lr").set_value(1e-3).run()
    assert at.session_state["ld_run"].learner.optimizer.param_groups[0]["lr"] == 1e-3  # the chosen γ trains
    at.button(key="ld_step").click().run()
    at.radio(key="ld_live_flow").set_value("jko").run()  # new settings: a fresh model
    assert not at.exception
    run = at.session_state["ld_run"]
    assert run.spec.flow == "jko" and run.learner.iteration == 0 and run.spec.penalty == pytest.approx(0.01)


def test_a_link_opens_the_few_shot_view_at_an_iteration_and_bad_values_are_named():
    at = open_with_link(PAGE, {"view": "Few-shot", "digits": "20", "few_iteration": "300"})
    assert at.segmented_control(key="ld_view").value == "Few-shot"
    assert at.slider(key="ld_it_few").value == 300 and "The 20 training digits" in image_captions(at)
    at = open_with_link(PAGE, {"view": "Few-shot", "digits": "7"})
    assert not at.exception
    assert any("digits" in w.value for w in at.warning)  # the bad value is named, the page still opens


def test_a_live_run_survives_a_visit_to_another_view():
    at = open_page(PAGE)
    at.segmented_control(key="ld_view").set_value("Train live").run()
    at.radio(key="ld_live_flow").set_value("jko").run()
    at.select_slider(key="ld_live_lam").set_value(0.1).run()
    at.button(key="ld_step").click().run()
    run = at.session_state["ld_run"]
    at.segmented_control(key="ld_view").set_value("Full set").run()
    at.segmented_control(key="ld_view").set_value("Train live").run()
    assert not at.exception
    assert at.session_state["ld_run"] is run and run.learner.iteration == 5 and run.spec.penalty == 0.1
    assert at.radio(key="ld_live_flow").value == "jko" and "5 iterations logged" in texts(at)
