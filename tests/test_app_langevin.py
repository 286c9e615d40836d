"""AppTest of the Langevin page: its widgets, a step, the per-frame rows of the traces, Play, MALA, extreme settings,
the short- vs long-run comparison, and any energy model."""

import json
import re

import numpy as np
import pytest

from ebmviz import checkpoints
from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.sampling import LangevinConfig
from ebmviz.sampling.starts import START_KINDS
from tests.test_app import arr, compare_short_long, current_step, open_page


def test_langevin_page_widgets_and_step():
    at = open_page("views/langevin.py")
    for key in ("langevin_play", "langevin_pause", "langevin_step", "langevin_reset", "langevin_compare"):
        assert at.button(key=key) is not None
    assert at.selectbox(key="langevin_ckpt").value == "shortrun-mnist"
    assert at.radio(key="langevin_start").value == "noise"
    assert at.radio(key="langevin_method").options == ["ULA", "MALA"]
    assert any("T=" in eq.value.replace(" ", "") for eq in at.latex)
    assert current_step(at)[0] == 0
    at.button(key="langevin_step").click().run()
    assert not at.exception
    step, total = current_step(at)
    assert 0 < step < total
    traces = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(tr.get("name") == "median chain" for fig in traces for tr in fig["data"])
    grid_captions = [c for im in at.image for c in im.captions]
    assert any("evaluator's digit" in c for c in grid_captions), grid_captions
    check_frame_rows(traces[0], step)


def check_frame_rows(fig: dict, step: int) -> None:
    """The traces' per-frame rows (pixel range, saturation, diversity) hold the numbers of the page's run, recomputed
    here from the same start, seed and sampler up to ``step``; the dashed line is MNIST's test digits' share."""
    from ebmviz.analysis.chain_health import diversity_trace, pixel_range, saturation_share
    from ebmviz.app import cache
    from ebmviz.data import load_dataset
    from ebmviz.sampling import LiveRun

    titles = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert "pixel range" in titles and "saturated pixels" in titles and "diversity" in titles
    model = checkpoints.load("shortrun-mnist")
    run = LiveRun(model, cache.starts("noise", 16, 0, "shortrun-mnist", "cpu"),
                  LangevinConfig.from_dict(model.meta["sampler"]), 0)
    run.advance(step)
    frames = np.stack(run.frames)
    by_name = {tr.get("name"): tr for tr in fig["data"]}
    distance, duplicates = diversity_trace(frames)
    assert arr(by_name["mean distance"]["y"]) == pytest.approx(distance, abs=1e-9)
    assert arr(by_name["near-duplicate chains"]["y"]).tolist() == duplicates.tolist()
    assert arr(by_name["99th percentile"]["y"]) == pytest.approx(pixel_range(frames).high, abs=1e-9)
    digits = load_dataset("mnist", "test")[0].numpy()
    assert arr(by_name["its data's share"]["y"]) == pytest.approx([saturation_share(digits).mean()] * 2, abs=1e-9)


def test_play_runs_the_fragment_and_advances():
    at = open_page("views/langevin.py")
    at.button(key="langevin_play").click().run()  # in AppTest the fragment runs once per run()
    assert not at.exception
    assert current_step(at)[0] > 0


def test_mala_from_data_shows_acceptance():
    at = open_page("views/langevin.py")
    at.radio(key="langevin_start").set_value("data+noise").run()
    at.radio(key="langevin_method").set_value("MALA").run()
    at.button(key="langevin_step").click().run()
    assert not at.exception
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("acceptance" in str(tr.get("name", "")) for f in figs for tr in f["data"])


def test_extreme_step_size_warns_and_keeps_working():
    at = open_page("views/langevin.py")
    at.number_input(key="langevin_step_size").set_value(1e6).run()
    assert not at.exception
    assert any("s·clip" in w.value for w in at.warning)
    at.checkbox(key="langevin_clip_on").uncheck().run()
    at.checkbox(key="langevin_clamp").uncheck().run()
    at.button(key="langevin_step").click().run()
    assert not at.exception
    assert any("may diverge" in w.value or "non-finite" in w.value for w in at.warning)


def test_comparison_short_vs_long():
    captions = compare_short_long(open_page("views/langevin.py"), 16)
    assert "16 steps" in captions and "160 steps" in captions and "saturated" in captions
    assert len(re.findall(r"digits (?:\d ){7}\d", captions)) == 2  # the evaluator's digit for each of 8 chains


def test_langevin_page_samples_any_energy_model():
    at = open_page("views/langevin.py")
    shipped = {i.name for i in checkpoints.list_checkpoints(REPO_CHECKPOINTS)}
    assert set(at.selectbox(key="langevin_ckpt").options) == shipped - {"evaluator-mnist"}  # every energy
    at.selectbox(key="langevin_ckpt").set_value("triangle-mnist").run()
    assert at.number_input(key="langevin_n_steps").value == checkpoints.load("triangle-mnist").draw_config().n_steps
    options = at.radio(key="langevin_start").options  # the radio shows START_KINDS' labels
    assert START_KINDS["replay"] not in options  # no replay buffer in this model
    assert START_KINDS["generator"] in options  # but a generator to start from
    at.button(key="langevin_step").click().run()
    assert not at.exception and current_step(at)[0] > 0
    at.radio(key="langevin_start").set_value("generator").run()
    at.button(key="langevin_step").click().run()
    assert not at.exception and current_step(at)[0] > 0
