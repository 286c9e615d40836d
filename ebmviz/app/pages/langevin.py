"""Session state of the Langevin page's live run: one ``LiveRun``, rebuilt when the settings change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ebmviz.app.player import PlayerState
from ebmviz.app.state import Slot
from ebmviz.sampling import LangevinConfig, LiveRun


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
