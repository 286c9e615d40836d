"""AppTest: every page renders without exception, key widgets exist, interactions run."""

import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ebmviz import checkpoints
from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.images import DRAWING_SIDE
from ebmviz.sampling import LangevinConfig

ROOT = REPO_CHECKPOINTS.parent


def open_page(page=None, params=None, **state):
    """The app through app.py, with link ``params`` and session ``state`` set first, switched to ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64), "shape"?}."""
    if isinstance(v, dict) and "bdata" in v:
        out = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return out.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else out
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def texts(at):
    return " ".join(m.value for m in at.markdown) + " ".join(str(c.value) for c in at.caption)


def notice(at) -> list[str]:
    """The "What to notice" lines of a page, checking that they end it: the subheader, its list of three lines,
    then the link onward (the next stop, or home after the last)."""
    tail = list(at.main.children.values())[-3:]
    assert [getattr(e, "type", "") for e in tail] == ["subheader", "markdown", "page_link"], tail
    assert tail[0].value == "What to notice"
    lines = [ln.removeprefix("- ") for ln in tail[1].value.splitlines()]
    assert len(lines) == 3, lines
    return lines


def current_step(at):
    m = re.search(r"Step (\d+) / (\d+)", texts(at))
    assert m, texts(at)[:500]
    return int(m.group(1)), int(m.group(2))


def compare_short_long(at, steps: int) -> str:
    """Set the Langevin page to ``steps`` steps, press "compare" (a run of ``steps`` beside one of ten times as many)
    and return the pictures' captions."""
    at.number_input(key="langevin_n_steps").set_value(steps).run()
    at.button(key="langevin_compare").click().run()
    assert not at.exception
    return " ".join(c for im in at.image for c in im.captions)


def test_home_explains_and_lists_models():
    at = open_page()
    body = texts(at)
    assert "energy" in body and "Langevin" in body
    assert len(at.latex) >= 3
    assert at.number_input(key="seed").value == 0
    assert "cpu" in at.selectbox(key="device").options
    assert [w.key for w in at.sidebar.selectbox] == ["device"]  # the sidebar: only what every page uses


@pytest.fixture
def broken_dir(tmp_path, monkeypatch):
    (tmp_path / "truncated.safetensors").write_bytes(
        (REPO_CHECKPOINTS / "shortrun-mnist.safetensors").read_bytes()[:5000])
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    return tmp_path


def test_truncated_checkpoint_is_a_message_not_a_traceback(broken_dir):
    at = open_page("views/langevin.py")
    assert not at.exception
    messages = " ".join(w.value for w in at.warning) + " ".join(e.value for e in at.error)
    assert "truncated.safetensors" in messages and "truncated" in messages
    assert "No usable checkpoint" in messages or "No checkpoint" in messages


def cf_status(at):
    m = re.search(r"Stage (\d) · (\d+)×\d+ · ([^*]+)\*\*", texts(at))
    assert m, texts(at)[:800]
    return int(m.group(1)), m.group(3)


def test_coarse_to_fine_cascade_plays_and_scrubs():
    at = open_page("views/coarse_to_fine.py")
    stage, where = cf_status(at)
    assert stage == 0 and where.startswith("step 0 /")
    assert any("Expand" in eq.value for eq in at.latex)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("stage 2: 28×28" in str(f["layout"].get("annotations")) for f in figs)  # per-stage traces
    at.button(key="cf_play").click().run()  # AppTest runs the fragment once: it plays up to player.WINDOW s of frames
    assert not at.exception
    at.button(key="cf_pause").click().run()
    slider = next(s for s in at.slider if s.key.startswith("cf_scrub"))
    assert slider.value > 0  # playback moved along the timeline
    slider.set_value(slider.max).run()
    assert cf_status(at)[0] == 2  # the end of the timeline is the 28×28 stage
    at.button(key="cf_reset").click().run()
    assert cf_status(at)[0] == 0


@pytest.mark.parametrize("view,expect", [
    ("Fade (β)", "new block"), ("Growth", "iteration"), ("Restoration", "MSE")])
def test_coarse_to_fine_views_render(view, expect):
    at = open_page("views/coarse_to_fine.py")
    at.segmented_control(key="cf_view").set_value(view).run()
    assert not at.exception
    body = texts(at) + " ".join(c for im in at.image for c in im.captions)
    assert expect in body, body[:1000]
    if view == "Fade (β)":
        at.slider(key="cf_beta").set_value(0.0).run()
        assert "0% new block" in texts(at)  # at β = 0 only the fade path is left


def test_coarse_to_fine_domain_translation_refines_fashion_into_digits():
    from ebmviz.data import DataError, load_dataset

    try:
        load_dataset("fashion-mnist", "test")
    except DataError:
        pytest.skip("Debian's dataset-fashion-mnist is not installed (the view then asks for an upload)")
    at = open_page("views/coarse_to_fine.py")
    at.segmented_control(key="cf_view").set_value("Domain translation").run()
    assert not at.exception
    body = texts(at)
    shares = [int(m) for m in re.findall(r"(\d+)% confident digits", body)]
    assert len(shares) == 3  # the sources, the cascade's results, the short-run model's
    assert " ".join(c for im in at.image for c in im.captions).count("gradient evaluations") == 1
    at.slider(key="cf_tr_n").set_value(8).run()
    assert not at.exception and len(re.findall(r"digits ((?:\d ?)+)", texts(at))[0].split()) == 8


def test_coarse_to_fine_domain_translation_from_a_drawing():
    at = open_page("views/coarse_to_fine.py")
    at.segmented_control(key="cf_view").set_value("Domain translation").run()
    at.radio(key="cf_tr_source").set_value("a drawing").run()
    assert not at.exception and "gradient evaluations" not in " ".join(c for im in at.image for c in im.captions)
    ink = np.zeros((DRAWING_SIDE, DRAWING_SIDE), np.uint8)
    ink[10:46, 12:44] = 255  # a filled box: nothing like a digit
    at.session_state["cf_tr_pad"] = {"ink": base64.b64encode(ink.tobytes()).decode()}
    at.slider(key="cf_tr_n").set_value(4).run()
    assert not at.exception
    assert len(re.findall(r"(\d+)% confident digits", texts(at))) == 3
    assert " ".join(c for im in at.image for c in im.captions).count("gradient evaluations") == 1


def test_coarse_to_fine_same_budget():
    at = open_page("views/coarse_to_fine.py")
    at.segmented_control(key="cf_view").set_value("Same budget").run()
    assert not at.exception
    assert "gradient evaluations per chain" in texts(at)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = [tr.get("name", "") for f in figs for tr in f["data"]]
    assert any(n.startswith("cascade") for n in names) and any(n.startswith("short-run") for n in names)


def test_triangle_reconstructions_show_mse_and_energy():
    at = open_page("views/triangle.py")
    assert "Mean per-pixel MSE" in texts(at)
    table = at.dataframe[0].value
    assert {"MSE", "E(original)", "E(reconstruction)"} <= set(table.columns) and len(table) == 12
    assert any("reconstruction" in c for im in at.image for c in im.captions)


@pytest.mark.parametrize("view,expect", [
    ("Occlusion", "recovered"), ("Refinement", "Langevin steps"), ("Interpolation", "g((1−t)")])
def test_triangle_views_render(view, expect):
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value(view).run()
    assert not at.exception
    assert expect in " ".join(c for im in at.image for c in im.captions), view


def test_triangle_generator_view_shows_both_priors_from_one_seed():
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Generator").run()
    assert not at.exception
    captions = [c for im in at.image for c in im.captions]
    shares = {}
    for prior in ("N(0, I)", "p_ψ"):
        caption = next(c for c in captions if c.startswith(f"g(z), z ~ {prior}"))
        shares[prior] = int(re.search(r": (\d+)% confident digits", caption).group(1))
    assert shares["p_ψ"] > shares["N(0, I)"]  # 32 samples each; 1,000 give 0.75 against 0.29
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    groups = {t["name"].split(" (median")[0]: arr(t["x"]) for t in fig["data"]}
    assert {k: len(v) for k, v in groups.items()} == {
        "held-out digits' codes z̃ ~ q_φ(z|x)": 1000, "N(0, I) draws": 1000, "p_ψ draws": 1000}
    assert np.median(groups["N(0, I) draws"]) < np.median(groups["p_ψ draws"])  # N(0, I) lands where codes are rare
    rare = [int(v) for v in re.findall(r"(\d+)% of the", " ".join(c.value for c in at.caption))[:1]]
    assert rare and rare[0] > 10
    k = checkpoints.load("triangle-mnist").config.prior_components
    assert any(c.startswith("g(m_k)") for c in captions)
    assert f"Chosen: K = {k}" in " ".join(c.value for c in at.caption)


def test_triangle_pages_work_on_a_checkpoint_without_a_learned_prior(tmp_path, monkeypatch):
    from dataclasses import replace

    shipped = checkpoints.load("triangle-mnist")
    plain = type(shipped)(replace(shipped.config, prior_components=0), {})
    plain.load_state_dict({k: v for k, v in shipped.state_dict().items() if not k.startswith("prior.")})
    meta = {k: v for k, v in shipped.meta.items() if k not in ("arch", "prior")}
    checkpoints.save(plain, tmp_path / "triangle-plain.safetensors", meta)
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Generator").run()
    assert not at.exception and "fit-prior" in " ".join(i.value for i in at.info)
    at.segmented_control(key="tri_view").set_value("Refinement").run()
    assert not at.exception
    assert any("z from N(0, I)" in c for im in at.image for c in im.captions)
    assert any("tfrac12" in x.value for x in at.latex)


def test_triangle_occlusion_table_and_diagram():
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Occlusion").run()
    at.selectbox(key="tri_occ").set_value("B13").run()
    assert at.slider(key="tri_size").value == 13
    at.toggle(key="tri_table").set_value(True).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["occlusion"]) == ["P.5", "P.7", "MB10", "B9", "B13"]
    at.segmented_control(key="tri_view").set_value("The triangle").run()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    text = str(fig["layout"]["annotations"])
    assert "KL(Q‖P)" in text and "KL(P‖Π)" in text and "KL(Q‖Π)" in text


def test_triangle_refinement_starts_from_the_shipped_sampler_and_takes_other_settings():
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Refinement").run()
    shipped = LangevinConfig.from_dict(checkpoints.load("triangle-mnist").meta["sampler"])
    assert at.slider(key="tri_k").value == shipped.n_steps and at.number_input(key="tri_s").value == shipped.step_size
    at.number_input(key="tri_s").set_value(10.0).run()
    at.slider(key="tri_k").set_value(60).run()
    assert not at.exception
    assert any("after 60 Langevin steps" in c for im in at.image for c in im.captions)


def test_triangle_latent_refinement_lowers_the_energy_from_the_generators_samples():
    at = open_page("views/triangle.py")
    at.segmented_control(key="tri_view").set_value("Refinement").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["when"]) == ["start", "after 50 steps"]
    energy = table["median E(G(z))"].astype(float)
    assert energy.iloc[1] < energy.iloc[0]
    at.slider(key="tri_lat_k").set_value(0).run()
    assert not at.exception and at.dataframe[0].value["median E(G(z))"].iloc[0] == table["median E(G(z))"].iloc[0]


def test_coarse_to_fine_step_moves_one_frame_and_play_at_the_end_replays():
    at = open_page("views/coarse_to_fine.py")
    at.button(key="cf_step").click().run()
    stage, where = cf_status(at)
    assert stage == 0 and where.startswith("step 1 /")  # the same Player as the Langevin page
    slider = next(s for s in at.slider if s.key.startswith("cf_scrub"))
    slider.set_value(slider.max).run()
    at.button(key="cf_play").click().run()  # a finished timeline plays again from its start
    assert not at.exception
    at.button(key="cf_pause").click().run()
    slider = next(s for s in at.slider if s.key.startswith("cf_scrub"))
    assert 0 < slider.value < slider.max


def test_ebgan_samples_are_labelled_and_replayed_over_training():
    at = open_page("views/ebgan.py")
    assert "EBGAN-PT" in texts(at) and "margin m" in texts(at)
    assert "evaluator's digit" in at.image[0].captions[0]
    its = at.select_slider(key="ebgan_snap").options
    assert len(its) > 2
    at.select_slider(key="ebgan_snap").set_value(its[0]).run()
    assert not at.exception and f"iteration {int(its[0]):,} of" in at.image[1].captions[0]


def test_ebgan_energy_histogram_draws_the_margin():
    at = open_page("views/ebgan.py")
    at.segmented_control(key="ebgan_view").set_value("What D learned").run()
    assert not at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["type"] for t in fig["data"]] == ["histogram"] * 4
    assert "margin m = " in str(fig["layout"]["annotations"])
    assert "uniform noise" in texts(at)


def test_ebgan_with_and_without_pt_side_by_side():
    at = open_page("views/ebgan.py")
    at.segmented_control(key="ebgan_view").set_value("With vs without PT").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and table["generator"].str.contains("with PT").any()
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [b["name"] for b in bars] == ["with PT", "without PT"] and all(sum(b["y"]) > 900 for b in bars)


def test_ebgan_langevin_on_the_energy_from_generator_and_noise():
    at = open_page("views/ebgan.py")
    at.segmented_control(key="ebgan_view").set_value("Langevin on D").run()
    at.number_input(key="ebgan_lv_n_steps").set_value(20).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["start"]) == ["generator samples"] * 2 + ["uniform noise"] * 2
    assert any("after 20 steps" in c for im in at.image for c in im.captions)


def test_ebgan_latent_langevin_lowers_d_through_the_generator_from_the_generators_samples():
    at = open_page("views/ebgan.py")
    at.segmented_control(key="ebgan_view").set_value("Langevin on D").run()
    at.number_input(key="ebgan_lv_n_steps").set_value(5).run()  # the pixel-space runs, kept short
    at.slider(key="ebgan_lat_k").set_value(30).run()
    assert not at.exception
    latent = at.dataframe[1].value
    assert list(latent["when"]) == ["start", "after 30 steps"]
    d = latent["median D(G(z))"].astype(float)
    assert d.iloc[1] < d.iloc[0]  # at the page's T = 0.003 the latent chains descend D
    assert any("after 30 latent steps" in c for im in at.image for c in im.captions)
    at.slider(key="ebgan_lat_k").set_value(0).run()
    assert not at.exception and any("after 0 latent steps" in c for im in at.image for c in im.captions)
    assert at.dataframe[1].value["median D(G(z))"].iloc[0] == latent["median D(G(z))"].iloc[0]  # the same G(z₀)


def test_ebgan_sampler_form_keeps_the_shipped_defaults_after_leaving_the_view():
    at = open_page("views/ebgan.py")
    shipped = checkpoints.load("ebgan-mnist").meta["sampler"]
    for view in ("Langevin on D", "Samples", "Langevin on D"):  # Streamlit drops the form's state in between
        at.segmented_control(key="ebgan_view").set_value(view).run()
        assert not at.exception
    assert at.number_input(key="ebgan_lv_n_steps").value == shipped["n_steps"]
    assert at.number_input(key="ebgan_lv_step_size").value == shipped["step_size"]


def st_status(at):
    m = re.search(r"\*\*(Semantic|Texture) stage\*\* · (latent|pixel) step (\d+) / (\d+)", texts(at))
    assert m, texts(at)[:800]
    return m.group(1), int(m.group(3)), int(m.group(4))


def test_semantic_texture_plays_both_stages_side_by_side():
    at = open_page("views/semantic_texture.py")
    shipped = checkpoints.load("denoising-mnist").meta["two_stage"]
    assert st_status(at) == ("Semantic", 0, shipped["k_steps"])
    eqs = " ".join(eq.value for eq in at.latex)
    assert "U_c(x,\\sigma)" in eqs and "(15)" in eqs and "(16)" in eqs and f"t<{shipped['k_steps']}" in eqs
    assert "left: two-stage" in " ".join(c for im in at.image for c in im.captions)
    at.button(key="st_play").click().run()  # AppTest runs the fragment once: up to player.WINDOW s of frames
    assert not at.exception
    at.button(key="st_pause").click().run()
    slider = next(s for s in at.slider if s.key.startswith("st_scrub"))
    assert slider.value > 0
    slider.set_value(slider.max).run()
    assert st_status(at) == ("Texture", shipped["t_steps"], shipped["t_steps"])
    rows = at.dataframe[0].value
    assert len(rows) == 3 and all(v.endswith("%") for v in rows["confident digits (> 90%)"])
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = [tr.get("name", "") for f in figs for tr in f["data"]]
    assert "U_s, two-stage" in names and "U_c, texture only (from noise)" in names


@pytest.mark.parametrize("field,value,message", [
    ("sigma", 3.0, "outside the trained noise ladder"), ("k", 0, "K must be at least 1"),
    ("eps2", 50.0, "overshoots"), ("eta1", 1e4, "η₁ must be in")])
def test_semantic_texture_bad_settings_are_a_message(field, value, message):
    at = open_page("views/semantic_texture.py")
    at.number_input(key=f"st_denoising-mnist_{field}").set_value(value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    at.segmented_control(key="st_view").set_value("Latent space").run()  # the other views keep working
    assert not at.exception and at.get("plotly_chart")


@pytest.mark.parametrize("view,expect", [
    ("Denoising", "r(x̃"), ("Latent space", "principal axes"), ("Out of distribution", "AUROC"),
    ("Training", "eq. 13")])
def test_semantic_texture_views_render(view, expect):
    at = open_page("views/semantic_texture.py")
    at.segmented_control(key="st_view").set_value(view).run()
    assert not at.exception
    body = texts(at) + " ".join(c for im in at.image for c in im.captions)
    assert expect in body, body[:1000]
    if view == "Out of distribution":
        table = at.dataframe[0].value
        groups = list(table["out-of-distribution group"])
        assert "uniform noise" in groups and "digit interpolations" in groups
        assert all(0 <= float(a) <= 1 for a in table.iloc[:, 1])
    if view == "Denoising":
        at.multiselect(key="st_dn_sigmas").set_value([]).run()
        assert not at.exception and "Pick at least one" in " ".join(i.value for i in at.info)
