"""AppTest of the Energy landscape page: the graph, the threshold and its basins, two minima and the paths between
them, a digit's descent, bad input (threshold, upload, corrupt map), a map made on the page, two maps side by side."""

import json
import re
import shutil

import numpy as np

from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.landscape import load_map
from tests.test_app import arr, open_page, texts

PAGE = "views/landscape.py"
SHIPPED = "ebgan-mnist-latent"


def xtitle(fig) -> str:
    return fig["layout"].get("xaxis", {}).get("title", {}).get("text", "")


def charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def basins_in_header(at) -> int:
    m = re.search(r"(\d+) basins at", " ".join(h.value for h in at.subheader))
    assert m, [h.value for h in at.subheader]
    return int(m.group(1))


def open_landscape(**state):
    at = open_page(PAGE, **state)
    at.selectbox(key="ls_map").set_value(SHIPPED).run()
    assert not at.exception, at.exception
    return at


def test_graph_draws_every_minimum_and_the_threshold_cuts_basins():
    at = open_landscape()
    land = load_map(SHIPPED)
    dg = next(f for f in charts(at) if xtitle(f).startswith("minima"))
    leaves = [int(i) for t in dg["data"] if t.get("customdata") is not None and t.get("name") != "selected"
              for i in arr(t["customdata"])]
    assert sorted(leaves) == list(range(land.n_minima))  # one leaf per minimum, each clickable by its index
    lines = next(t for t in dg["data"] if t["mode"] == "lines")
    merges = land.n_minima - len(land.tree.graph["roots"])
    assert len(arr(lines["x"])) == 5 * merges  # four points and a gap per merge
    assert {m.label: m.value for m in at.metric}["Minima"] == str(land.n_minima)
    default = basins_in_header(at)
    assert 15 <= default <= 25  # the default threshold leaves about 20 basins
    level = float(np.median(land.energy))
    at.slider(key=f"ls_thr_{SHIPPED}").set_value(level).run()
    assert not at.exception and basins_in_header(at) == len(land.basins(level)) == land.basin_counts([level])[0]
    assert "Purity" in texts(at) and len(at.dataframe) >= 1


def test_threshold_outside_the_range_is_a_message():
    at = open_landscape()
    at.number_input(key=f"ls_thr_typed_{SHIPPED}").set_value(1e9).run()
    assert not at.exception
    assert any("outside this map's range" in w.value for w in at.warning)
    assert basins_in_header(at) == 1  # clamped to the highest level: one basin holds every minimum
    at.number_input(key=f"ls_thr_typed_{SHIPPED}").set_value(-1e9).run()
    assert not at.exception and any("outside this map's range" in w.value for w in at.warning)
    assert basins_in_header(at) == 1  # clamped to the lowest minimum: it alone is under water


def test_two_minima_give_three_paths_and_the_band_is_not_higher_than_the_segment():
    at = open_landscape()
    at.number_input(key="ls_a").set_value(3).run()
    at.number_input(key="ls_b").set_value(40).run()
    assert not at.exception
    assert at.session_state["ls_sel_a"] == 3 and at.session_state["ls_sel_b"] == 40
    prof = next(f for f in charts(at) if f["layout"]["xaxis"]["title"]["text"] == "distance along the path")
    names = [t["name"] for t in prof["data"]]
    assert names == ["straight segment", "tree route"]
    at.toggle(key="ls_band").set_value(True).run()
    assert not at.exception
    prof = next(f for f in charts(at) if f["layout"]["xaxis"]["title"]["text"] == "distance along the path")
    top = {t["name"]: np.nanmax(arr(t["y"])) for t in prof["data"]}
    assert set(top) == {"straight segment", "tree route", "elastic band"}
    assert top["elastic band"] <= top["straight segment"] + 1e-6
    assert any("B^{\\mathrm{band}}" in m.value for m in at.latex)


def test_your_digit_descends_to_a_minimum_and_a_bad_upload_is_a_message():
    at = open_landscape()
    at.segmented_control(key="ls_view").set_value("Your digit").run()
    assert not at.exception
    assert re.search(r"It (reaches|stops).*minimum \d+", texts(at)), texts(at)[:400]
    at.radio(key="ls_how").set_value("upload a picture").run()
    assert not at.exception


def test_corrupt_map_file_is_a_message_and_the_page_keeps_working(tmp_path, monkeypatch):
    for f in REPO_CHECKPOINTS.glob("*.safetensors"):
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / "maps").mkdir()
    shutil.copy(REPO_CHECKPOINTS / "maps" / f"{SHIPPED}.safetensors", tmp_path / "maps" / f"{SHIPPED}.safetensors")
    good = (tmp_path / "maps" / f"{SHIPPED}.safetensors").read_bytes()
    (tmp_path / "maps" / "broken.safetensors").write_bytes(good[: len(good) // 3])
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    at = open_page(PAGE)
    at.selectbox(key="ls_map").set_value("broken").run()
    assert not at.exception
    assert any("Cannot open this map" in e.value and "truncated" in e.value for e in at.error)
    at.selectbox(key="ls_map").set_value(SHIPPED).run()
    assert not at.exception and not at.error and basins_in_header(at) >= 1


def test_map_now_makes_a_map_grows_it_and_shows_it(tmp_path, monkeypatch):
    for f in REPO_CHECKPOINTS.glob("*.safetensors"):
        (tmp_path / f.name).symlink_to(f)
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    at = open_page(PAGE)
    assert any("No stored maps yet" in i.value for i in at.info)
    at.segmented_control(key="ls_view").set_value("Map now").run()
    at.selectbox(key="ls_new_ckpt").set_value("triangle-mnist").run()
    at.number_input(key="ls_new_n").set_value(12).run()
    at.number_input(key="ls_new_steps").set_value(60).run()
    at.button(key="ls_go").click().run()
    assert not at.exception, at.exception
    assert any("Stored as" in s.value for s in at.success), [e.value for e in at.error]
    made = list((tmp_path / "maps" / "cache").glob("triangle-mnist-*.safetensors"))
    assert len(made) == 1
    land = load_map(made[0])
    assert len(land.assignment) == 12 and land.meta["made_on"] == "the Energy landscape page"
    at.segmented_control(key="ls_view").set_value("Disconnectivity graph").run()
    assert not at.exception and at.selectbox(key="ls_map").value.endswith("(made here)")
    assert {m.label: m.value for m in at.metric}["Minima"] == str(land.n_minima)


def test_compare_two_maps_side_by_side():
    at = open_page(PAGE)
    at.segmented_control(key="ls_view").set_value("Compare two maps").run()
    assert not at.exception
    dgs = [f for f in charts(at) if xtitle(f).startswith("minima")]
    assert len(dgs) == 2 and len(at.dataframe) == 2


def test_layout_view_colours_digits_and_minima():
    at = open_landscape()
    at.segmented_control(key="ls_view").set_value("UMAP").run()
    assert not at.exception
    fig = next(f for f in charts(at) if xtitle(f) == "UMAP 1")
    land = load_map(SHIPPED)
    assert len(arr(fig["data"][0]["x"])) == len(land.assignment) and len(arr(fig["data"][1]["x"])) == land.n_minima
    at.radio(key="ls_colour").set_value("energy").run()
    assert not at.exception
