"""AppTest: the model-zoo page — every readable checkpoint listed with its stored numbers, one model's provenance,
curves and snapshots, and two models side by side on one seed and budget."""

import pytest

from ebmviz import checkpoints
from ebmviz.analysis import zoo
from tests.test_app import open_page
from tests.test_app_learning import image_captions

PAGE = "views/model_zoo.py"


def test_every_checkpoint_is_listed_with_its_stored_numbers():
    at = open_page(PAGE)
    table = at.dataframe[0].value
    readable = [i.name for i in checkpoints.list_checkpoints() if i.error is None]
    assert list(table.index) == readable
    stored = zoo.read_scores()
    for name, entry in stored.models.items():
        if entry.quality:
            assert table.loc[name, "confident (> 0.9)"] == pytest.approx(entry.quality["confident_share"])
            assert table.loc[name, "class entropy"] == pytest.approx(entry.quality["class_entropy"])
        if entry.parameters:
            assert table.loc[name, "parameters"] == entry.parameters


def test_one_model_shows_its_provenance_curves_and_samples_over_training():
    at = open_page(PAGE)
    at.segmented_control(key="zoo_view").set_value("One model").run()
    at.selectbox(key="zoo_one").set_value("ebgan-mnist").run()
    assert not at.exception
    prov = at.dataframe[0].value[""]
    assert prov["command"] == checkpoints.read_meta(checkpoints.resolve("ebgan-mnist"))["command"]
    assert at.multiselect(key="zoo_curves_ebgan-mnist").value  # some curves are drawn by default
    its = at.select_slider(key="zoo_snap_ebgan-mnist").options
    assert len(its) > 1 and "then" not in prov
    at.selectbox(key="zoo_one").set_value("triangle-mnist").run()  # trained, then its prior fitted
    prov = at.dataframe[0].value[""]
    fit = checkpoints.read_meta(checkpoints.resolve("triangle-mnist"))["prior"]
    assert prov["then"].startswith(fit["command"]) and f"K = {fit['components']}" in prov["then"]


def test_side_by_side_on_one_budget():
    at = open_page(PAGE)
    at.segmented_control(key="zoo_view").set_value("Side by side").run()
    assert not at.exception
    caps = image_captions(at)
    assert "shortrun-mnist: Langevin from noise, 60 steps" in caps and "60 gradient evaluations" in caps
    assert "coarse_to_fine-mnist: its shipped sampler" in caps
    at.number_input(key="zoo_budget").set_value(30).run()
    assert "shortrun-mnist: Langevin from noise, 30 steps" in image_captions(at)
