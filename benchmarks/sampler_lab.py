"""The sampler lab's samplers on one energy at the page's defaults: ESS per gradient evaluation, R-hat, acceptance and
the distance to the exact density, in one table.

Defaults as the page opens: 500 particles spread over the box, 300 steps, seed 0, each sampler's default settings
(``SamplerChoice.default``). The diagnostics read the second half of the steps (the annealed run: its held part),
as the page does. The last row is the floor: exact draws from the grid, pooled like a run's, scored the same way.

    python benchmarks/sampler_lab.py [--energy mix8] [--start uniform|point] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ebmviz.analysis.sampler_lab import KINDS, POOL, REFERENCE, SamplerChoice, judge  # noqa: E402
from ebmviz.sampling import LiveRun  # noqa: E402
from ebmviz.sampling.diagnostics import binned_kl, mmd  # noqa: E402
from ebmviz.sampling.toy2d import LAB_ENERGIES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--energy", default="mix8", choices=sorted(LAB_ENERGIES))
    ap.add_argument("--start", default="uniform", choices=["uniform", "point"])
    ap.add_argument("--particles", type=int, default=500)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    toy = LAB_ENERGIES[args.energy]
    print(f"{toy.title}, {args.particles} particles from '{args.start}', {args.steps} steps, seeds {args.seeds}; "
          "mean ± spread over seeds")
    head = ("sampler", "settings", "accept", "min ESS", "ESS/grad", "R-hat max", "MMD²", "binned KL", "seconds")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for kind in KINDS:
        ch = SamplerChoice.default(kind, toy)
        cfg = ch.config(args.steps)
        rows = []
        for seed in args.seeds:
            t = time.perf_counter()
            run = LiveRun(toy.energy, toy.starts(args.particles, seed, args.start), cfg, seed, frame_format="float32")
            run.advance()
            tr = run.trajectory()
            seconds = time.perf_counter() - t
            s = judge(tr.frames, tr.energy, tr.accept, cfg, toy)
            rows.append((s.acceptance if s.acceptance is not None else np.nan, s.min_ess, s.ess_per_grad, s.max_rhat,
                         s.distance["MMD²"], s.distance["binned KL"], seconds))
        rows = np.asarray(rows)
        m, sd = rows.mean(0), rows.std(0)  # acceptance stays NaN for the unadjusted samplers
        settings = {"HMC": f"ε={ch.step_size:g}, L={ch.n_leapfrog}", "JKO": f"τ={ch.step_size:g}, m={ch.inner_steps}",
                    "Annealed": f"s={ch.step_size:g}, T₀={ch.t_start:g}→1"}.get(kind, f"s={ch.step_size:g}")
        cells = ["—" if np.isnan(m[0]) else f"{m[0]:.2f}", f"{m[1]:.0f}", f"{m[2]:.2e}", f"{m[3]:.2f}",
                 f"{m[4]:.4f} ± {sd[4]:.4f}", f"{m[5]:.3f} ± {sd[5]:.3f}", f"{m[6]:.2f}"]
        print(" | ".join([kind, settings, *cells]))
    grid = toy.grid()
    xe, ye = grid.edges
    width = min(toy.box[1] - toy.box[0], toy.box[3] - toy.box[2])
    floor = [(mmd(grid.draw(POOL, seed + 100), grid.draw(REFERENCE, 0), width / 20),
              binned_kl(grid.draw(POOL, seed + 100), grid.prob, xe, ye)) for seed in args.seeds]
    f = np.mean(floor, 0)
    print(" | ".join(["exact draws", f"{POOL} from the grid", "—", "—", "—", "—", f"{f[0]:.4f}", f"{f[1]:.3f}", "—"]))


if __name__ == "__main__":
    main()
