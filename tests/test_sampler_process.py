"""The shared loop in a process of its own (``ProcessSampler``, the app's): clients join and leave, the child ends
when idle and a new one starts for the next client, a child that dies or cannot load. What it shares with the
in-process loop (a run's chains equal its chains alone, caps, an energy that raises, a slow session) is tested on
both in tests/test_shared_sampler.py."""

import functools
import gc
import os
import signal
import time

import pytest
import torch

from ebmviz import catalogue
from ebmviz.sampling import LangevinConfig, LiveRun
from ebmviz.sampling.sampler_process import ProcessSampler, SamplerStopped

LOAD = functools.partial(catalogue.load, "shortrun-mnist")


def broken():
    raise FileNotFoundError("no such checkpoint here")


@pytest.fixture(scope="module")
def model():
    return catalogue.load("shortrun-mnist")


def starts(n, seed):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def wait_until(check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_clients_join_and_leave_and_an_idle_child_ends_and_comes_back(model):
    shared = ProcessSampler(LOAD, threads=1, idle_exit=1.0)
    first = LiveRun(model, starts(4, 0), LangevinConfig(n_steps=100), 0, sampler=shared)
    assert shared.clients == 0 and not shared.running  # a run joins at its first step, not before
    first.advance(max_steps=3)
    assert shared.clients == 1 and first.t == 3 and shared.running
    del first
    gc.collect()
    assert shared.clients == 0  # a dropped run (a closed tab) leaves
    assert wait_until(lambda: not shared.running)  # … and after idle_exit with nobody, the child ends
    again = LiveRun(model, starts(2, 1), LangevinConfig(n_steps=5), 1, sampler=shared)
    again.advance()
    assert again.done and shared.starts == 2  # the next client started a new child


def test_a_child_that_dies_fails_its_clients_with_a_message_and_the_next_starts_another(model):
    shared = ProcessSampler(LOAD, threads=1)
    run = LiveRun(model, starts(4, 0), LangevinConfig(n_steps=100_000), 0, sampler=shared, stop_on_error=True)
    run.advance(max_steps=2)
    os.kill(shared._proc.pid, signal.SIGKILL)
    run.advance()  # any steps the child had run ahead, then the news
    assert run.error is not None and "SamplerStopped" in run.error and "ended unexpectedly" in run.error
    assert 2 <= run.t < 100_000  # the steps it had, and any the child had run ahead
    after = LiveRun(model, starts(2, 1), LangevinConfig(n_steps=5), 1, sampler=shared)
    after.advance()
    assert after.done and shared.starts == 2
    shared.stop()


def test_a_child_that_cannot_build_its_energy_says_why(model):
    shared = ProcessSampler(broken, threads=1)
    with pytest.raises(SamplerStopped, match="could not build the energy: FileNotFoundError: no such checkpoint"):
        LiveRun(model, starts(2, 0), LangevinConfig(n_steps=5), 0, sampler=shared).advance()
