"""A probe inside the app server, for ``benchmarks/load.py --scaling``: where the shared sampler's time goes.

Python imports ``sitecustomize`` at start-up from the first folder of ``sys.path`` that has one, so the benchmark
starts ``streamlit run`` with this folder first on ``PYTHONPATH`` and ``EBMVIZ_PROBE=<file>``; without that
variable this module does nothing. Once the app has imported ``ebmviz.sampling.shared`` and ``ebmviz.sampling.run``
(a thread watches ``sys.modules``), it wraps, on the classes, without changing what they do:

- ``SharedSampler._serve`` (one batch: the loop thread's forward, backward and updates): wall and thread CPU
  seconds, the batch's clients and chains (a histogram of clients per batch), and each sampler's own ``batches`` /
  ``batched_chains`` counters;
- ``energy_and_grad`` as the shared module calls it: wall and CPU seconds of the forward and backward alone;
- ``SharedSampler._ask`` (a session's thread waiting for its step): calls and wall seconds;
- ``LiveRun.advance`` (a session's sampling between two frames): calls, steps, wall and thread CPU seconds.

Every 0.25 s it writes the running totals, with ``time.time()`` and the process's CPU seconds (``os.times``), to
the file as JSON (written aside and renamed: a reader never sees half a file). The benchmark subtracts two
readings to get rates over its watch window.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import weakref
from collections import Counter

OUT = os.environ.get("EBMVIZ_PROBE")
EVERY = 0.25  # s between writes

totals: Counter = Counter()
clients_per_batch: Counter = Counter()
samplers: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()


def _add(**amounts: float) -> None:
    with _lock:
        totals.update(amounts)


def _timed(key: str, fn, extra=None):
    """``fn`` wrapped to add its wall and thread-CPU seconds under ``key`` (and ``extra(args, result)``'s amounts)."""

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = fn(*args, **kwargs)
        amounts = {f"{key}_calls": 1, f"{key}_wall_s": time.perf_counter() - wall,
                   f"{key}_cpu_s": time.thread_time() - cpu}
        _add(**amounts, **(extra(args, result) if extra else {}))
        return result

    wrapper.__wrapped__ = fn
    return wrapper


def _batch_size(args, _result) -> dict:
    sampler, batch = args[0], args[1]
    samplers.add(sampler)
    with _lock:
        clients_per_batch[len(batch)] += 1
    return {"serve_clients": len(batch), "serve_chains": sum(c.chains.x.shape[0] for c in batch)}


def _install(shared, run) -> None:
    shared.SharedSampler._serve = _timed("serve", shared.SharedSampler._serve, _batch_size)
    shared.SharedSampler._ask = _timed("ask", shared.SharedSampler._ask)
    shared.energy_and_grad = _timed("grad", shared.energy_and_grad)
    run.LiveRun.advance = _timed("advance", run.LiveRun.advance, lambda _args, ran: {"advance_steps": ran})


def _ready(name: str, attr: str):
    module = sys.modules.get(name)
    return module if module is not None and hasattr(module, attr) else None


def _watch() -> None:
    """Wait for the app to import the two modules (their last definitions in place), wrap, then write forever."""
    while not ((shared := _ready("ebmviz.sampling.shared", "_loop")) and (run := _ready("ebmviz.sampling.run",
                                                                                       "sample"))):
        time.sleep(0.02)
    _install(shared, run)
    while True:
        with _lock:
            data = dict(totals)
            data["clients_per_batch"] = {str(k): v for k, v in sorted(clients_per_batch.items())}
        own = [(s.batches, s.batched_chains) for s in list(samplers)]
        times = os.times()
        data |= {"time": time.time(), "process_cpu_s": times.user + times.system, "samplers": len(own),
                 "sampler_batches": sum(b for b, _ in own), "sampler_batched_chains": sum(c for _, c in own)}
        with open(OUT + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(OUT + ".tmp", OUT)
        time.sleep(EVERY)


if OUT:
    threading.Thread(target=_watch, daemon=True, name="ebmviz-probe").start()
