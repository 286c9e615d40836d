"""The teaching issue on the Langevin page, the sampler lab and Home: MALA that moves on digits at the page's
defaults, slow motion, presentation mode, the lesson route and "What to notice" read from the run on screen."""

import re

import numpy as np
import pytest

from ebmviz import checkpoints
from ebmviz.app.navigation import PAGES, ROUTE, next_stop
from ebmviz.app.player import WINDOW
from ebmviz.sampling import LangevinConfig, LiveRun
from ebmviz.sampling.tuning import MALA_START, tune_mala
from tests.test_app import notice, open_page


def texts(at):
    return " ".join(m.value for m in at.markdown) + " ".join(str(c.value) for c in at.caption)




def step_to_end(at, key="langevin"):
    at.button(key=f"{key}_play").click().run()
    for _ in range(40):
        if "finished" in texts(at):
            return at
        at.run()
    raise AssertionError(texts(at)[:400])


@pytest.mark.parametrize("start", ["noise", "data"])
def test_mala_moves_at_the_pages_defaults_from_noise_and_from_digits(start):
    """Picking MALA starts it from MALA_START; acceptance on the page is healthy from noise and from real digits
    (it was 0.00 with the reject-outside-the-box rule), and the update equation shows the accept/reject."""
    at = open_page("views/langevin.py")
    at.radio(key="langevin_start").set_value(start).run()
    at.radio(key="langevin_method").set_value("MALA").run()
    assert (at.number_input(key="langevin_step_size").value, at.number_input(key="langevin_noise_std").value) \
        == MALA_START
    at.number_input(key="langevin_n_steps").set_value(64).run()
    at.button(key="langevin_step").click().run()
    assert not at.exception
    rate = float(re.search(r"acceptance so far (\d\.\d\d)", texts(at)).group(1))
    assert rate > 0.3, rate  # measured here: 0.9 from noise, 0.7 from digits (both 0.00 before)
    assert any(r"\min" in eq.value and "reflect" in eq.value for eq in at.latex)
    assert not any("barely move" in w.value for w in at.warning)
    assert any("reflecting" in c.value for c in at.caption)
    # back to ULA: the checkpoint's own step and noise again
    at.radio(key="langevin_method").set_value("ULA").run()
    shipped = checkpoints.load("shortrun-mnist").meta["sampler"]
    assert at.number_input(key="langevin_step_size").value == shipped["step_size"]


def test_low_mala_acceptance_warns_and_tuning_finds_a_step_that_moves():
    at = open_page("views/langevin.py")
    at.radio(key="langevin_start").set_value("data").run()
    at.radio(key="langevin_method").set_value("MALA").run()
    at.number_input(key="langevin_step_size").set_value(10.0).run()  # the ULA step: far too coarse for MALA
    at.button(key="langevin_step").click().run()
    assert any("barely move" in w.value for w in at.warning), [w.value for w in at.warning]
    at.button(key="langevin_tune").click().run()
    assert not at.exception
    tuned = at.number_input(key="langevin_step_size").value
    assert tuned < 10.0 and "Last tuning" in texts(at)
    at.button(key="langevin_reset").click().run()
    at.button(key="langevin_step").click().run()
    rate = float(re.search(r"acceptance so far (\d\.\d\d)", texts(at)).group(1))
    assert rate >= 0.3, (tuned, rate)


def test_tune_mala_walks_down_until_half_the_moves_are_accepted():
    model = checkpoints.load("shortrun-mnist")
    from ebmviz.data import load_dataset

    digits = load_dataset("mnist", "test")[0][:8]
    base = LangevinConfig(n_steps=64, step_size=10.0, noise_std=0.01, metropolis=True)
    t = tune_mala(model, digits, base, seed=0)
    steps = [s for s, _ in t.tried]
    assert steps == sorted(steps, reverse=True) and t.step_size == steps[-1]
    assert t.acceptance >= 0.5 and all(a < 0.5 for _, a in t.tried[:-1])
    assert t.tried[0][1] < 0.05  # the largest step from real digits: nearly everything rejected


def test_slow_motion_shows_every_step_while_the_run_records_every_eighth():
    """At one step per frame each Play frame is the next step, though the checkpoint records every 8th."""
    at = open_page("views/langevin.py")
    assert at.number_input(key="langevin_record_every").value == 8
    at.select_slider(key="langevin_speed").set_value(1).run()
    at.select_slider(key="langevin_pace").set_value(0.5).run()
    at.button(key="langevin_play").click().run()  # one fragment window: at 0.5 s per frame, WINDOW / 0.5 frames
    seen = [int(m) for m in re.findall(r"Step (\d+) / ", texts(at))]
    shown = int(WINDOW / 0.5) + 1  # the frames one window can show, the first included
    assert shown < 8  # (else a window could reach step 8 either way)
    assert seen and 1 <= seen[-1] <= shown, seen  # one step per frame: a jump of 8 would be the recording's own


def test_live_recording_at_one_step_per_frame_records_each_step():
    from ebmviz.app.player import Live

    model = checkpoints.load("shortrun-mnist")
    run = LiveRun(model, -torch_ones(), LangevinConfig(n_steps=20, record_every=8), seed=0)
    live = Live(run, 1)
    for _ in range(5):
        live.advance()
    assert run.frame_steps == [0, 1, 2, 3, 4, 5]
    Live(run, 8).advance()  # back to the run's own recording: the next multiple of 8
    assert run.frame_steps[-1] == 8


def torch_ones():
    import torch

    return torch.ones(4, 1, 28, 28)


def test_presentation_mode_puts_the_grid_beside_the_trace_in_large_print():
    normal = open_page("views/langevin.py")
    shown = open_page("views/langevin.py", params={"present": "1"})
    assert shown.toggle(key="present").value is True
    grid_n, grid_p = normal.image[0].proto.imgs[0], shown.image[0].proto.imgs[0]
    assert grid_n.caption != grid_p.caption  # the shorter caption of presentation mode
    # the grid's label rows are taller: the captions are drawn at PRESENT_FONT_PX instead of 13 px
    from ebmviz.app.presentation import GRID_FONT_PX, PRESENT_FONT_PX

    assert PRESENT_FONT_PX >= 16 > GRID_FONT_PX
    figs_n = [c.proto.spec for c in normal.get("plotly_chart")]
    figs_p = [c.proto.spec for c in shown.get("plotly_chart")]
    assert "gradient norm" in figs_n[0] and "gradient norm" not in figs_p[0]  # the main trace alone
    assert "diversity: mean distance" in figs_n[0] and "diversity: mean distance" not in figs_p[0]
    assert "Presentation mode folds away" in texts(shown)
    assert not shown.get("plotly_chart")[1:]  # no map, no autocorrelation: folded away
    assert notice(shown)


def test_langevin_notice_reads_the_run_on_screen():
    at = open_page("views/langevin.py")
    at.number_input(key="langevin_n_steps").set_value(24).run()
    step_to_end(at)
    lines = notice(at)
    model = checkpoints.load("shortrun-mnist")
    cfg = LangevinConfig.from_dict({**model.meta["sampler"], "n_steps": 24})
    from ebmviz.app import cache

    x0 = cache.starts("noise", 16, 0, "shortrun-mnist", "cpu")
    run = LiveRun(model, x0, cfg, 0)
    run.advance()
    e = run.trajectory().energy
    assert f"{np.median(e[0]):.3g}" in lines[0] and f"{np.median(e[-1]):.3g}" in lines[0]
    assert "step 24" in lines[0]
    assert f"T = σ²/(2s) = {cfg.temperature:.3g}" in lines[2]
    links = [p for p in at.get("page_link")]
    assert any("Next stop (3 of" in str(p.proto.label) and "Coarse to fine" in str(p.proto.label) for p in links)


def test_home_opens_with_the_route_and_every_stop_links_to_the_next():
    at = open_page()
    labels = [str(p.proto.label) for p in at.get("page_link")]
    route = [lab for lab in labels if re.match(r"\d+\. ", lab)]
    assert [lab.split(" — ")[0] for lab in route] == [f"{i}. {p.title}" for i, p in enumerate(ROUTE, start=1)]
    assert labels.index(route[0]) < labels.index("Langevin chains")  # the route comes before the list of views
    assert any(lab.startswith("Start the lesson: Sampler lab") for lab in labels)
    chain = [PAGES[0].script]
    while (nxt := next_stop(chain[-1])) is not None:
        chain.append(nxt.script)
    assert chain[1:] == [p.script for p in ROUTE] and "views/model_zoo.py" not in chain


def test_sampler_lab_notice_quotes_its_diagnostics_table():
    at = open_page("views/sampler_lab.py")
    at.number_input(key="lab_steps").set_value(40).run()
    at.button(key="lab_play").click().run()
    for _ in range(30):
        if not at.session_state["lab_playing"]:
            break
        at.run()
    table = at.dataframe[0].value
    lines = notice(at)
    kl = [f"{float(v):.3f}" for v in table["binned KL"]]
    assert kl[0] in lines[0] and kl[1] in lines[0]
    assert f"{100 * float(table['acceptance'][1]):.0f}% of its moves" in lines[1]
