"""The shared batched sampler: many runs on one energy share each forward and backward pass, and a run's chains are
the ones it gets alone (to float rounding), whoever else is in its batch; joining, leaving, caps and errors. The
loop in the server's process (``SharedSampler``) and in a process of its own (``ProcessSampler``, the app's)."""

import functools
import gc
import threading
import time
import weakref

import numpy as np
import pytest
import torch

from ebmviz import catalogue, checkpoints
from ebmviz.sampling import LangevinConfig, LiveRun
from ebmviz.sampling.sampler_process import ProcessSampler
from ebmviz.sampling.shared import SamplerFull, SharedSampler


class Picky:
    """shortrun-mnist's energy, refusing any state whose first pixel is over 5 (a class: the process loop's child
    builds one itself)."""

    def __init__(self):
        self.model = catalogue.load("shortrun-mnist")

    def __call__(self, x):
        if bool((x.flatten(1)[:, 0] > 5).any()):
            raise ValueError("refused this input")
        return self.model(x)


def loop(where, energy=None, load=functools.partial(catalogue.load, "shortrun-mnist"), **caps):
    """The loop in this process's thread (on ``energy``) or in a process of its own (building ``load()``)."""
    return SharedSampler(energy, **caps) if where == "thread" else ProcessSampler(load, threads=1, **caps)


@pytest.fixture(scope="module")
def model():
    m = checkpoints.load("shortrun-mnist")
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def starts(n, seed):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


SESSIONS = [  # (chains, seed, config): ULA and MALA, other step sizes, noises, clips and boxes
    (16, 1, LangevinConfig(n_steps=60, record_every=4)),
    (8, 2, LangevinConfig(n_steps=60, step_size=3.0, noise_std=0.01, record_every=4)),
    (12, 3, LangevinConfig(n_steps=60, metropolis=True, step_size=0.002, noise_std=0.02, record_every=4)),
    (4, 4, LangevinConfig(n_steps=60, grad_clip=None, record_every=4)),
    (16, 5, LangevinConfig(n_steps=60, clamp=None, step_size=1.0, record_every=4)),
    (6, 6, LangevinConfig(n_steps=60, metropolis=True, step_size=0.001, noise_std=0.01, clamp=None, record_every=4)),
    (10, 7, LangevinConfig(n_steps=60, noise_std=0.05, record_every=4)),
    (16, 8, LangevinConfig(n_steps=60, step_size=20.0, record_every=4)),
]


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_session_batched_with_seven_others_gets_the_frames_it_gets_alone(model, where):
    shared = loop(where, model)
    runs = [LiveRun(model, starts(n, seed), cfg, seed, sampler=shared) for n, seed, cfg in SESSIONS]
    threads = [threading.Thread(target=run.advance) for run in runs]  # each session's own thread, as in the app
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every session was in the others' batches: more chains per evaluation than the largest session alone has
    assert shared.batched_chains / shared.batches > 16
    for (n, seed, cfg), together in zip(SESSIONS, runs, strict=True):
        alone = LiveRun(model, starts(n, seed), cfg, seed)
        alone.advance()
        a, b = alone.trajectory(), together.trajectory()
        # A batch of another size may sum in another order (float32 rounding, ~1e-7 relative); 60 Langevin steps
        # carry that along without growing it past these bounds. The pictures: at most one level of 255 apart.
        np.testing.assert_allclose(b.final, a.final, atol=1e-4)
        np.testing.assert_allclose(b.energy, a.energy, rtol=1e-4, atol=1e-3)
        assert np.abs(b.frames.astype(int) - a.frames.astype(int)).max() <= 1
        assert (b.frames != a.frames).mean() < 1e-3
        if cfg.metropolis:
            np.testing.assert_array_equal(b.accept, a.accept)  # the same proposals accepted


def test_clients_join_and_leave_and_the_loop_ends_with_the_last(model):
    shared = SharedSampler(model)
    first = LiveRun(model, starts(4, 0), LangevinConfig(n_steps=10), 0, sampler=shared)
    unstarted = LiveRun(model, starts(4, 1), LangevinConfig(n_steps=10), 1, sampler=shared)
    assert shared.clients == 0  # a run joins at its first step, not before
    first.advance(max_steps=3)
    assert shared.clients == 1 and first.t == 3
    chains = weakref.ref(first._steps)
    del first
    gc.collect()
    assert chains() is None and shared.clients == 0  # a dropped run (a closed tab) leaves the loop
    del unstarted
    gc.collect()
    assert shared.clients == 0
    done = LiveRun(model, starts(2, 2), LangevinConfig(n_steps=5), 2, sampler=shared)
    done.advance()
    assert done.done and shared.clients == 0  # the last step's client left with it
    for _ in range(100):  # the loop's thread wakes on the client's leaving, sees nobody, and ends
        if not shared._running:
            break
        time.sleep(0.02)
    assert not shared._running


@pytest.mark.parametrize("where", ["thread", "process"])
def test_caps_on_chains_and_clients_say_so(model, where):
    shared = loop(where, model, max_chains=8, max_clients=2)
    with pytest.raises(SamplerFull, match="cap of 8 per session"):
        LiveRun(model, starts(9, 0), LangevinConfig(n_steps=5), 0, sampler=shared)
    a = LiveRun(model, starts(2, 0), LangevinConfig(n_steps=50), 0, sampler=shared)
    b = LiveRun(model, starts(2, 1), LangevinConfig(n_steps=50), 1, sampler=shared)
    a.advance(max_steps=1)
    b.advance(max_steps=1)
    with pytest.raises(SamplerFull, match="sampling for 2 sessions"):
        LiveRun(model, starts(2, 2), LangevinConfig(n_steps=5), 2, sampler=shared)


@pytest.mark.parametrize("where", ["thread", "process"])
def test_an_energy_that_raises_stops_only_the_run_it_raised_for(model, where):
    picky = Picky()
    shared = loop(where, picky, load=Picky)
    bad_start = starts(4, 0)
    bad_start[0, 0, 0, 0] = 10.0  # a start this model "refuses"
    bad = LiveRun(picky, bad_start, LangevinConfig(n_steps=20, clamp=None), 0, sampler=shared, stop_on_error=True)
    good = LiveRun(picky, starts(4, 1), LangevinConfig(n_steps=20), 1, sampler=shared, stop_on_error=True)
    threads = [threading.Thread(target=r.advance) for r in (bad, good)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad.error == "ValueError: refused this input" and bad.t == 0  # as the energy raised it, in either loop
    assert good.error is None and good.done


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_slow_session_never_holds_the_others_back(model, where):
    shared = loop(where, model)
    slow = LiveRun(model, starts(4, 0), LangevinConfig(n_steps=200), 0, sampler=shared)
    fast = LiveRun(model, starts(4, 1), LangevinConfig(n_steps=60), 1, sampler=shared)
    stop = threading.Event()

    def crawl():  # a session whose drawing takes 0.3 s a frame: it asks for one step, then draws
        while not stop.is_set() and not slow.done:
            slow.advance(max_steps=1)
            stop.wait(0.3)

    t = threading.Thread(target=crawl)
    t.start()
    try:
        fast.advance()  # 60 steps while the slow one draws: each waits at most the loop's bounded wait for it
    finally:
        stop.set()
        t.join()
    assert fast.done and slow.t < 30, slow.t
