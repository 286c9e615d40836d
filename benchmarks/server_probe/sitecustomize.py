"""A probe inside the app server, for ``benchmarks/load.py --scaling``: where the shared sampler's time goes.

Python imports ``sitecustomize`` at start-up from the first folder of ``sys.path`` that has one, so the benchmark
starts ``streamlit run`` with this folder first on ``PYTHONPATH`` and ``EBMVIZ_PROBE=<file>``; without that
variable this module does nothing. The shared sampler's child process (``ebmviz.sampling.sampler_process``) gets the
server's ``sys.path`` and environment, so the probe runs there too and writes ``<file>.<pid>``. Once the app has
imported the modules it measures (a thread watches ``sys.modules``), it wraps, on the classes, without changing what
they do:

- in the server: ``Player.show``'s ``draw`` (the frames each session's player draws while playing: what it sends
  its browser, whether or not a busy browser shows each one); ``ProcessSampler._deliver`` (a batch's steps reach the
  sessions: each sampler's own ``batches`` / ``batched_chains`` counters); ``_Box.get`` (a session's thread waiting
  for its step: calls and wall seconds); ``LiveRun.advance`` (a session's sampling between two frames: calls, steps,
  wall and thread CPU seconds);
- in the child: ``step_batch`` (one batch: the loop's forward, backward and updates): wall and thread CPU seconds,
  the batch's clients and chains (a histogram of clients per batch); ``energy_and_grad`` as the shared module calls
  it (the forward and backward alone); and the loop's thread's scheduler statistics
  (``/proc/self/task/<tid>/schedstat``): seconds on a CPU and seconds runnable but waiting for one. The rest of its
  serving time it sleeps (in the server's process that was the interpreter lock; in a child of its own, nothing).

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
frames_drawn: Counter = Counter()  # session id -> frames its player drew while playing (sent to its browser)
shown: dict = {}  # session id -> the index of the frame it drew last
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
    batch = args[1]  # step_batch(energy, chains)
    loop_threads.add(threading.get_native_id())
    with _lock:
        clients_per_batch[len(batch)] += 1
    return {"serve_clients": len(batch), "serve_chains": sum(c.x.shape[0] for c in batch)}


def _delivered(args, _result) -> dict:
    samplers.add(args[0])
    return {}


def _counting(show):
    """``Player.show`` whose ``draw`` counts, per session, the frames it draws while playing."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    def wrapper(self, draw, *args, **kwargs):
        ctx = get_script_run_ctx()
        session = ctx.session_id if ctx is not None else "?"

        def counted(index, view):
            if view.playing and shown.get(session) != index:  # a new frame (a fragment's rerun redraws the last)
                shown[session] = index
                with _lock:
                    frames_drawn[session] += 1
            return draw(index, view)

        return show(self, counted, *args, **kwargs)

    return wrapper


def _install_player(player) -> None:
    player.Player.show = _counting(player.Player.show)


def _install_server(process, run) -> None:
    process.ProcessSampler._deliver = _timed("deliver", process.ProcessSampler._deliver, _delivered)
    process._Box.get = _timed("ask", process._Box.get)
    run.LiveRun.advance = _timed("advance", run.LiveRun.advance, lambda _args, ran: {"advance_steps": ran})


def _install_child(process, shared) -> None:
    process.step_batch = _timed("serve", process.step_batch, _batch_size)
    shared.energy_and_grad = _timed("grad", shared.energy_and_grad)


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
    time.sleep(1.0)  # sys.argv is set by now
    where = "sampler process: " if sys.argv[:1] == ["-c"] else ""
    while True:
        kinds = {t.ident: where + re.sub(r"[-_\d]+$", "", t.name) for t in threading.enumerate()}
        seen = Counter(f"{kinds.get(ident, '?')} | {_where(frame)}"
                       for ident, frame in sys._current_frames().items() if ident != me)
        with _lock:
            stacks.update(seen)
        time.sleep(1 / HZ)


def _ready(name: str, attr: str):
    module = sys.modules.get(name)
    return module if module is not None and hasattr(module, attr) else None


def _watch() -> None:
    """Wait for the modules to be imported (their last definitions in place), wrap, then write forever."""
    child = sys.argv[:1] == ["-c"]  # the sampler's process (``python -c …``); the server is ``streamlit run``
    while not ((process := _ready("ebmviz.sampling.sampler_process", "child")) and (shared := _ready(
            "ebmviz.sampling.shared", "_loop")) and (run := _ready("ebmviz.sampling.run", "sample"))):
        time.sleep(0.02)
    if child:
        _install_child(process, shared)
    else:
        _install_server(process, run)
        while not (player := _ready("ebmviz.app.player", "pace_control")):
            time.sleep(0.02)
        _install_player(player)
    out = f"{OUT}.{os.getpid()}" if child else OUT
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
            data["frames_drawn"] = dict(frames_drawn)
            data["stacks"] = dict(stacks)
        own = [(s.batches, s.batched_chains) for s in list(samplers)]
        times = os.times()
        data |= {"time": time.time(), "process_cpu_s": times.user + times.system, "samplers": len(own),
                 "sampler_batches": sum(b for b, _ in own), "sampler_batched_chains": sum(c for _, c in own)}
        with open(out + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(out + ".tmp", out)
        time.sleep(EVERY)


if OUT:
    if os.environ.get("EBMVIZ_PROBE_SWITCH"):
        sys.setswitchinterval(float(os.environ["EBMVIZ_PROBE_SWITCH"]))
    threading.Thread(target=_watch, daemon=True, name="ebmviz-probe").start()
    if HZ > 0:
        threading.Thread(target=_sample, daemon=True, name="ebmviz-probe-sampler").start()
