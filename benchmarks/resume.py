"""A training run killed with SIGKILL and resumed, against the same run never stopped: the loss curves.

Runs ``python -m training <method>`` (default: the short-run EBM at its own settings, fewer iterations) twice in
separate processes with one thread each: once to the end, once killed with SIGKILL as soon as its resumable state
has passed --kill-after iterations and then continued with --resume. Prints the history around the kill (the killed
run's rows up to its last state, the resumed run's rows after it, the unbroken run's rows for both), the largest
difference between the two final histories and weights, and with --html draws the curves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ebmviz import checkpoints  # noqa: E402


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "training", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def state_info(path: Path) -> dict | None:
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["info"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--method", default="shortrun")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--kill-after", type=int, default=150, help="kill once the state has passed this iteration")
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--html", default="", help="draw the loss curves into this HTML file (plotly)")
    ap.add_argument("extra", nargs="*", help="more flags for the trainer (after --)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ebmviz-resume-"))

    def flags(name: str) -> list[str]:
        return [args.method, "--out", str(work / f"{name}.safetensors"), "--run-dir", str(work / name),
                "--iterations", str(args.iterations), "--checkpoint-every", str(args.checkpoint_every),
                "--log-every", "5", "--sample-every", "100000", "--minutes", "0", *args.extra]

    t0 = time.time()
    if start(flags("unbroken")).wait() != 0:
        print("the unbroken run failed")
        return 1
    killed = start(flags("killed"))
    state = work / "killed" / "state.safetensors"
    while killed.poll() is None and ((state_info(state) or {}).get("iteration", -1) < args.kill_after):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    info = state_info(state)
    if killed.returncode != -signal.SIGKILL or info is None:
        print(f"the run ended (exit {killed.returncode}) before it could be killed; lower --kill-after")
        return 1
    at = info["iteration"]
    before = info["history"]  # the killed run's history, as its last state holds it
    if start([*flags("killed"), "--resume"]).wait() != 0:
        print("the resumed run failed")
        return 1
    a, b = checkpoints.load(work / "unbroken.safetensors"), checkpoints.load(work / "killed.safetensors")
    ha, hb = a.meta["history"], b.meta["history"]
    key = "loss" if "loss" in ha[0] else next(k for k in ha[0] if k not in ("iteration", "minutes"))
    step = lambda r: int(r.get("iteration", r.get("round", r.get("epoch"))))  # noqa: E731
    print(f"{args.method}: {args.iterations} iterations; killed with SIGKILL with its state at iteration {at}, "
          f"resumed from there ({time.time() - t0:.0f} s in all)")
    print(f"{'iteration':>9}  {'unbroken ' + key:>16}  {'killed run':>12}  {'resumed run':>12}")
    shown = [r for r in ha if abs(step(r) - at) <= 3 * 5]
    for r in shown:
        k = next((x[key] for x in before if step(x) == step(r)), None)
        s = next((x[key] for x in hb if step(x) == step(r) and step(r) >= at), None)
        fmt = lambda v: f"{v:12.6f}" if v is not None else f"{'—':>12}"  # noqa: E731
        print(f"{step(r):9d}  {r[key]:16.6f}  {fmt(k)}  {fmt(s)}")
    diff_h = max(abs(x[k] - y[k]) for x, y in zip(ha, hb, strict=True) for k in x if k != "minutes")
    diff_w = max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                                strict=True))
    print(f"largest difference, unbroken vs killed-and-resumed: history {diff_h:.3g}, weights {diff_w:.3g} "
          f"({len(ha)} history rows each)")
    if args.html:
        import plotly.graph_objects as go

        after = [r for r in hb if step(r) >= at]
        fig = go.Figure([
            go.Scatter(x=[step(r) for r in ha], y=[r[key] for r in ha], name="never stopped",
                       line={"color": "lightgray", "width": 6}),
            go.Scatter(x=[step(r) for r in before], y=[r[key] for r in before], name="killed run",
                       line={"color": "crimson", "width": 2}),
            go.Scatter(x=[step(r) for r in after], y=[r[key] for r in after], name="resumed",
                       line={"color": "royalblue", "width": 2, "dash": "dash"}),
        ])
        fig.add_vline(x=at, line_dash="dot")
        fig.update_layout(title=f"{args.method}: SIGKILL, then --resume from the state at iteration {at}",
                          xaxis_title="iteration", yaxis_title=key, template="plotly_white")
        fig.write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0 if diff_w == 0 else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
