"""How Langevin sessions scale on one server: ``benchmarks/load.py --scaling 1,4,8,16`` (this module is its engine).

For each N, N browser sessions open the Langevin page at once at its defaults (the model, 16 chains) but with
``--steps`` steps, every one with its own seed, all press Play, and are watched for ``--seconds``. Per session:

- steps/s from the page's "Step N / K" counter: a MutationObserver in the page stamps the first appearance of each
  counter text, and the rate is (last step − first step) / (time of the last − time of the first reading after
  Play), so the browser's polling does not enter it;
- frames/s from the same observer's frame stamps (``tests/sessions.py``).

Per N: steps/s per session (min / median / max) and their total, frames/s per session (min / median), errors. Then,
in the same process, after that N's sessions have closed and with torch's threads as the app sets them
(``EBMVIZ_TORCH_THREADS``, default 1), a bare batched loop (``benchmarks/sampler.py``'s ``bare_loop``: autograd.grad,
clip, step, noise, clamp) on the same model at the total batch N × chains: its steps/s, and the sessions' total
chain-steps/s over the bare loop's (= the sessions' mean steps/s over the bare steps/s).

Where the time goes, read inside the server by ``benchmarks/server_probe`` (a ``sitecustomize`` loaded only into
this benchmark's server) over the same watch window: the shared loop's batches/s and sessions per batch, how busy
its thread is, its forward+backward per batch beside the bare loop's step at that batch, how long a session waits
for its step, each session's own CPU per step outside the loop, and the server's and the machine's CPU. With
``--profile-hz`` the probe also samples the server's thread stacks and the report lists, for the sessions' script
threads, the loop's thread and the main (websocket) thread, where they were most often over each watch.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.sampler import bare_loop
from ebmviz import catalogue
from ebmviz.app.server import limit_torch_threads
from ebmviz.sampling import LangevinConfig

PROBE_DIR = Path(__file__).resolve().parent / "server_probe"
CHAINS = 16  # the Langevin page's default
TARGET_RATIO = 2.5  # issue 35: four sessions together ≥ 2.5 × one alone
TARGET_FPS = 8.0  # … each at ≥ 8 frames/s
PROFILED = ("ScriptRunner.scriptThread", "sampler process: MainThread", "MainThread")  # kinds whose stacks print


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class ServerProbe:
    """Reads the server probe's file; ``window()`` spans a watch and keeps the counters' change over it."""

    def __init__(self, path: Path):
        self.path = path
        self.last: dict = {}  # the last window's rates

    def env(self, hz: float = 0.0, switch_interval: float | None = None) -> dict:
        """Environment for the server: the probe folder first on PYTHONPATH (its ``sitecustomize`` shadows any other
        one, e.g. Debian's, in that server alone), the probe's output file, ``hz`` stack samples a second, and the
        interpreter's switch interval when given (an experiment)."""
        paths = [str(PROBE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        switch = {} if switch_interval is None else {"EBMVIZ_PROBE_SWITCH": str(switch_interval)}
        return {"PYTHONPATH": ":".join(paths), "EBMVIZ_PROBE": str(self.path), "EBMVIZ_PROBE_HZ": str(hz), **switch}

    def read(self) -> dict:
        """The server's reading with its sampler processes' (``<file>.<pid>``) added in: their counters, CPU seconds,
        histograms and stacks summed (the server's ``time``)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        for child in self.path.parent.glob(self.path.name + ".*"):
            if child.suffix == ".tmp":
                continue
            try:
                more = json.loads(child.read_text())
            except (OSError, ValueError):
                continue
            for key, value in more.items():
                if key == "time":
                    continue
                if isinstance(value, dict):
                    merged = data.setdefault(key, {})
                    for k, v in value.items():
                        merged[k] = merged.get(k, 0) + v
                elif isinstance(value, (int, float)):
                    data[key] = data.get(key, 0) + value
        return data

    @contextlib.contextmanager
    def window(self):
        before, cpu0 = self.read(), _machine_cpu()
        yield
        time.sleep(0.3)  # one more write of the probe (every 0.25 s)
        after, cpu1 = self.read(), _machine_cpu()
        self.last = _window(before, after, (cpu1[0] - cpu0[0]) / max(cpu1[1] - cpu0[1], 1.0))


def _window(a: dict, b: dict, machine_busy: float) -> dict:
    """The probe's rates between readings a and b (empty when the probe did not run)."""
    if not a or not b or b["time"] <= a["time"]:
        return {}
    d = {k: b.get(k, 0) - a.get(k, 0) for k in b if isinstance(b[k], (int, float))}
    secs, batches = d["time"], max(d.get("serve_calls", 0), 1)
    hist = {k: v - a.get("clients_per_batch", {}).get(k, 0) for k, v in b.get("clients_per_batch", {}).items()}
    steps = max(d.get("advance_steps", 0), 1)
    drawn = a.get("frames_drawn", {})
    sent = sorted((v - drawn.get(k, 0)) / secs for k, v in b.get("frames_drawn", {}).items() if v > drawn.get(k, 0))
    return {
        "seconds": round(secs, 2),
        "sent_fps": sent,  # per session that drew frames over the window: frames its player sent, per second
        "batches_per_s": d.get("serve_calls", 0) / secs,
        "sessions_per_batch": d.get("serve_clients", 0) / batches,
        "chains_per_batch": d.get("serve_chains", 0) / batches,
        "batch_histogram": {k: v for k, v in hist.items() if v},  # sessions in a batch -> batches
        "sampler_counters": {"batches": d.get("sampler_batches", 0),  # the ProcessSamplers' own counters
                             "batched_chains": d.get("sampler_batched_chains", 0)},
        "loop_busy": d.get("serve_wall_s", 0) / secs,  # share of the window the loop thread spent serving batches
        "serve_ms": 1000 * d.get("serve_wall_s", 0) / batches,  # per batch: forward, backward and every update
        "serve_cpu_share": d.get("serve_cpu_s", 0) / max(d.get("serve_wall_s", 0), 1e-9),
        # the loop thread over the window (scheduler statistics): on a CPU, runnable waiting for a CPU, and the rest of
        # its serving time, asleep (in the server's process that was the interpreter lock; in its own, nothing)
        "loop_cpu": d.get("loop_run_s", 0) / secs,
        "loop_runq": d.get("loop_runq_s", 0) / secs,
        "loop_lock_wait": max(0.0, d.get("serve_wall_s", 0) - d.get("loop_run_s", 0) - d.get("loop_runq_s", 0)) / secs,
        "grad_ms": 1000 * d.get("grad_wall_s", 0) / batches,  # per batch: the forward and backward alone
        "grad_cpu_share": d.get("grad_cpu_s", 0) / max(d.get("grad_wall_s", 0), 1e-9),
        "ask_wait_ms": 1000 * d.get("ask_wall_s", 0) / max(d.get("ask_calls", 0), 1),
        "advance_steps_per_s": d.get("advance_steps", 0) / secs,
        "advance_wall_ms_per_step": 1000 * d.get("advance_wall_s", 0) / steps,
        "session_cpu_ms_per_step": 1000 * (d.get("advance_cpu_s", 0)) / steps,
        "server_cpu_cores": d.get("process_cpu_s", 0) / secs,
        "machine_busy": machine_busy,
        "stacks": _stacks(a.get("stacks", {}), b.get("stacks", {})),
    }


def _stacks(a: dict, b: dict, keep: int = 40) -> dict:
    """Per thread kind: its samples over the window and its ``keep`` most sampled places {place: samples}."""
    kinds: dict = {}
    for key, v in b.items():
        if (n := v - a.get(key, 0)) > 0:
            kind, place = key.split(" | ", 1)
            kinds.setdefault(kind, {})[place] = n
    return {kind: {"samples": sum(places.values()),
                   "places": dict(sorted(places.items(), key=lambda kv: -kv[1])[:keep])}
            for kind, places in sorted(kinds.items(), key=lambda kv: -sum(kv[1].values()))}


def bare_rate(model, batch: int, config: LangevinConfig, seconds: float = 6.0, repeats: int = 3) -> float:
    """Steps/s of ``bare_loop`` on ``model`` at ``batch`` chains from uniform noise: the median of ``repeats`` runs of
    about ``seconds / repeats`` each (after a warm-up)."""
    x0 = torch.rand(batch, *model.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    bare_loop(model, x0, replace(config, n_steps=3), 0)  # warm-up
    t = time.perf_counter()
    bare_loop(model, x0, replace(config, n_steps=10), 0)
    per_step = (time.perf_counter() - t) / 10
    k = max(10, round(seconds / repeats / per_step))
    rates = []
    for r in range(repeats):
        t = time.perf_counter()
        bare_loop(model, x0, replace(config, n_steps=k), r)
        rates.append(k / (time.perf_counter() - t))
    return statistics.median(rates)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used, all its threads, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_beside(server_pid: int, model, batch: int, config: LangevinConfig, seconds: float) -> dict:
    """``bare_rate`` with what else ran meanwhile: the server's CPU (cores) and the share of all CPUs busy (the bare
    loop's own core included), so an idle server can be checked."""
    cpu, machine, t = process_cpu_s(server_pid), _machine_cpu(), time.perf_counter()
    rate = bare_rate(model, batch, config, seconds)
    wall, machine_now = time.perf_counter() - t, _machine_cpu()
    return {"steps_per_s": rate, "server_cpu_cores": (process_cpu_s(server_pid) - cpu) / wall,
            "machine_busy": (machine_now[0] - machine[0]) / max(machine_now[1] - machine[1], 1.0)}


def bare_model(name: str):
    """The model as the app loads it, its default sampler settings, and the torch threads the app would use."""
    threads = limit_torch_threads()
    model = catalogue.load(name)
    return model, LangevinConfig.from_dict((model.meta or {}).get("sampler", {})), threads  # as the page reads it


def summarise(n: int, sessions: list, errors: int, bare: dict, probe: dict) -> dict:
    """One N's row: the sessions' rates and the bare loop's (``bare_beside``)."""
    bare_steps_per_s = bare["steps_per_s"]
    rates = sorted(s.steps_per_s for s in sessions)
    fps = sorted(s.fps for s in sessions)
    total = sum(rates)
    return {"n": n, "steps_per_s": {"min": rates[0], "median": statistics.median(rates), "max": rates[-1]},
            "total_steps_per_s": total, "fps": {"min": fps[0], "median": statistics.median(fps)},
            "errors": errors, "batch": n * CHAINS, "bare_steps_per_s": bare_steps_per_s,
            "over_bare": total / n / bare_steps_per_s if bare_steps_per_s else float("nan"), "bare": bare,
            "sessions": [s.summary() for s in sessions], "probe": probe}


def browser_ms_per_frame(row: dict) -> float:
    """The browsers' CPU per frame they showed over a watch (ms): their cores over the sessions' summed fps."""
    shown = sum(s["fps"] for s in row["sessions"])
    return 1000 * row["browser_cpu_cores"] / shown if shown else float("nan")


def report(rows: list[dict], threads: int) -> dict:
    """Print the table, the issue's targets and the probe's breakdown; return the targets' verdicts."""
    print(f"\n{'N':>3}  {'steps/s per session min / med / max':>36}  {'total':>7}  {'fps min / med':>14}  "
          f"{'errors':>6}  {'bare steps/s @ batch':>21}  {'total / bare':>12}  {'server total':>12}  "
          f"{'sent fps min / med':>18}")
    for r in rows:
        s, f = r["steps_per_s"], r["fps"]
        sent = r["probe"].get("sent_fps") or [float("nan")]
        print(f"{r['n']:>3}  {s['min']:>12.1f} / {s['median']:>7.1f} / {s['max']:>7.1f}  "
              f"{r['total_steps_per_s']:>7.1f}  {f['min']:>6.1f} / {f['median']:>5.1f}  {r['errors']:>6}  "
              f"{r['bare_steps_per_s']:>11.1f} @ {r['batch']:<7}  {r['over_bare']:>12.2f}  "
              f"{r['probe'].get('advance_steps_per_s', float('nan')):>12.1f}  "
              f"{sent[0]:>8.1f} / {statistics.median(sent):>5.1f}")
    print("bare loops beside: server CPU " + ", ".join(f"N={r['n']} {r['bare']['server_cpu_cores']:.2f}" for r in rows)
          + " cores; all CPUs busy " + ", ".join(f"{100 * r['bare']['machine_busy']:.0f}%" for r in rows))
    print(f"(bare loop: one process, {threads} torch thread(s) as the app; total / bare = the sessions' chain-steps/s "
          "over the bare loop's at the same total batch; server total = the steps every session's LiveRun.advance "
          "made over the watch, read by the probe, a check on the counters' total; fps = distinct frames each browser "
          "showed, sent fps = frames each session's player drew and sent, read by the probe: a browser short of CPU "
          "shows several frames that reach it together as one)")
    print("browsers (every Chromium process) over each watch: " + "; ".join(
        f"N={r['n']} {r['browser_cpu_cores']:.2f} cores, {browser_ms_per_frame(r):.0f} ms per frame shown" for r in rows
        if "browser_cpu_cores" in r))
    print(f"\n{'N':>3}  {'batches/s':>9}  {'sess/batch':>10}  {'loop busy':>9}  {'serve ms':>8}  {'fwd+bwd ms':>10}  "
          f"{'bare ms/step':>12}  {'ask wait ms':>11}  {'session CPU ms/step':>19}  {'server CPU':>10}  "
          f"{'machine busy':>12}  {'loop: cpu / runq / asleep':>25}")
    for r in rows:
        p = r["probe"]
        if not p:
            print(f"{r['n']:>3}  (no probe reading)")
            continue
        bare_ms = 1000 / r["bare_steps_per_s"] if r["bare_steps_per_s"] else float("nan")
        print(f"{r['n']:>3}  {p['batches_per_s']:>9.1f}  {p['sessions_per_batch']:>10.2f}  "
              f"{100 * p['loop_busy']:>8.0f}%  {p['serve_ms']:>8.2f}  {p['grad_ms']:>10.2f}  {bare_ms:>12.2f}  "
              f"{p['ask_wait_ms']:>11.2f}  "
              f"{p['session_cpu_ms_per_step']:>19.2f}  {p['server_cpu_cores']:>6.2f} cpu  "
              f"{100 * p['machine_busy']:>11.0f}%  {100 * p['loop_cpu']:>8.0f}% / {100 * p['loop_runq']:>3.0f}% / "
              f"{100 * p['loop_lock_wait']:>3.0f}%")
    print("(probe inside the server over each watch: serve = one batch's forward, backward and updates on the loop's "
          "thread; ask wait = a session's wait for its step; session CPU = a session thread's own CPU per step in "
          "LiveRun.advance; server CPU in cores; machine busy = all CPUs; loop = the loop thread's share of the watch "
          "on a CPU, runnable waiting for a CPU, and serving but asleep)")
    for r in rows:
        for kind, seen in r["probe"].get("stacks", {}).items():
            if kind in PROFILED:
                print(f"\nN={r['n']}, {kind} ({seen['samples']} samples; app frames > innermost frame):")
                for place, n in list(seen["places"].items())[:10]:
                    print(f"  {100 * n / seen['samples']:5.1f}%  {place}")
    verdict = {}
    by_n = {r["n"]: r for r in rows}
    if 1 in by_n and 4 in by_n and by_n[1]["total_steps_per_s"]:
        ratio = by_n[4]["total_steps_per_s"] / by_n[1]["total_steps_per_s"]
        fps = [s["fps"] for s in by_n[4]["sessions"]]
        verdict = {"n4_over_n1": ratio, "n4_all_fps_at_least_8": all(v >= TARGET_FPS for v in fps)}
        print(f"\nN=4 total / N=1 total: {ratio:.2f}× (target ≥ {TARGET_RATIO}×; 0.49× before the shared sampler); "
              f"N=4 sessions at ≥ {TARGET_FPS:g} frames/s: {sum(v >= TARGET_FPS for v in fps)} of {len(fps)} "
              f"({', '.join(f'{v:.1f}' for v in fps)}); sent: "
              f"{', '.join(f'{v:.1f}' for v in by_n[4]['probe'].get('sent_fps', []))}")
        if 1 in by_n and "browser_cpu_cores" in by_n[1]:
            need = 4 * TARGET_FPS * browser_ms_per_frame(by_n[1]) / 1000
            verdict["n4_browsers_need_cores"] = need
            print(f"4 browsers at {TARGET_FPS:g} frames/s would need {need:.2f} cores at N=1's browser CPU per frame, "
                  f"beside the server's {by_n[4]['probe'].get('server_cpu_cores', float('nan')):.2f} at N=4, on "
                  f"{os.cpu_count()} CPUs")
    if 16 in by_n:
        r = by_n[16]
        served = r["probe"].get("advance_steps_per_s", float("nan")) / 16 / r["bare_steps_per_s"]
        verdict["n16_over_bare_server"] = served
        print(f"N=16 total against the bare loop at batch {r['batch']}: {served:.2f}× by the server's count of steps "
              f"made, {r['over_bare']:.2f}× by the browsers' step counters (a starved browser reads its counter too "
              "seldom for a rate) (aim ≥ 0.7×)")
    return verdict
