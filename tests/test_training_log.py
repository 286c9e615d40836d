"""TensorBoard logs of training: ``ebmviz.training_log``'s tags read back by TensorBoard's own reader (the
``plugin_event_accumulator`` that ``tensorboard`` serves from, every summary a tensor), every trainer writing them,
and a killed run continued with --resume logging each step exactly once."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

from ebmviz import checkpoints
from ebmviz.images import to_u8
from ebmviz.training_log import (
    MAX_IMAGES,
    SCALAR_ROLES,
    TAGS,
    EBMLogger,
    decode_images,
    energy_stats,
    noise_images,
    role_of,
)
from tests.test_training import TINY
from training.__main__ import main as training_main

ROOT = Path(__file__).resolve().parent.parent


def read(logdir: Path) -> EventAccumulator:
    """TensorBoard's reader over every event file in ``logdir``, keeping every event (no sampling)."""
    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def tags(acc: EventAccumulator) -> set[str]:
    return set(acc.Tags()["tensors"])


def series(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar tag, in the order read."""
    return [(e.step, make_ndarray(e.tensor_proto).item()) for e in acc.Tensors(tag)]


def steps(acc: EventAccumulator, role: str) -> list[int]:
    return [e.step for e in acc.Tensors(TAGS[role])]


def raw_steps(logdir: Path, tag: str) -> list[int]:
    """The steps of ``tag`` in the event files as they lie on disk, nothing purged."""
    out = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in LegacyEventFileLoader(str(path)).Load():
            out += [event.step for v in event.summary.value if v.tag == tag]
    return sorted(out)


def test_every_scalar_role_is_read_back_under_its_tag(tmp_path):
    base = {role: 0.25 * (i + 1) for i, role in enumerate(SCALAR_ROLES)}  # exact in float32, as the events store
    with EBMLogger(tmp_path) as log:
        for step in (0, 5, 10):
            log.scalars(step, **{role: v * (step + 1) for role, v in base.items()})
        log.scalar(5, "my/own_quantity", 2.5)  # a tag of the user's own sits beside them
        log.scalars(15, loss=float("nan"), gap=float("-inf"))  # non-finite values are what a monitor must see
    acc = read(tmp_path)
    assert tags(acc) == {TAGS[r] for r in SCALAR_ROLES} | {"my/own_quantity"}
    for role, v in base.items():
        assert series(acc, TAGS[role])[:3] == [(0, v), (5, 6 * v), (10, 11 * v)], role
        assert acc.SummaryMetadata(TAGS[role]).plugin_data.plugin_name == "scalars"
    assert math.isnan(series(acc, "loss")[-1][1]) and series(acc, "energy/gap")[-1] == (15, -math.inf)
    assert series(acc, "my/own_quantity") == [(5, 2.5)]
    assert {role_of(tag) for tag in TAGS.values()} == set(TAGS) and role_of("my/own_quantity") is None
    assert len(set(TAGS.values())) == len(TAGS)


def test_negatives_and_replay_are_image_batches_at_full_resolution(tmp_path):
    gen = torch.Generator().manual_seed(0)
    grey = torch.rand(70, 1, 28, 28, generator=gen) * 2.4 - 1.2  # beyond [−1, 1] too: to_u8 clips
    colour = torch.rand(5, 3, 32, 20, generator=gen) * 2 - 1  # RGB, not square
    sat = torch.zeros(2, 1, 4, 4)
    sat.view(-1)[:5] = torch.tensor([0.995, 1.0, -1.0, -0.99, 3.0])  # five saturated pixels of 32
    sat.view(-1)[5:7] = torch.tensor([0.98, -0.989])  # just below the threshold
    with EBMLogger(tmp_path) as log:
        log.negatives(0, grey)
        log.replay(0, colour)
        log.negatives(1, sat)
        log.replay(1, to_u8(grey[:3]))  # uint8 pixels are written as they are
        assert log.images(2, "negatives", grey, limit=10) == 10
    acc = read(tmp_path)
    assert tags(acc) == {"samples/negatives", "samples/replay", "samples/saturation"}
    assert acc.SummaryMetadata("samples/negatives").plugin_data.plugin_name == "images"  # TensorBoard's image plugin
    negatives, replay = acc.Tensors("samples/negatives"), acc.Tensors("samples/replay")
    first = decode_images(negatives[0].tensor_proto)
    assert first.shape == (MAX_IMAGES, 1, 28, 28) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, to_u8(grey[:MAX_IMAGES]).numpy())
    np.testing.assert_array_equal(decode_images(replay[0].tensor_proto), to_u8(colour).numpy())
    np.testing.assert_array_equal(decode_images(replay[1].tensor_proto), to_u8(grey[:3]).numpy())
    assert decode_images(negatives[2].tensor_proto).shape == (10, 1, 28, 28)
    saturation = dict(series(acc, "samples/saturation"))
    assert saturation[1] == 5 / 32
    assert saturation[0] == pytest.approx(float((grey.abs() >= 0.99).float().mean()), abs=1e-7)  # all 70, not 64


def test_energy_roles_from_per_sample_energies():
    stats = energy_stats(torch.tensor([1.0, 2.0, 3.0]), np.array([4.0, 6.0]))
    assert stats == pytest.approx({"data_mean": 2.0, "data_std": math.sqrt(2 / 3), "sample_mean": 5.0,
                                   "sample_std": 1.0, "gap": 3.0})  # gap = E(x⁻) − E(x⁺)
    with pytest.raises(ValueError, match="at least one energy"):
        energy_stats(torch.tensor([]), torch.tensor([1.0]))


def test_noise_energy_is_of_one_fixed_uniform_set(tmp_path):
    """E(u) = Σ u² over 16 pixels has expectation 16/3 under U(−1, 1); its mean over 64 images has standard
    deviation 16·sqrt(4/45 / 1024) ≈ 0.15. The same images every call, and the global RNG untouched."""
    energy = lambda u: (u**2).flatten(1).sum(1)  # noqa: E731
    before = torch.random.get_rng_state()
    with EBMLogger(tmp_path) as log:
        first = log.noise_energy(0, energy, (1, 4, 4))
        again = log.noise_energy(1, energy, (1, 4, 4))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert first == again and abs(first - 16 / 3) < 4 * 16 * math.sqrt(4 / 45 / 1024)
    u = noise_images((1, 4, 4), 64, seed=0)
    assert u.shape == (64, 1, 4, 4) and -1 <= u.min() and u.max() < 1
    assert series(read(tmp_path), "energy/noise_mean") == [(0, np.float32(first)), (1, np.float32(first))]


def test_bad_input_says_what_is_wrong(tmp_path):
    with EBMLogger(tmp_path) as log:
        with pytest.raises(ValueError, match=r"unknown role\(s\) energy; the scalar roles are data_mean.*scalar\("):
            log.scalars(0, energy=1.0)
        with pytest.raises(ValueError, match="unknown role"):
            log.scalars(0, negatives=1.0)  # an image role is no scalar
        with pytest.raises(ValueError, match=r"\(B, C, H, W\).*got shape \(28, 28\)"):
            log.negatives(0, torch.zeros(28, 28))
        with pytest.raises(ValueError, match="C 1 or 3"):
            log.replay(0, torch.zeros(2, 2, 28, 28))
        with pytest.raises(ValueError, match="unknown image role 'loss'"):
            log.images(0, "loss", torch.zeros(1, 1, 28, 28))
        with pytest.raises(ValueError, match="a step is an integer ≥ 0, got -1"):
            log.scalars(-1, loss=1.0)
    with pytest.raises(ValueError, match="purge_step"):
        EBMLogger(tmp_path, purge_step=-3)
    with pytest.raises(ValueError, match="not an image summary"):
        decode_images([b"28", b"28"])
    with pytest.raises(ValueError, match="does not decode"):
        decode_images([b"28", b"28", b"not a png"])


KILLED_WRITER = """
import os, signal, sys, torch
from ebmviz.training_log import EBMLogger
log = EBMLogger(sys.argv[1])
for step in range(10):
    log.scalars(step, loss=float(step))
    log.negatives(step, torch.full((2, 1, 8, 8), step / 10))
    if step == 4:
        log.flush()  # the "checkpoint" after step 4: a resumed run continues at 5
log.flush()  # steps 5-9 reach the disk too, as the writer's own timer would write them
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_purge_step_drops_what_a_killed_writer_logged_after_its_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL
    killed = sorted(tmp_path.glob("events.out.tfevents.*"))
    with EBMLogger(tmp_path, purge_step=5) as log:
        for step in range(5, 10):
            log.scalars(step, loss=100.0 + step)
            log.negatives(step, torch.full((2, 1, 8, 8), -step / 10))
    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == 2 and files[0] == killed[0]  # the new file's name sorts after the killed one's
    assert raw_steps(tmp_path, "loss") == [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]  # on disk: 5-9 twice
    acc = read(tmp_path)
    assert series(acc, "loss") == [(s, float(s)) for s in range(5)] + [
        (s, 100.0 + s) for s in range(5, 10)]
    assert steps(acc, "negatives") == steps(acc, "saturation") == list(range(10))
    assert decode_images(acc.Tensors("samples/negatives")[7].tensor_proto)[0, 0, 0, 0] == round(0.3 * 127.5)


# --------------------------------------------------------------------------------------------- the trainers
ENERGY = ["data_mean", "data_std", "sample_mean", "sample_std", "gap", "noise_mean"]
OPTIMISER = ["loss", "grad_norm", "lr"]
WRITES = {  # the roles each trainer logs (its module docstring says which)
    "shortrun": set(TAGS),
    "coarse_to_fine": set(TAGS) - {"replay"},
    "frame": {*ENERGY, *OPTIMISER, "step_size", "step_norm", "saturation", "negatives"},
    "denoising": {*ENERGY, *OPTIMISER, "saturation", "negatives"},
    "ebgan": {*ENERGY, *OPTIMISER, "saturation", "negatives"},
    "triangle": {*ENERGY, *OPTIMISER, "saturation", "negatives"},
    "evaluator": set(OPTIMISER),
}
SHORTER = {"triangle": ["--epochs", "1"], "ebgan": ["--epochs", "1"], "evaluator": ["--epochs", "1"]}
LR = {"ebgan": "lr_d", "triangle": "lr_e"}  # the energy's learning rate, where a trainer has several


@pytest.mark.slow
@pytest.mark.parametrize("method", list(TINY))
def test_every_trainer_writes_its_roles_every_log_every_steps(method, tmp_path):
    assert set(WRITES) == set(TINY)
    run_dir = tmp_path / "run"
    assert training_main([method, "--out", str(tmp_path / "m.safetensors"), "--run-dir", str(run_dir), "--minutes",
                          "0", "--log-every", "2", "--sample-every", "1000", *TINY[method],
                          *SHORTER.get(method, [])]) == 0
    meta = checkpoints.load(tmp_path / "m.safetensors").meta
    acc = read(run_dir)
    assert tags(acc) == {TAGS[r] for r in WRITES[method]}
    logged = list(range(0, meta["iterations"], 2))
    assert len(logged) >= 4
    for role in WRITES[method]:
        assert steps(acc, role) == logged, role
    scalar = {r: np.array([v for _, v in series(acc, TAGS[r])], dtype=np.float32)
              for r in WRITES[method] & set(SCALAR_ROLES)}
    assert all(np.isfinite(v).all() for v in scalar.values())
    assert (scalar["grad_norm"] > 0).all()
    assert scalar["lr"][0] == np.float32(meta["train_config"][LR.get(method, "lr")])
    if "gap" in scalar:
        gap, s, d = scalar["gap"], scalar["sample_mean"], scalar["data_mean"]  # float32, as the events hold them
        assert (np.abs(gap - (s - d)) <= 4 * np.spacing(np.maximum(np.abs(s), np.abs(d)))).all()  # a few roundings
        assert (scalar["data_std"] >= 0).all() and ((0 <= scalar["saturation"]) & (scalar["saturation"] <= 1)).all()
    for role in {"negatives", "replay"} & WRITES[method]:
        images = decode_images(acc.Tensors(TAGS[role])[-1].tensor_proto)
        assert images.dtype == np.uint8 and 1 <= len(images) <= MAX_IMAGES and images.shape[1] == 1
        assert images.shape[2] == images.shape[3] in (7, 14, 28)  # full resolution (a coarse-to-fine stage's side)


KILLER = """
import os, signal, sys
from training.__main__ import main
from training.run import Run

calls, checkpoint = [], Run.checkpoint

def killed_at_the_second(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # what was logged since the first checkpoint is on disk (the writer's thread), then the kill
        self.board.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return checkpoint(self, *args, **kwargs)

Run.checkpoint = killed_at_the_second
sys.exit(main(sys.argv[1:]))
"""
KILLED = {  # killed at its second checkpoint, some steps logged after its first
    "shortrun": [*TINY["shortrun"], "--log-every", "1"],  # checkpoints after 4 and 7 updates
    "coarse_to_fine": [*TINY["coarse_to_fine"], "--log-every", "1", "--checkpoint-every", "5"],  # after 3 and 5
}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(KILLED))
def test_a_killed_and_resumed_run_logs_every_step_once(method, tmp_path):
    """Killed by SIGKILL at its second checkpoint, then --resume: the steps the killed run logged after its first
    checkpoint are on disk twice, and the reader shows each step once, none missing, with the history's values."""
    run_dir = tmp_path / "run"
    flags = [method, "--out", str(tmp_path / "m.safetensors"), "--run-dir", str(run_dir), "--minutes", "0",
             "--sample-every", "1000", *KILLED[method]]
    proc = subprocess.run([sys.executable, "-c", KILLER, *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert training_main([*flags, "--resume"]) == 0
    model = checkpoints.load(tmp_path / "m.safetensors")
    done = model.meta["iterations"]
    on_disk = raw_steps(run_dir, "loss")
    assert set(on_disk) == set(range(done)) and len(on_disk) > len(set(on_disk))  # some steps in both runs' files
    acc = read(run_dir)
    for role in WRITES[method]:
        assert steps(acc, role) == list(range(done)), role  # each step once, none missing
    history = {round(r["iteration"]): r["loss"] for r in model.meta["history"]}
    assert [v for _, v in series(acc, "loss")] == [np.float32(history[s]) for s in range(done)]
