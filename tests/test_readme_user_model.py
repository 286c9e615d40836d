"""The README's "Your own model" section, run: its notebook example as written, and its first command.

The example names the fixtures by paths relative to the clone (``tests/fixtures/…``), as a reader in the clone types
them; the test runs it from an empty temporary folder with those paths made absolute, so what runs is the README's
code against the installed package, not against files in the working directory.
"""

import argparse
import re
import shlex
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

import ebmviz
from ebmviz import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = '"tests/fixtures/'


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^## Your own model\n(.*?)(?=^## )", readme, re.S | re.M)
    assert found, 'README has no "## Your own model" section before the next "## " heading'
    return found.group(1)


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", _section(), re.S | re.M)


def test_the_notebook_example_runs(tmp_path, monkeypatch):
    blocks = _blocks("python")
    assert len(blocks) == 1, "one python example in the section"
    code = blocks[0]
    assert code.count(FIXTURES) == 3  # the factory, its weights, its data: the only things the test rewrites
    code = code.replace(FIXTURES, f'"{ROOT}/tests/fixtures/')
    monkeypatch.chdir(tmp_path)  # not the repository root: nothing may come from the working directory
    scope: dict = {}
    threads = torch.get_num_threads()
    # One thread: on the 2 shared cores of a test run, two threads waiting on each other made each Langevin step
    # 50× slower (0.36 s against 7.6 ms); the thread count is the test machine's setting, not the example's code.
    torch.set_num_threads(1)
    try:
        exec(compile(code, "README.md (Your own model)", "exec"), scope)  # the project's own documentation
    finally:
        torch.set_num_threads(threads)

    model, traj = scope["model"], scope["traj"]
    assert isinstance(model, ebmviz.Model) and model.image_shape == (3, 32, 32)
    assert model.data is not None and model.data.images.shape == (400, 3, 32, 32)
    cfg = model.draw_config()
    assert traj.energy.shape == (cfg.n_steps + 1, 16) and np.isfinite(traj.energy).all()
    assert (traj.diverged_at == -1).all()
    assert traj.frames.dtype == np.uint8 and traj.frames.shape[1:] == (16, 3, 32, 32)
    assert traj.final.shape == (16, 3, 32, 32) and traj.final.min() >= -1 and traj.final.max() <= 1
    # the trained energy pulls noise down: the chains end lower than they start
    assert np.median(traj.energy[-1]) < np.median(traj.energy[0])

    fig = scope["fig"]
    assert isinstance(fig, go.Figure)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:3] == ["energy E(x)", "gradient norm ‖∇E‖", "update norm ‖Δx‖"]
    drawn = [t for t in fig.data if t.y is not None and len(t.y) > 0]
    assert len(drawn) >= 3 and all(np.isfinite(np.asarray(t.y, dtype=float)).all() for t in drawn)

    ess, rhat = scope["ess"], scope["rhat"]
    assert np.isfinite(ess) and 0 < ess <= scope["second_half"].size
    assert np.isfinite(rhat) and rhat > 1.1 and ess < 100  # what the README's comment says: 256 steps have not mixed
    assert scope["second_half"].shape == (cfg.n_steps + 1 - (cfg.n_steps + 1) // 2, 16)

    picture = scope["picture"]
    assert picture.dtype == np.uint8 and picture.shape == (4 * (2 * 34 + 2), 4 * (8 * 34 + 2), 3)
    assert picture.std() > 0  # colour images, not a blank canvas
    assert list(tmp_path.iterdir()) == []  # the example writes nothing


def test_the_readme_commands_use_real_options_and_files(monkeypatch, capsys):
    """Every option the section's commands use exists, every fixture it names is there, and its first ``ebmviz run``
    line passes ``--check`` from the clone's root."""
    section, commands = _section(), "\n".join(_blocks("bash"))
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    run = sub.choices["run"]
    known = {o for a in run._actions for o in a.option_strings} | set(cli.MODEL_OPTIONS)
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", section))
    assert used - known - {"--out"} == set()  # --out is python -m training's, named for --checkpoints
    for path in set(re.findall(r"tests/fixtures/[\w./]+\w", section)):
        assert (ROOT / path).is_file(), path

    line = next(c for c in commands.replace("\\\n", " ").splitlines() if c.startswith("ebmviz run --model"))
    argv = shlex.split(line.split("#", 1)[0])[1:]
    monkeypatch.chdir(ROOT)
    assert cli.main([*argv, "--check"]) == 0
    out = capsys.readouterr().out
    assert "ebmviz: ✓ rgb-digits: 3×32×32 images" in out and "400 images" in out
