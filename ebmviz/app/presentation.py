"""Presentation mode: one sidebar toggle (and the link parameter ``present=1``) that fits the animated pages to a
1280×720 projector — the grid and its main trace side by side, captions large enough for the back of a room,
secondary panels folded away.

Pages ask ``presenting()`` and lay themselves out; ``stylesheet()`` (from ``app.py``) tightens Streamlit's margins
and enlarges its small print while the mode is on.
"""

from __future__ import annotations

import streamlit as st

PRESENT = "present"  # the toggle's session key and its name in a link
GRID_FONT_PX = 13  # the labelled grids' caption size on a laptop screen (image pixels)
PRESENT_FONT_PX = 24  # … in presentation mode: shown at ≥ 16 CSS px on a 1280×720 screen (tests/test_presentation)

_CSS = """
<style>
[data-testid="stMainBlockContainer"] {padding-top: 3.6rem; padding-bottom: 1rem;
                                      padding-left: 1.5rem; padding-right: 1.5rem; max-width: 100%;}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {font-size: 1rem;}
[data-testid="stImageCaption"] {font-size: 1rem;}
h1 {font-size: 2rem !important; padding-top: 0 !important;}
</style>
"""


def presenting() -> bool:
    """Whether presentation mode is on for this session."""
    return bool(st.session_state.get(PRESENT, False))


def link_asks_for_it() -> bool:
    """Whether the address asks for presentation mode (read before the page config, to start with the sidebar
    folded)."""
    return st.query_params.get(PRESENT, "") in ("1", "true", "yes", "on")


def toggle() -> None:
    """The sidebar's toggle."""
    st.toggle("Presentation mode", key=PRESENT,
              help="For a projector: pages fit 1280×720, large captions, the grid beside its trace, side panels "
                   "folded away. Add present=1 to a link to open it this way.")


def stylesheet() -> None:
    """Streamlit's margins and small print for a projector, while the mode is on."""
    if presenting():
        st.html(_CSS)


def grid_font_px() -> int:
    """The caption size of labelled grids in this mode (image pixels)."""
    return PRESENT_FONT_PX if presenting() else GRID_FONT_PX
