"""AppTest: the Langevin page on the user's own models (tests/fixtures), an added checkpoint folder, and broken user
models that leave the shipped ones working."""

import json
import re
import shutil

from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.user_model import UserSpec
from tests.test_app import compare_short_long, current_step, open_page, texts
from tests.user_models import ENERGY_FILE, FIXTURES, GRAY, RGB, serve

PAGE = "views/langevin.py"


def play_until(at, done, runs: int = 60) -> None:
    """Press Play and rerun (one fragment run each in AppTest) until ``done()``, at most ``runs`` times."""
    at.button(key="langevin_play").click().run()
    for _ in range(runs):
        if done():
            return
        at.run()


def finished(at) -> bool:
    """The run is over and the page drawn paused (the status line says so): a frame of the last step drawn while
    playing comes before the rerun that draws the finished page, and the pause-only parts."""
    return "· finished ·" in texts(at)


def open_energy(tmp_path, monkeypatch, name: str, forward: list[str]):
    """The Langevin page on a 1×12×12 user energy whose ``forward(self, x)`` is the lines ``forward``."""
    code = tmp_path / f"{name.replace('-', '_')}.py"
    code.write_text("import torch\nclass Energy(torch.nn.Module):\n    image_shape = (1, 12, 12)\n"
                    "    def forward(self, x):\n" + "".join(f"        {line}\n" for line in forward)
                    + "def build():\n    return Energy()\n")
    serve(monkeypatch, UserSpec(f"{code}:build", name=name))
    return open_page(PAGE, {"model": name})


def test_langevin_page_plays_the_rgb_user_model_with_traces_and_diagnostics(monkeypatch):
    serve(monkeypatch, RGB)
    at = open_page(PAGE, {"model": "rgb-digits"})  # a link names the user model by its --name
    assert at.selectbox(key="langevin_ckpt").value == "rgb-digits"
    assert "32×32 RGB images" in texts(at)
    at.number_input(key="langevin_n_steps").set_value(24).run()
    at.button(key="langevin_step").click().run()
    assert not at.exception and current_step(at)[0] > 0
    grid = at.image[0]
    assert "evaluator reads 28×28 grey digits only" in grid.captions[0]
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(tr.get("name") == "median chain" for f in figs for tr in f["data"])
    # saturation and diversity per frame on 3×32×32 chains, the dashed share read from the model's own images
    names = {tr.get("name") for tr in figs[0]["data"]}
    assert {"mean distance", "near-duplicate chains", "its data's share"} <= names, names
    assert "compare a model's share with its data's (dashed: " in texts(at) and "of its own images' pixels" in texts(at)
    play_until(at, lambda: finished(at))  # plays to the end (24 steps) in AppTest's runs
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ESS of the energy"] != "—" and metrics["R-hat of the energy"] != "—"
    # the map lays the chains over a PCA of the model's own 400 images, coloured by their digit labels
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = {tr.get("name") for f in figs for tr in f["data"]}
    assert {f"digit {d}" for d in range(10)} <= names
    assert "PCA of 400 of its images (colour_digits.npz (400 images))" in texts(at)


def test_rgb_chains_start_from_the_users_images_and_under_mala(monkeypatch):
    serve(monkeypatch, RGB)
    at = open_page(PAGE, {"model": "rgb-digits"})
    at.radio(key="langevin_start").set_value("data").run()
    at.radio(key="langevin_method").set_value("MALA").run()
    at.button(key="langevin_step").click().run()
    assert not at.exception and current_step(at)[0] > 0
    assert "acceptance so far" in texts(at)


def test_short_vs_long_run_on_the_gray_user_model_has_no_digit_labels_but_the_saturation(monkeypatch):
    serve(monkeypatch, GRAY)
    at = open_page(PAGE, {"model": "gray-digits"})
    # a 1×28×28 user model is read by the digit evaluator like any shipped one
    captions = compare_short_long(at, 8)
    assert "8 steps" in captions and "80 steps" in captions and "saturated" in captions
    assert len(re.findall(r"digits (?:\d ){7}\d", captions)) == 2  # the evaluator's digit for each of 8 chains


def test_a_broken_user_model_is_a_message_and_the_shipped_models_keep_working(monkeypatch):
    serve(monkeypatch, RGB, UserSpec(f"{ENERGY_FILE}:nope", name="typo"),
          UserSpec(f"{FIXTURES}/missing.py:build", name="gone"),
          UserSpec(RGB.target, GRAY.weights, name="wrong-weights"),
          UserSpec(RGB.target, RGB.weights, GRAY.data, name="wrong-data"))
    at = open_page(PAGE)
    warnings = " ".join(w.value for w in at.warning)
    assert "Skipped your model typo" in warnings and "has no 'nope'" in warnings
    assert "Skipped your model gone" in warnings and "no such file" in warnings
    assert "Skipped your model wrong-weights" in warnings and "do not match the module" in warnings
    assert "Skipped your model wrong-data" in warnings and "image shape not matching the data" in warnings
    options = at.selectbox(key="langevin_ckpt").options
    assert "typo" not in options and "rgb-digits" in options and "shortrun-mnist" in options
    at.button(key="langevin_step").click().run()
    assert not at.exception and current_step(at)[0] > 0
    assert any("evaluator's digit" in c for im in at.image for c in im.captions)


def test_an_added_checkpoint_folder_adds_to_the_shipped_models(tmp_path, monkeypatch):
    shutil.copy(REPO_CHECKPOINTS / "shortrun-mnist.safetensors", tmp_path / "mine.safetensors")
    shutil.copy(REPO_CHECKPOINTS / "shortrun-mnist.safetensors", tmp_path / "shortrun-mnist.safetensors")
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", str(tmp_path))
    at = open_page(PAGE, {"model": "mine"})
    options = at.selectbox(key="langevin_ckpt").options
    assert {"mine", f"shortrun-mnist@{tmp_path.name}", "shortrun-mnist", "triangle-mnist"} <= set(options)
    assert at.selectbox(key="langevin_ckpt").value == "mine"
    at.button(key="langevin_step").click().run()
    assert not at.exception
    assert any("evaluator's digit" in c for im in at.image for c in im.captions)  # the labels stay


def test_a_user_energy_that_turns_nan_has_its_chains_flagged_not_raised(tmp_path, monkeypatch):
    at = open_energy(tmp_path, monkeypatch, "nan-energy", [
        "e = -x.flatten(1).sum(1)  # pushes every pixel up",
        "return torch.where(x.flatten(1).mean(1) > 0.3, torch.full_like(e, float('nan')), e)"])
    at.number_input(key="langevin_n_steps").set_value(40).run()
    play_until(at, lambda: finished(at))
    assert current_step(at)[0] == 40
    assert not at.exception
    assert "chain(s) stopped at a non-finite value" in texts(at)
    assert any("met a non-finite value and stopped" in w.value for w in at.warning)


def test_the_langevin_page_offers_a_faster_pace_than_its_teaching_one_and_links_it():
    at = open_page(PAGE)
    pace = at.select_slider(key="langevin_pace")
    assert pace.value == 0.12 and list(pace.options)[:2] == ["0.07 s per frame", "0.12 s per frame"]
    at = open_page(PAGE, {"pace": "0.07"})
    assert at.select_slider(key="langevin_pace").value == 0.07


def test_a_user_energy_that_raises_partway_stops_the_run_with_its_error(tmp_path, monkeypatch):
    at = open_energy(tmp_path, monkeypatch, "picky", [
        "if float(x.detach().mean()) > 0.3:",
        "    raise ValueError('this model only takes dark images')",
        "return -0.002 * x.flatten(1).sum(1)  # pushes every pixel up 0.02 a step, to what it refuses"])
    at.number_input(key="langevin_n_steps").set_value(60).run()
    play_until(at, lambda: "stopped by an error" in texts(at))
    assert not at.exception
    assert "stopped by an error" in texts(at)
    (error,) = [e.value for e in at.error]
    assert "The energy raised an error after step" in error and "ValueError: this model only takes dark images" in error
    step = current_step(at)[0]
    assert 0 < step < 60  # it ran until the chains reached the images the model refuses
