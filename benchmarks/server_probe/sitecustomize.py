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
- ``LiveRun.advance`` (a session's sampling between two frames): calls, steps, wall and thread CPU seconds;
- the loop thread's scheduler statistics (``/proc/self/task/<tid>/schedstat``): seconds on a CPU and seconds
  runnable but waiting for one. The rest of its time it sleeps: waiting for steps to be asked, or for the
  interpreter lock (the GIL), which it must take back between torch's operations.

With ``EBMVIZ_PROBE_HZ`` > 0 it also samples every thread's stack that many times a second
(``sys._current_frames``) and counts, per thread kind (its name less trailing numbers: ``ScriptRunner.scriptThread``,
``MainThread``, ``ebmviz-shared-sampler``, …), where each one is: the three innermost frames of the app's own code
and the innermost frame of all ("ebmviz/app/player.py:frames → views/langevin.py:draw_frame →
ebmviz/figures/images.py:labelled_grid > PIL/ImageFont.py:fill"). A thread waiting for the
interpreter lock counts where it waits; one in ``time.sleep`` counts at the line that called it.

With ``EBMVIZ_PROBE_SWITCH`` (seconds) it sets the interpreter's switch interval (``sys.setswitchinterval``, 0.005 by
default): how long a thread that wants the lock waits before asking its holder to drop it. An experiment on the GIL.

Every 0.25 s it writes the running totals, with ``time.time()`` and the process's CPU seconds (``os.times``), to
the file as JSON (written aside and renamed: a reader never sees half a file). The benchmark subtracts two
readings to get rates over its watch window.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import weakref
from collections import Counter

OUT = os.environ.get("EBMVIZ_PROBE")
EVERY = 0.25  # s between writes
HZ = float(os.environ.get("EBMVIZ_PROBE_HZ") or 0)  # stack samples per second (0: none)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep

totals: Counter = Counter()
clients_per_batch: Counter = Counter()
stacks: Counter = Counter()  # "thread kind | app frame > innermost frame" -> samples
samplers: weakref.WeakSet = weakref.WeakSet()
loop_threads: set = set()  # native ids of the loops' threads
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
    loop_threads.add(threading.get_native_id())
    with _lock:
        clients_per_batch[len(batch)] += 1
    return {"serve_clients": len(batch), "serve_chains": sum(c.chains.x.shape[0] for c in batch)}


def _install(shared, run) -> None:
    shared.SharedSampler._serve = _timed("serve", shared.SharedSampler._serve, _batch_size)
    shared.SharedSampler._ask = _timed("ask", shared.SharedSampler._ask)
    shared.energy_and_grad = _timed("grad", shared.energy_and_grad)
    run.LiveRun.advance = _timed("advance", run.LiveRun.advance, lambda _args, ran: {"advance_steps": ran})


def _short(frame) -> str:
    path = frame.f_code.co_filename
    short = path[len(ROOT):] if path.startswith(ROOT) and "/.venv/" not in path else "/".join(path.split("/")[-2:])
    return f"{short}:{frame.f_code.co_name}"


def _where(frame, depth: int = 3) -> str:
    """"<the ``depth`` innermost frames of the app's own code, outer first> > <innermost frame>" of a stack."""
    inner, app = _short(frame), []
    while frame is not None and len(app) < depth:
        path = frame.f_code.co_filename
        if path.startswith(ROOT) and "/.venv/" not in path and "server_probe" not in path:
            app.append(_short(frame))
        frame = frame.f_back
    return f"{' → '.join(reversed(app)) or '-'} > {inner}"


def _sample() -> None:
    me = threading.get_ident()
    while True:
        kinds = {t.ident: re.sub(r"[-_\d]+$", "", t.name) for t in threading.enumerate()}
        seen = Counter(f"{kinds.get(ident, '?')} | {_where(frame)}"
                       for ident, frame in sys._current_frames().items() if ident != me)
        with _lock:
            stacks.update(seen)
        time.sleep(1 / HZ)


def _ready(name: str, attr: str):
    module = sys.modules.get(name)
    return module if module is not None and hasattr(module, attr) else None


def _watch() -> None:
    """Wait for the app to import the two modules (their last definitions in place), wrap, then write forever."""
    while not ((shared := _ready("ebmviz.sampling.shared", "_loop")) and (run := _ready("ebmviz.sampling.run",
                                                                                       "sample"))):
        time.sleep(0.02)
    _install(shared, run)
    last: dict = {}  # tid -> (ns on a CPU, ns waiting for one)
    while True:
        for tid in list(loop_threads):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    now = tuple(int(v) for v in f.read().split()[:2])
            except (OSError, ValueError):
                loop_threads.discard(tid)  # the thread ended (the loop's thread ends when no client is left)
                continue
            before = last.get(tid, now)
            last[tid] = now
            _add(loop_run_s=(now[0] - before[0]) / 1e9, loop_runq_s=(now[1] - before[1]) / 1e9)
        with _lock:
            data = dict(totals)
            data["clients_per_batch"] = {str(k): v for k, v in sorted(clients_per_batch.items())}
            data["stacks"] = dict(stacks)
        own = [(s.batches, s.batched_chains) for s in list(samplers)]
        times = os.times()
        data |= {"time": time.time(), "process_cpu_s": times.user + times.system, "samplers": len(own),
                 "sampler_batches": sum(b for b, _ in own), "sampler_batched_chains": sum(c for _, c in own)}
        with open(OUT + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(OUT + ".tmp", OUT)
        time.sleep(EVERY)


if OUT:
    if os.environ.get("EBMVIZ_PROBE_SWITCH"):
        sys.setswitchinterval(float(os.environ["EBMVIZ_PROBE_SWITCH"]))
    threading.Thread(target=_watch, daemon=True, name="ebmviz-probe").start()
    if HZ > 0:
        threading.Thread(target=_sample, daemon=True, name="ebmviz-probe-sampler").start()
