"""AppTest of the Debug a sampler page: a small phase map drawn batch by batch, a square's close-up, and its link
that opens the same setting on the Langevin page."""

import json

import numpy as np

from tests.test_app import open_page

SMALL = {"debug_s_n": 3, "debug_sig_n": 3, "debug_chains": 4, "debug_steps": 40}


def draw_small_map(**state):
    at = open_page("views/sampler_debug.py", **state)
    assert any(i.value.startswith("Set the ranges and press **Draw the map**") for i in at.info)
    for k, v in SMALL.items():
        (at.slider if k == "debug_chains" else at.number_input)(key=k).set_value(v)
    at.run()
    at.button(key="debug_draw").click().run()
    assert not at.exception, at.exception
    return at


def squares(at) -> dict[str, int]:
    """name -> number of squares of each trace of the map (the T lines and marks have other modes or symbols)."""
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    out = {}
    for t in fig["data"]:
        symbol = (t.get("marker") or {}).get("symbol")
        if t.get("mode") == "markers" and symbol in ("square", "square-open") and t.get("x") not in ([None], None):
            out[t["name"]] = len(t["x"])
    return out


def test_a_small_map_fills_every_square_and_counts_its_verdicts():
    at = draw_small_map()
    drawn = squares(at)
    assert "not run yet" not in drawn
    assert sum(drawn.values()) == 9  # 3 × 3 squares, each in exactly one trace
    caption = next(c.value for c in at.caption if "The ★ is the model's own setting" in c.value)
    counted = sum(int(n) for n in __import__("re").findall(r"(\d+) (?:diverged|saturated|stalled|mixing|travelling)",
                                                            caption))
    assert counted == 9
    assert "s = 10, σ = 0.005" in caption  # shortrun-mnist's shipped setting, the ★
    how = at.expander[0]
    assert "Red — diverged" in how.markdown[0].value and "Grey — stalled" in how.markdown[0].value


def test_a_squares_close_up_links_to_the_langevin_page_with_its_setting():
    at = draw_small_map()
    at.session_state["debug_selected"] = (2, 0)
    at.run()
    assert not at.exception, at.exception
    header = at.subheader[0].value
    assert header.startswith("Square s = 100, σ = 0.0005")
    link = at.get("page_link")[0].proto
    assert link.label == "Open this setting on the Langevin page"
    params = dict(p.split("=", 1) for p in link.query_string.split("&")) if link.query_string else {}
    assert params["step"] == "100" and params["noise"] == "0.0005" and params["model"] == "shortrun-mnist"
    lv = open_page("views/langevin.py", params=params)
    assert lv.number_input(key="langevin_step_size").value == 100
    assert lv.number_input(key="langevin_noise_std").value == np.float64(0.0005)
    assert lv.slider(key="langevin_n").value == 4 and lv.number_input(key="langevin_n_steps").value == 40


def test_a_user_model_is_mapped_and_coloured_by_diversity(monkeypatch):
    from tests.user_models import RGB, serve

    serve(monkeypatch, RGB)
    at = draw_small_map(debug_ckpt=RGB.name)
    assert sum(squares(at).values()) == 9
    assert at.segmented_control(key="debug_colour").value == "diversity"  # no evaluator for 3×32×32 images
    assert "quality" not in at.segmented_control(key="debug_colour").options
