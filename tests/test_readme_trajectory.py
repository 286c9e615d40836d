"""The README's "Chains from any sampler" section, run: its PyTorch loop writes ``chains.npz`` in an empty folder, and
the file opens with the shapes, steps and energies the section states; its table and caps are the loader's."""

import re
from pathlib import Path

import numpy as np
import torch

import ebmviz
from ebmviz.sampling import trajectory_file

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^## Chains from any sampler\n(.*?)(?=^## )", readme, re.S | re.M)
    assert found, 'README has no "## Chains from any sampler" section before the next "## " heading'
    return found.group(1)


def test_the_pytorch_example_writes_a_file_that_opens(tmp_path, monkeypatch):
    blocks = re.findall(r"^```python\n(.*?)^```", _section(), re.S | re.M)
    assert len(blocks) == 1, "one python example in the section"
    code = blocks[0]
    before, _, after = code.partition("import ebmviz")
    assert after and "ebmviz" not in before  # the sampler itself is plain PyTorch
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's setting (2 shared cores), not the example's code
    scope: dict = {}
    try:
        exec(compile(code, "README.md (Chains from any sampler)", "exec"), scope)  # the project's own documentation
    finally:
        torch.set_num_threads(threads)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chains.npz"]

    loaded = ebmviz.load_trajectory(tmp_path / "chains.npz")
    traj = loaded.trajectory
    assert traj.frames.shape == (21, 16, 1, 28, 28) and traj.frames.dtype == np.uint8 and loaded.n_steps == 200
    assert traj.frame_steps.tolist() == list(range(0, 201, 10))
    assert traj.energy.shape == (201, 16) and traj.grad_norm.shape == traj.step_norm.shape == (200, 16)
    assert traj.accept is None and (traj.diverged_at == -1).all() and not loaded.energy_padded
    assert loaded.source_range == (0.0, 1.0)
    assert np.array_equal(traj.frames, scope["loaded"].trajectory.frames)
    # the last frame is the loop's x in [0, 1], as uint8 pixels: round(255·x)
    last = np.round(scope["x"].numpy() * 255).astype(int)
    assert np.abs(traj.frames[-1].astype(int) - last).max() <= 1
    # Langevin at T = 1 on a Gaussian holds E near D/2 (each of the D = 784 pixels ½ on average), the clamp a bit less
    settled = np.median(traj.energy[-50:])
    assert 0.8 * 392 < settled < 1.02 * 392 and np.median(traj.energy[0]) > 5 * settled
    ring = scope["ring"].numpy().astype(bool)
    pixels = traj.frames[-1, :, 0] / 255.0
    assert pixels[:, ring].mean() > 0.75 and pixels[:, ~ring].mean() < 0.25  # the rings have formed


def test_the_table_and_the_caps_are_the_loaders():
    section = _section()
    table = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")]
    named = [re.match(r"`(\w+)`", cell).group(1) for cell in table]
    assert named == ["frames", "range", "frame_steps", "energy", "grad_norm", "step_norm", "accept"]
    assert set(named) <= set(trajectory_file.READ)
    assert f"more than {trajectory_file.MAX_FILE_BYTES >> 20} MB" in section
    assert f"64 M ({trajectory_file.MAX_VALUES:,}) values" in section
    assert f"{100 * trajectory_file.RANGE_TOLERANCE:g}% of hi − lo" in section
    assert f"{trajectory_file.MIN_SIDE}–{trajectory_file.MAX_SIDE} pixels a side" in section
