"""Faults in training: a run killed with SIGKILL (mid-run, and mid-write of its state) resumes as if it had never
stopped; a diverging run stops with a message and keeps its last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open

from ebmviz import checkpoints
from training.__main__ import main as training_main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--width", "8", "--hidden", "8", "--k-steps", "3", "--batch-size", "8", "--minutes", "0",
         "--log-every", "1", "--sample-every", "100000", "--app-steps", "5"]


def flags(tmp: Path, name: str, *more: str) -> list[str]:
    return ["shortrun", "--out", str(tmp / f"{name}.safetensors"), "--run-dir", str(tmp / name), *SMALL, *more]


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "training", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_to_end(args: list[str]) -> None:
    """A whole run in its own process, with the same threading as the killed ones (bitwise comparisons)."""
    proc = start(args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def state_iteration(path: Path) -> int:
    """The iteration a state file resumes at (-1 while there is none)."""
    if not path.exists():
        return -1
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["info"])["iteration"]


def same_run(a: Path, b: Path) -> None:
    """Two checkpoints with identical weights and identical histories (the wall-clock column aside)."""
    ma, mb = checkpoints.load(a), checkpoints.load(b)
    assert ma.meta["iterations"] == mb.meta["iterations"]
    for (name, x), y in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "minutes"} for r in rows]  # noqa: E731
    assert strip(ma.meta["history"]) == strip(mb.meta["history"])


def wait_until(predicate, proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.01) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(poll)
    return False


def test_sigkill_mid_run_then_resume_matches_an_unbroken_run(tmp_path):
    n = ["--iterations", "240", "--checkpoint-every", "20", "--buffer-size", "64"]
    run_to_end(flags(tmp_path, "straight", *n))

    proc = start(flags(tmp_path, "killed", *n))
    state = tmp_path / "killed" / "state.safetensors"
    reached = wait_until(lambda: state_iteration(state) >= 60, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert reached and proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    at_kill = state_iteration(state)
    assert 60 <= at_kill < 240
    # the checkpoint is written right after the state: the kill may fall between the two
    assert checkpoints.load(tmp_path / "killed.safetensors").meta["iterations"] in (at_kill - 20, at_kill)

    run_to_end([*flags(tmp_path, "killed", *n), "--resume"])
    same_run(tmp_path / "straight.safetensors", tmp_path / "killed.safetensors")


def test_sigkill_mid_write_keeps_the_previous_state(tmp_path):
    """Killed while a state file is being written (its temp file exists): the previous state is whole and the
    run resumes from it; the partial write is removed."""
    n = ["--iterations", "400", "--checkpoint-every", "1", "--buffer-size", "4096"]  # a 3 MB state every iteration
    run_dir = tmp_path / "killed"
    temps = lambda: [p for p in run_dir.glob(".state.*.tmp")] if run_dir.is_dir() else []  # noqa: E731
    caught = None
    for _attempt in range(20):  # a write takes milliseconds: try until the kill lands inside one
        for p in temps():
            p.unlink()
        proc = start(flags(tmp_path, "killed", *n, *(["--resume"] if _attempt else [])))
        wait_until(lambda: state_iteration(run_dir / "state.safetensors") >= 2 and bool(temps()), proc, poll=0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.returncode == -signal.SIGKILL and temps():
            caught = temps()
            break
    assert caught, "no kill landed during a write in 20 tries"
    before = state_iteration(run_dir / "state.safetensors")  # the previous state is complete and readable
    assert before >= 2

    assert training_main([*flags(tmp_path, "killed", *n[:2], "--checkpoint-every", "50",
                                 "--buffer-size", "4096"), "--resume"]) == 0
    assert not temps()
    assert checkpoints.load(tmp_path / "killed.safetensors").meta["iterations"] == 400


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    args = flags(tmp_path, "run", "--buffer-size", "64")
    assert training_main([*args, "--iterations", "4"]) == 0  # a good run: its checkpoint after 4 iterations
    out, state = tmp_path / "run.safetensors", tmp_path / "run" / "state.safetensors"
    good = out.read_bytes(), state.read_bytes()

    # a learning rate a billion times too large: the energies leave any sane range within a few updates
    more = ["--iterations", "200", "--checkpoint-every", "100", "--resume"]
    assert training_main([*args, *more, "--lr", "1e5", "--max-energy", "1e3"]) == 3
    err = capsys.readouterr().err
    assert "shortrun training diverged at iteration" in err and "Lower --lr or --step-size" in err
    assert "the last good checkpoint" in err and "after 4 iterations" in err
    assert (out.read_bytes(), state.read_bytes()) == good  # nothing written after the last good one
    assert checkpoints.load(out).meta["iterations"] == 4

    # a NaN is caught without any energy bound
    assert training_main([*args, *more, "--data-noise", "nan", "--max-energy", "0"]) == 3
    assert "= nan" in capsys.readouterr().err
    assert (out.read_bytes(), state.read_bytes()) == good
