"""AppTest: the sampler lab (both samplers step, the diagnostics fill in, every sampler and energy runs, bad settings
are messages) and links (a URL's settings reproduce the same frames; bad values are named and replaced)."""

import json

import numpy as np
import pytest

from ebmviz.analysis.sampler_lab import KINDS
from ebmviz.sampling.toy2d import LAB_ENERGIES
from tests.test_app import open_page, texts

LAB = "views/sampler_lab.py"


def open_with_link(page: str, params: dict[str, str]):
    """A fresh session opened on ``page`` with ``params`` in its URL, as a copied link would."""
    at = open_page()
    at.switch_page(page)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def lab_frames(at) -> list[np.ndarray]:
    """(step + 1, B, 2) states recorded so far by samplers A and B."""
    return [np.stack(run.frames) for run in at.session_state["lab_runs"]]


def step(at, times: int = 1):
    for _ in range(times):
        at.button(key="lab_step").click().run()
        assert not at.exception, at.exception
    return at


def test_lab_opens_on_a_first_frame_and_steps_ula_beside_mala():
    at = open_page(LAB)
    assert at.selectbox(key="lab_energy").value == "mix8"
    assert at.selectbox(key="lab_a_kind").value == "ULA" and at.selectbox(key="lab_b_kind").value == "MALA"
    assert "Step 0 / 300" in texts(at) and len(at.image) == 1  # the starts over the density, before a click
    assert any("T=" in eq.value.replace(" ", "") for eq in at.latex)
    step(at, 5)
    assert "Step 20 / 300" in texts(at) and "accepted" in texts(at)
    table = at.dataframe[0].value
    assert list(table["sampler"]) == ["A: ULA", "B: MALA"]
    assert table["acceptance"][0] == "—" and 0.3 < float(table["acceptance"][1]) < 1.0
    assert float(table["binned KL"][0]) > 0 and float(table["R-hat (max)"][1]) > 1.0
    a, b = lab_frames(at)
    assert a.shape == b.shape == (21, 500, 2)
    np.testing.assert_array_equal(a[0], b[0])  # the same start for both


@pytest.mark.parametrize("kind", KINDS)
def test_every_sampler_runs_in_the_lab(kind):
    at = open_page(LAB)
    at.selectbox(key="lab_b_kind").set_value(kind).run()
    step(at, 3)
    body = texts(at)
    assert "Step 12 / 300" in body
    if kind == "HMC":
        assert at.number_input(key="lab_b_leapfrog").value == 3 and "accepted" in body
        assert at.session_state["lab_runs"][1].paths  # the leapfrog paths drawn in the frame
    if kind == "Annealed":
        assert "T = " in body and at.number_input(key="lab_b_t_start").value == 10.0


@pytest.mark.parametrize("energy", [*sorted(LAB_ENERGIES), "custom"])
def test_every_energy_runs_and_takes_its_own_step_size(energy):
    at = open_page(LAB)
    at.selectbox(key="lab_energy").set_value(energy).run()
    assert not at.exception, at.exception
    if energy in LAB_ENERGIES:
        assert at.number_input(key="lab_a_step").value == pytest.approx(LAB_ENERGIES[energy].step)
    step(at, 2)
    assert "Step 8 / 300" in texts(at)


def test_too_much_work_is_a_message_and_nothing_runs():
    at = open_page(LAB)
    at.number_input(key="lab_n").set_value(2000).run()
    at.number_input(key="lab_steps").set_value(3000).run()
    assert not at.exception
    assert any("cap" in e.value for e in at.error)
    at.number_input(key="lab_steps").set_value(300).run()
    assert not at.error and "Step 0 / 300" in texts(at)


def test_a_link_reproduces_the_lab_view_and_its_frames():
    at = open_page(LAB)
    at.selectbox(key="lab_b_kind").set_value("HMC").run()
    at.number_input(key="lab_a_step").set_value(0.2).run()
    at.number_input(key="seed").set_value(11).run()
    step(at, 4)
    params = dict(at.query_params)
    assert params["b_sampler"] == "HMC" and params["a_step"] == "0.2" and params["seed"] == "11"
    assert params["frame"] == "4"
    again = open_with_link(LAB, params)
    assert again.selectbox(key="lab_b_kind").value == "HMC" and again.number_input(key="seed").value == 11
    assert "Step 16 / 300" in texts(again)
    for x, y in zip(lab_frames(at), lab_frames(again), strict=True):
        np.testing.assert_array_equal(x[:17], y[:17])


def test_a_link_with_a_custom_mixture_and_bad_values():
    at = open_with_link(LAB, {"energy": "custom", "mix": "0,0,0.5,1;3,1,0.4,2", "a_sampler": "Gibbs",
                              "particles": "1e9", "b_step": "nan"})
    assert at.selectbox(key="lab_energy").value == "custom"
    assert "2 component(s)" in texts(at)
    warned = " ".join(w.value for w in at.warning)
    for name in ("a_sampler", "particles", "b_step"):
        assert f"The link's {name}=" in warned
    assert at.selectbox(key="lab_a_kind").value == "ULA" and at.number_input(key="lab_n").value == 500
    bad = open_with_link(LAB, {"energy": "custom", "mix": "0,0,-1,1"})
    assert "The link's mix=" in " ".join(w.value for w in bad.warning)
    # a value is echoed as inline code: Markdown makes no image or link of it
    hostile = open_with_link(LAB, {"energy": "![x](https://evil.example/p.png)", "start": "a`b"})
    warned = [w.value for w in hostile.warning]
    assert "The link's energy=`![x](https://evil.example/p.png)`" in warned[0] and "start=`a'b`" in warned[1]


def test_a_langevin_link_restores_the_model_sampler_and_frame():
    params = {"model": "ebgan-mnist", "sampler": "MALA", "steps": "40", "record": "4", "chains": "6", "seed": "5",
              "frame": "3"}
    at = open_with_link("views/langevin.py", params)
    assert at.selectbox(key="langevin_ckpt").value == "ebgan-mnist"
    assert at.radio(key="langevin_method").value == "MALA" and at.number_input(key="langevin_n_steps").value == 40
    assert "Step 12 / 40" in texts(at)
    assert dict(at.query_params)["model"] == "ebgan-mnist"
    hostile = open_with_link("views/langevin.py", {"model": "../../etc/passwd", "device": "cuda:7"})
    warned = " ".join(w.value for w in hostile.warning)
    assert "The link's model=" in warned and "The link's device=" in warned
    assert hostile.selectbox(key="langevin_ckpt").value == "shortrun-mnist"


def test_langevin_page_shows_chain_diagnostics_and_exports():
    at = open_page("views/langevin.py")
    for _ in range(3):
        at.button(key="langevin_step").click().run()
    labels = [m.label for m in at.metric]
    assert "ESS of the energy" in labels and "R-hat of the energy" in labels
    assert any(e.label == "Export" for e in at.expander)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    acf = [t for f in specs for t in f["data"] if t.get("name") == "energy"]
    assert acf and acf[0]["y"]  # the energy's autocorrelation curve
