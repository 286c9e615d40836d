"""The lesson route's signposts: every page ends with "What to notice" and a link to the next stop.

The route is ``navigation.ROUTE`` (the pages in lesson order). A page passes three lines that read the numbers
of the run on screen — never numbers typed into the text — and ``what_to_notice`` adds the link onward.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from ebmviz.app.navigation import PAGES, ROUTE, next_stop

NOTICE_HEADER = "What to notice"


def what_to_notice(script: str, lines: Sequence[str]) -> None:
    """The end of page ``script`` (e.g. "views/langevin.py"): its ``lines`` as a short list, then the next stop."""
    st.divider()
    st.subheader(NOTICE_HEADER, anchor="what-to-notice")
    st.markdown("\n".join(f"- {line}" for line in lines))
    route_link(script)


def route_link(script: str) -> None:
    """The link onward from page ``script``: the next stop with what you will see there, or home after the last."""
    stops = [p.script for p in ROUTE]
    nxt = next_stop(script)
    if nxt is not None and script not in stops:
        st.page_link(nxt.script, label=f"Start the lesson: {nxt.title}", icon=":material/play_lesson:")
    elif nxt is not None:
        st.page_link(nxt.script, label=f"Next stop ({stops.index(script) + 2} of {len(ROUTE)}): {nxt.title} — "
                                       f"{nxt.see}", icon=":material/arrow_forward:")
    elif script in stops:
        st.page_link(PAGES[0].script, label=f"That was the last of the {len(ROUTE)} stops: back to Home",
                     icon=":material/home:")
