"""Every trainer under torchrun: 2 CPU processes on gloo (DistributedDataParallel) for a few iterations.

The ranks train on different shards with different negatives and noise, so their parameters stay equal only if
every step averages the gradients over both; rank 0 alone writes the checkpoint, each rank its resumable state.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from ebmviz import checkpoints
from tests.test_training import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torchrun(args: list[str], nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=nproc -m training <args>`` (one thread per process)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "training", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def state_tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)


@pytest.mark.parametrize("method", list(TINY))
def test_two_gloo_processes_keep_equal_parameters(method, tmp_path):
    out, run_dir = tmp_path / f"{method}.safetensors", tmp_path / "run"
    proc = torchrun([method, "--out", str(out), "--run-dir", str(run_dir), "--minutes", "0", "--log-every", "1",
                     "--sample-every", "1000", *TINY[method]])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DistributedDataParallel over 2 processes (gloo)" in proc.stdout
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone says it wrote the checkpoint
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # and alone writes the TensorBoard log

    model = checkpoints.load(out)  # rank 0's checkpoint loads like any other
    scale = model.meta["distributed"]
    assert scale["world_size"] == 2 and scale["backend"] == "gloo"
    if scale["batch_per_rank"] is not None:
        assert scale["effective_batch"] == 2 * scale["batch_per_rank"]

    rank0, rank1 = state_tensors(run_dir / "state.safetensors"), state_tensors(run_dir / "state.rank1.safetensors")
    assert not torch.equal(rank0["rng.gen"], rank1["rng.gen"])  # the ranks drew different data and noise
    params = [f"model.{name}" for name, _ in model.named_parameters()]
    assert params
    for key in params:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(model.state_dict()[key[len("model."):]], rank0[key], rtol=0, atol=0, msg=key)


def test_a_distributed_run_resumes_with_the_same_number_of_processes(tmp_path):
    out, run_dir = tmp_path / "sr.safetensors", tmp_path / "run"
    args = ["shortrun", "--out", str(out), "--run-dir", str(run_dir), "--minutes", "0", "--sample-every", "1000",
            *TINY["shortrun"]]
    assert torchrun([*args, "--iterations", "4"]).returncode == 0
    proc = torchrun([*args, "--iterations", "8", "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed at iteration 4" in proc.stdout
    model = checkpoints.load(out)
    assert model.meta["iterations"] == 8
    rank0, rank1 = state_tensors(run_dir / "state.safetensors"), state_tensors(run_dir / "state.rank1.safetensors")
    for name, _ in model.named_parameters():
        torch.testing.assert_close(rank0[f"model.{name}"], rank1[f"model.{name}"], rtol=0, atol=0, msg=name)
    # one process cannot take over the state of two
    single = subprocess.run([sys.executable, "-m", "training", *args, "--iterations", "10", "--resume"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode != 0 and "written by a run of 2 processes" in single.stderr


def test_ranks_whose_states_disagree_stop_together_with_a_message(tmp_path):
    """A stale rank file (a kill between two ranks' writes): every process stops, none trains on."""
    import shutil

    out, run_dir = tmp_path / "sr.safetensors", tmp_path / "run"
    args = ["shortrun", "--out", str(out), "--run-dir", str(run_dir), "--minutes", "0", "--sample-every", "1000",
            *TINY["shortrun"], "--checkpoint-every", "2"]
    assert torchrun([*args, "--iterations", "2"]).returncode == 0
    shutil.copy(run_dir / "state.rank1.safetensors", tmp_path / "stale.safetensors")
    assert torchrun([*args, "--iterations", "4", "--resume"]).returncode == 0
    shutil.copy(tmp_path / "stale.safetensors", run_dir / "state.rank1.safetensors")  # rank 1 two updates behind
    written = out.read_bytes()
    proc = torchrun([*args, "--iterations", "6", "--resume"])
    assert proc.returncode != 0
    assert "states do not agree" in proc.stderr and "at iteration 2" in proc.stderr and "at iteration 4" in proc.stderr
    assert out.read_bytes() == written  # nothing trained on, nothing written
