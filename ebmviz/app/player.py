"""One player for every animated view: Play / Pause / Step / Reset, a scrubber, and frames drawn live.

A page gives the player a *recording* — frames 0 … n−1 that exist now, and whether more will come —
and a ``draw(index, view)`` that shows one frame in the view's placeholders. While playing, a
Streamlit fragment reruns every 0.1 s and, for up to ``WINDOW`` seconds each time, moves one frame on:
through frames already recorded at a watchable pace, then by asking the recording for more (a live
Langevin run samples its next steps). Frames go straight into placeholders: no full-page rerun per
frame. When the recording ends, one full rerun draws the finished page.

Why one second: a page's other fragments (the Langevin page's live traces) only get their turn between two windows.
Three-second windows were tried: the browser's timer asks for each fragment run, and a browser short of CPU (four
Chromium tabs on the server's two cores, ``benchmarks/load.py --scaling``) asks late, so four sessions sent 7.7–8.1
frames/s of the 8.3 their pace asks for where one-second windows send 6.0–7.0; but the traces then stopped updating
while playing. A Pause or any widget stops a window at its next frame either way (0.3–0.9 s from the click).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import streamlit as st

from ebmviz.app.state import PageState, Slot
from ebmviz.sampling import LiveRun

SEEK_SECONDS = 20.0  # most sampling one request does to reach a link's frame (the rest is Play's)
WINDOW = 1.0  # s of frames one fragment run draws before it returns and the browser asks for the next (see above)
PACES = (0.12, 0.25, 0.5)  # seconds per frame the pace control offers; the slowest lets a teacher narrate each step
MAX_SLOW_FRAMES = 1_000  # slow motion records every step only while a run has fewer frames than this


class Recording(Protocol):
    def __len__(self) -> int: ...  # frames available now

    @property
    def done(self) -> bool: ...  # True when no more frames will come

    def advance(self, max_seconds: float | None = None) -> None: ...  # record more (a finished one does nothing)


@dataclass(frozen=True)
class Recorded:
    """A finished recording of ``n`` frames (a precomputed timeline)."""

    n: int
    done: bool = True

    def __len__(self) -> int:
        return self.n

    def advance(self, max_seconds: float | None = None) -> None:
        pass


@dataclass(frozen=True)
class Live:
    """A ``LiveRun`` as it samples: each ``advance`` runs ``steps`` more steps (or fewer, past ``max_seconds``) and
    records a frame after each of them — every step at ``steps`` = 1 (slow motion), even when the run's config
    records less often; so one frame on screen is ``steps`` steps of the chain."""

    run: LiveRun
    steps: int

    def __len__(self) -> int:
        return len(self.run.frames)

    @property
    def done(self) -> bool:
        return self.run.done

    def advance(self, max_seconds: float | None = None) -> None:
        every = self.run.config.record_every
        if self.steps < every and len(self.run.frames) < MAX_SLOW_FRAMES:
            every = self.steps
        self.run.record_every = every
        self.run.advance(max_steps=self.steps, max_seconds=max_seconds)


class PlayerState(PageState):
    position = Slot(0)  # index of the frame on show
    playing = Slot(False)
    shown_at = Slot(0.0)  # time.monotonic() when the frame on show was first drawn while playing

    def rewind(self) -> None:
        self.position, self.playing = 0, False


@dataclass(frozen=True)
class FrameView:
    """Where ``draw`` puts a frame: placeholders above, in and below the picture."""

    status: Any  # st.empty(): one line saying where the playback is
    picture: Any  # st.empty(): the frame itself
    below: Any  # st.empty(): what only a paused frame shows (charts are too slow to redraw per frame)
    playing: bool


class FramePanes:
    """Presentation mode's frame area: the grid and its trace side by side in the player's picture placeholder.

    The panes are made at the first frame of each fragment run and the trace is drawn then (about once a second
    while playing: a plotly chart is too slow to redraw per frame) and on every paused frame."""

    def __init__(self, widths: tuple[float, float] = (1.0, 1.0)):
        self.widths, self.view, self.grid, self.trace = widths, None, None, None

    def __call__(self, out: FrameView) -> tuple[Any, Any, bool]:
        """(grid placeholder, trace placeholder, whether to draw the trace now) for this frame."""
        fresh = self.view is not out
        if fresh:
            with out.picture.container():
                left, right = st.columns(self.widths, gap="medium")
            self.view, self.grid, self.trace = out, left.empty(), right.empty()
        return self.grid, self.trace, fresh or not out.playing


class Player:
    """The controls and the frame area of one page's animation; its state lives in ``state``."""

    def __init__(self, state: PlayerState, recording: Recording):
        self.state, self.recording = state, recording

    def controls(self, on_reset: Callable[[], Recording] | None = None) -> None:
        """Play, Pause, Step and Reset buttons (keys ``<prefix>_play`` …).

        Reset rewinds to the first frame; ``on_reset`` may start a new recording and return it.
        """
        s, rec = self.state, self.recording
        b = st.columns(4)
        if b[0].button("Play", icon=":material/play_arrow:", key=s.key("play"), width="stretch"):
            if rec.done and s.position >= len(rec) - 1:
                s.position = 0  # a finished recording plays again from its start
            s.playing = not (rec.done and len(rec) < 2)
        if b[1].button("Pause", icon=":material/pause:", key=s.key("pause"), width="stretch"):
            s.playing = False
        if b[2].button("Step", icon=":material/skip_next:", key=s.key("step"), width="stretch"):
            s.playing = False
            s.position = self._next(min(s.position, len(rec) - 1))
        if b[3].button("Reset", icon=":material/restart_alt:", key=s.key("reset"), width="stretch"):
            if on_reset is not None:
                self.recording = on_reset()
            s.rewind()

    def controls_and_pace(self, on_reset: Callable[[], Recording] | None = None) -> float:
        """``controls`` with ``pace_control`` beside them on one row; returns the pace (seconds per frame)."""
        buttons, pace_at = st.columns([3, 1], vertical_alignment="bottom")
        with buttons:
            self.controls(on_reset)
        with pace_at:
            return pace_control(self.state)

    def seek(self, index: int | None) -> None:
        """Show frame ``index`` paused, recording up to it first (a link's frame) for at most ``SEEK_SECONDS``; None
        does nothing. A frame not reached in that time is a message, and the player shows the last one recorded."""
        if index is None:
            return
        deadline = time.monotonic() + SEEK_SECONDS
        while index >= len(self.recording) and not self.recording.done and time.monotonic() < deadline:
            self.recording.advance(max_seconds=max(0.0, deadline - time.monotonic()))
        if index >= len(self.recording) and not self.recording.done:
            st.info(f"The link's frame {index:,} is not recorded yet: {SEEK_SECONDS:g} s of sampling reached frame "
                    f"{len(self.recording) - 1:,}. Press Play to go on.", icon=":material/hourglass_bottom:")
        self.state.position, self.state.playing = min(index, len(self.recording) - 1), False

    def _next(self, index: int, max_seconds: float | None = None) -> int:
        """The frame after ``index``, recording more when ``index`` is the last one so far (Step records a
        whole ``advance``; playback stops recording after ``max_seconds`` to draw in time)."""
        if index < len(self.recording) - 1:
            return index + 1
        if not self.recording.done:
            self.recording.advance(max_seconds)
        return len(self.recording) - 1

    def show(self, draw: Callable[[int, FrameView], Any], scrub_label: str = "Recorded frame",
             frame_seconds: float = PACES[0], on_pause: Callable[[int], None] | None = None) -> Any:
        """The frame area: a scrubber while paused, frames drawn live while playing; returns ``draw``'s last value.
        Each frame stays up at least ``frame_seconds`` (at most 0.5: ``pace_control``'s values), recorded or live.
        ``on_pause(index)`` runs whenever a paused frame is shown (a page writes it into its link)."""
        s, rec = self.state, self.recording

        @st.fragment(run_every=0.1 if s.playing else None)
        def frames():
            index = min(s.position, len(rec) - 1)
            if not s.playing and len(rec) > 1:
                # a drag sets the position; the key names the position, so a slider made afresh shows
                # wherever Step, Reset or playback left it
                index = st.slider(scrub_label, 0, len(rec) - 1, index, key=s.key(f"scrub_{len(rec)}_{index}"),
                                  help="Scrub through the recorded frames; Play continues from here")
                s.position = index
            if not s.playing and on_pause is not None:
                on_pause(index)
            view = FrameView(st.empty(), st.empty(), st.empty(), s.playing)
            start = time.monotonic()
            # the frame on show has been up since it was first drawn, before this rerun: pace from then
            drawn_at = s.shown_at if 0 < start - s.shown_at < 1.0 else start
            result = draw(index, view)
            while s.playing and time.monotonic() - start < WINDOW:
                if index >= len(rec) - 1 and rec.done:
                    s.playing = False
                    # the last frame stays up for its own frame time (a rerun at once can overtake it on the way
                    # to the browser); then a full rerun stops the fragment's timer and draws the finished page
                    time.sleep(max(0.0, drawn_at + frame_seconds - time.monotonic()))
                    st.rerun()
                index = self._next(index, max_seconds=0.5)
                s.position = index
                # one frame per frame_seconds (drawing included); a live frame that took longer to sample is shown
                # as soon as it comes
                time.sleep(max(0.0, drawn_at + frame_seconds - time.monotonic()))
                s.shown_at = drawn_at = time.monotonic()
                result = draw(index, view)
            if s.playing and index < len(rec) - 1:
                # a recorded frame drawn as the window closes stays up for its time: else the rerun's redraw of it
                # and the next frame can reach the browser together, and this one is never seen
                time.sleep(max(0.0, drawn_at + frame_seconds - time.monotonic()))
            return result

        return frames()


def pace_control(state: PlayerState, normal: float = PACES[0], fastest: float | None = None) -> float:
    """A "Pace" slider: the seconds each frame stays up while playing (for ``Player.show``), from the page's
    ``normal`` pace (or ``fastest``, when a page offers a quicker one) down to the slowest of ``PACES``; it starts
    at ``normal``."""
    options = (*((fastest,) if fastest is not None and fastest < normal else ()), normal,
               *(p for p in PACES if p > normal))
    return st.select_slider("Pace", options, value=normal, key=state.key("pace"),
                            format_func=lambda v: f"{v:g} s per frame",
                            help="How long each frame stays on screen while playing: slow it down to narrate")
