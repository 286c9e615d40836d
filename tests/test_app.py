"""AppTest: every page renders without exception, key widgets exist, interactions run."""

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from ebmviz.checkpoints import REPO_CHECKPOINTS

ROOT = REPO_CHECKPOINTS.parent


def open_page(page=None, **state):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def texts(at):
    return " ".join(m.value for m in at.markdown) + " ".join(str(c.value) for c in at.caption)


def current_step(at):
    m = re.search(r"Step (\d+) / (\d+)", texts(at))
    assert m, texts(at)[:500]
    return int(m.group(1)), int(m.group(2))


def test_home_explains_and_lists_models():
    at = open_page()
    body = texts(at)
    assert "energy" in body and "Langevin" in body
    assert len(at.latex) >= 3
    assert at.selectbox(key="ckpt").value == "shortrun-mnist"
    assert at.number_input(key="seed").value == 0
    assert "cpu" in at.selectbox(key="device").options


def test_langevin_page_widgets_and_step():
    at = open_page("views/langevin.py")
    for key in ("langevin_play", "langevin_pause", "langevin_step", "langevin_reset", "langevin_compare"):
        assert at.button(key=key) is not None
    assert at.radio(key="langevin_start").value == "noise"
    assert at.radio(key="langevin_kind").options == ["ULA", "MALA"]
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


def test_play_runs_the_fragment_and_advances():
    at = open_page("views/langevin.py")
    at.button(key="langevin_play").click().run()  # in AppTest the fragment runs once per run()
    assert not at.exception
    assert current_step(at)[0] > 0


def test_mala_from_data_shows_acceptance():
    at = open_page("views/langevin.py")
    at.radio(key="langevin_start").set_value("data+noise").run()
    at.radio(key="langevin_kind").set_value("MALA").run()
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
    at = open_page("views/langevin.py")
    at.number_input(key="langevin_n_steps").set_value(16).run()
    at.button(key="langevin_compare").click().run()
    assert not at.exception
    captions = " ".join(c for im in at.image for c in im.captions)
    assert "16 steps" in captions and "160 steps" in captions and "saturated" in captions


@pytest.fixture
def broken_dir(tmp_path, monkeypatch):
    (tmp_path / "truncated.safetensors").write_bytes(
        (REPO_CHECKPOINTS / "shortrun-mnist.safetensors").read_bytes()[:5000])
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", str(tmp_path))
    return tmp_path


def test_truncated_checkpoint_is_a_message_not_a_traceback(broken_dir):
    at = open_page("views/langevin.py")
    assert not at.exception
    messages = " ".join(w.value for w in at.warning) + " ".join(e.value for e in at.error)
    assert "truncated.safetensors" in messages and "truncated" in messages
    assert "No usable checkpoint" in messages or "No checkpoint" in messages
