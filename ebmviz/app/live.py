"""Session state of a live Langevin run: one ``LiveRun`` per page, rebuilt when settings change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ebmviz.sampling import LangevinConfig, LiveRun


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; a new spec means a new chain (Reset)."""

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


class LiveState:
    """Typed view of the page's session keys (all prefixed with the page name)."""

    def __init__(self, prefix: str):
        self.p = prefix

    def _k(self, name: str) -> str:
        return f"{self.p}_{name}"

    @property
    def run(self) -> LiveRun | None:
        return st.session_state.get(self._k("run"))

    @property
    def spec(self) -> RunSpec | None:
        return st.session_state.get(self._k("spec"))

    @property
    def playing(self) -> bool:
        return bool(st.session_state.get(self._k("playing"), False))

    @playing.setter
    def playing(self, value: bool) -> None:
        st.session_state[self._k("playing")] = value

    def reset(self, spec: RunSpec, run: LiveRun) -> None:
        st.session_state[self._k("spec")] = spec
        st.session_state[self._k("run")] = run
        self.playing = False

    def clear(self) -> None:
        for name in ("spec", "run"):
            st.session_state.pop(self._k(name), None)
        self.playing = False


def frame_at(run: LiveRun, index: int) -> tuple[np.ndarray, int]:
    """Recorded frame ``index`` (clipped to what exists) and its step number."""
    i = int(np.clip(index, 0, len(run.frames) - 1))
    return run.frames[i], run.frame_steps[i]
