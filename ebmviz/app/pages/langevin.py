"""Session state of the Langevin page's live run: one ``LiveRun``, rebuilt when the settings change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ebmviz.analysis import zoo
from ebmviz.analysis.metrics import saturation as saturation
from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.export import trajectory_arrays as trajectory_arrays
from ebmviz.sampling import LangevinConfig, LiveRun, diagnostics
from ebmviz.sampling.starts import START_KINDS as START_KINDS


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; a new spec means a new chain (as Reset)."""

    model: str
    device: str
    config: LangevinConfig
    start: str
    n_chains: int
    seed: int
    upload_digest: str | None = None
    data_noise: float = 0.3


def digest(raw: bytes | None) -> str | None:
    return None if raw is None else hashlib.sha1(raw).hexdigest()[:12]


class LiveState(PlayerState):
    spec = Slot(None)  # the RunSpec of ``run``
    run = Slot(None)  # the LiveRun being played
    comparing = Slot(False)  # the short- vs long-run comparison was asked for (the button is "compare")

    def reset(self, spec: RunSpec, run: LiveRun) -> None:
        self.spec, self.run = spec, run
        self.rewind()

    def clear(self) -> None:
        self.forget("spec", "run")
        self.rewind()


@dataclass(frozen=True)
class Diagnostics:
    """Mixing numbers of the energy traces' second half (the first half is burn-in)."""

    steps: int  # energies per chain that were read
    chains: int
    ess: float  # ArviZ bulk ESS of the energy (NaN when it cannot be estimated)
    rhat: float  # split R-hat across chains
    ess_per_grad: float  # ESS per gradient evaluation of the read steps
    acceptance: float | None  # MALA's mean acceptance over the same steps; None for ULA
    autocorrelation: np.ndarray  # (L ≤ 41,) of the energy, lags 0 … L − 1


def second_half_diagnostics(energy: np.ndarray, accept: np.ndarray | None) -> Diagnostics:
    """``energy`` (T+1, B) and ``accept`` (T, B) or None of a run: ESS, R-hat, acceptance and autocorrelation of
    its second half."""
    kept = energy[len(energy) // 2:]  # (t/2, B)
    ess = diagnostics.ess(kept)
    evals = max(1, (kept.shape[0] - 1) * kept.shape[1])
    return Diagnostics(kept.shape[0], kept.shape[1], ess, diagnostics.rhat(kept), ess / evals,
                       diagnostics.acceptance(accept, len(energy) // 2), diagnostics.autocorrelation(kept, max_lag=40))


def long_run_check(name: str) -> str:
    """The long-run check stored for checkpoint ``name`` (``benchmarks/long_run.py --store``) as a sentence with a
    trailing space; '' when none is stored for its present file."""
    m = zoo.measured(name, "long_run")
    if m is None:
        return ""
    return (f"Measured for **{name}** on {m['chains']} chains from noise at {m['multiple']} × {m['steps']} steps: "
            f"{m['top_count']} ended as {m['top_digit']}s, and {100 * m['saturated']:.1f}% of pixels were saturated "
            f"(real digits: {100 * m['data_saturated']:.1f}%) (`{m['source']}`). ")
