"""AppTest of the Training monitor: a run's curves and negatives, alerts on a diverging run, a foreign log's tags
mapped to roles, an empty or missing runs folder, and a link naming a run that is not in the listing."""

import json
import math

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from ebmviz.training_log import EBMLogger
from tests.test_app import arr, open_page


def healthy(folder, steps=40):
    with EBMLogger(folder) as log:
        for step in range(0, steps * 10, 10):
            log.scalars(step, data_mean=-1 - step / 400, sample_mean=-0.5 - step / 400, gap=0.5, noise_mean=3.0,
                        loss=-0.5, grad_norm=1.0, lr=1e-4)
            if step % 100 == 0:
                log.negatives(step, torch.rand(8, 1, 28, 28) * 2 - 1)


def diverging(folder, steps=60):
    with EBMLogger(folder) as log:
        for k in range(steps):  # energies that double every logged step from step 300 on
            e = 1.0 if k < 30 else 2.0 ** (k - 29)
            log.scalars(10 * k, data_mean=-e, sample_mean=e, gap=2 * e, loss=-2 * e, lr=1e-3)


def monitor(runs, monkeypatch, params=None):
    monkeypatch.setenv("EBMVIZ_RUNS", str(runs))
    return open_page("views/training_monitor.py", params={"live": "0", **(params or {})})


def chart_names(at) -> list[str]:
    return [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]


def test_a_run_shows_its_curves_negatives_and_no_alert(tmp_path, monkeypatch):
    healthy(tmp_path / "runs" / "good")
    at = monitor(tmp_path / "runs", monkeypatch)
    assert any(m.value.startswith("**Last logged step 390**") for m in at.markdown)
    names = chart_names(at)
    assert {"E(x⁺) data", "E(x⁻) samples", "E(noise)", "gap", "loss", "‖∇θ‖", "lr"} <= set(names)
    assert not at.warning
    assert at.select_slider(key="monitor_image_step").options == ["0", "100", "200", "300"]
    histogram = json.loads(at.get("plotly_chart")[1].proto.spec)  # the evaluator's digits among the last negatives
    assert arr(histogram["data"][0]["y"]).sum() == 8


def test_a_diverging_run_raises_an_alert_with_remedies(tmp_path, monkeypatch):
    diverging(tmp_path / "runs" / "bad")
    at = monitor(tmp_path / "runs", monkeypatch)
    (alert,) = [w.value for w in at.warning if w.value.startswith("**Divergence")]
    assert "learning rate" in alert and "\n- " in alert  # the remedies, as a list


def test_a_foreign_log_is_mapped_to_roles_on_the_page(tmp_path, monkeypatch):
    w = SummaryWriter(str(tmp_path / "runs" / "theirs"))
    for step in range(0, 200, 10):
        w.add_scalar("my/e_pos", -math.log1p(step), step)
        w.add_scalar("my/e_neg", math.log1p(step), step)
    w.close()
    at = monitor(tmp_path / "runs", monkeypatch)
    assert any("No scalars under the mapped tags" in i.value for i in at.info)
    assert "2 tag(s) of your own" in at.expander[0].label
    at.selectbox(key="monitor_tag:theirs:data_mean").set_value("my/e_pos").run()
    at.selectbox(key="monitor_tag:theirs:sample_mean").set_value("my/e_neg").run()
    assert not at.exception
    names = chart_names(at)
    assert "E(x⁺) data" in names and "E(x⁻) samples" in names
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    line = next(t for t in spec["data"] if t.get("name") == "E(x⁻) samples")
    np.testing.assert_allclose(arr(line["y"]), np.log1p(np.arange(0, 200, 10)), rtol=1e-6)  # float32 in the log


def test_empty_missing_and_foreign_folders_get_a_message(tmp_path, monkeypatch):
    at = monitor(tmp_path / "nothing-here", monkeypatch)
    assert any("does not exist" in i.value for i in at.info)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("no logs")
    at = monitor(tmp_path / "foreign", monkeypatch)
    assert any("no TensorBoard event files" in i.value for i in at.info)


def test_a_link_to_a_run_outside_the_listing_is_refused(tmp_path, monkeypatch):
    healthy(tmp_path / "runs" / "good", steps=5)
    at = monitor(tmp_path / "runs", monkeypatch, {"run": "../../etc"})
    assert any("was ignored" in w.value for w in at.warning)
    assert at.selectbox(key="monitor_run").value == "good"


def test_a_cut_record_is_noted_on_the_page(tmp_path, monkeypatch):
    healthy(tmp_path / "w", steps=5)
    (src,) = [p for p in (tmp_path / "w").iterdir() if p.name.startswith("events")]
    run = tmp_path / "runs" / "killed"
    run.mkdir(parents=True)
    (run / src.name).write_bytes(src.read_bytes()[:-9])
    later = src.name.replace("tfevents.", "tfevents.9")
    healthy(tmp_path / "w2", steps=3)
    (run / later).write_bytes(next(p for p in (tmp_path / "w2").iterdir()).read_bytes())
    at = monitor(tmp_path / "runs", monkeypatch)
    assert any("cut off" in c.value for c in at.caption)
    assert "loss" in chart_names(at)


def test_ebmviz_run_hands_the_runs_folder_to_the_app(tmp_path, monkeypatch):
    from ebmviz import cli

    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.os, "execve", lambda exe, cmd, env: calls.append(env))
    monkeypatch.setattr(cli.os, "chdir", lambda path: None)  # the server's chdir to the clone, not taken here
    monkeypatch.delenv("EBMVIZ_RUNS", raising=False)
    assert cli.main(["run", "--runs", "mine"]) == 0
    assert calls[-1]["EBMVIZ_RUNS"] == str(tmp_path / "mine")  # made absolute before the server's chdir
    cli.main(["run"])
    assert "EBMVIZ_RUNS" not in calls[-1]  # no runs/ here: the clone's runs/ (the app's default)
    (tmp_path / "runs").mkdir()
    cli.main(["run"])
    assert calls[-1]["EBMVIZ_RUNS"] == str(tmp_path / "runs")  # ./runs where the command was typed


def test_tags_a_live_run_logs_after_the_page_opened_are_mapped(tmp_path, monkeypatch):
    log = EBMLogger(tmp_path / "runs" / "fresh")  # a run that has written its file's header and no step yet
    log.flush()
    at = monitor(tmp_path / "runs", monkeypatch)
    assert any("No scalars under the mapped tags" in i.value for i in at.info)
    for step in (0, 10, 20):
        log.scalars(step, data_mean=-1.0, sample_mean=1.0, gap=2.0, loss=-2.0)
    log.close()
    at.run()
    assert not at.exception
    assert {"E(x⁺) data", "E(x⁻) samples", "gap", "loss"} <= set(chart_names(at))
