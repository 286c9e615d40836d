"""The README's "Watch your own training" section, run: its training loop as written, in an empty folder, writes a
log that the monitor's reader reads back under the documented tags, every 10 steps."""

import re
from pathlib import Path

import numpy as np
import torch

from ebmviz.monitor.events import EventReader
from ebmviz.monitor.runs import list_runs
from ebmviz.training_log import TAGS

ROOT = Path(__file__).resolve().parent.parent


def _example() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^## Watch your own training\n(.*?)(?=^## )", readme, re.S | re.M)
    assert found, 'README has no "## Watch your own training" section before the next "## " heading'
    blocks = re.findall(r"^```python\n(.*?)^```", found.group(1), re.S | re.M)
    assert len(blocks) == 1, "one python example in the section"
    return blocks[0]


def test_the_training_loop_logs_what_the_monitor_reads(tmp_path, monkeypatch):
    code = _example()
    assert len(code.strip().splitlines()) <= 25  # a short loop of the user's own
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's setting (2 shared cores), not the example's code
    try:
        exec(compile(code, "README.md (Watch your own training)", "exec"), {})  # the project's own documentation
    finally:
        torch.set_num_threads(threads)
    (run,) = list_runs(tmp_path / "runs").runs
    assert run.name == "mine"
    reader = EventReader(run.path)
    reader.refresh()
    for role in ("data_mean", "sample_mean", "gap", "loss", "lr", "noise_mean", "saturation"):
        series = reader.scalars[TAGS[role]]
        assert list(series.steps) == list(range(0, 60, 10)), role
        assert np.isfinite(series.values).all(), role
    gap = reader.scalars[TAGS["gap"]].values
    e_pos, e_neg = reader.scalars[TAGS["data_mean"]].values, reader.scalars[TAGS["sample_mean"]].values
    np.testing.assert_allclose(gap, e_neg - e_pos, rtol=1e-5, atol=1e-5)  # float32 values: the gap's own rounding
    (refs,) = [reader.images[t] for t in reader.images if t == TAGS["negatives"]]
    assert [r.step for r in refs] == list(range(0, 60, 10))
    assert reader.notes == []
