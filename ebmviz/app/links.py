"""Shareable links: a page's settings live in the URL's query string, so a copied link reproduces the view.

A page declares its linked widgets once as ``Field``s (widget key, name in the URL, how to read a value), calls
``restore`` before drawing them and ``publish`` after. ``restore`` applies a URL's values only when the URL is
none this session wrote (a link just opened, or edited by hand), so a widget the user changes is never
overwritten by a stale URL that a rerun request carries. Every value is checked: names are looked up in
the lists the page offers (checkpoints from the registry, energies from ``ebmviz.sampling.toy2d``), never used as
paths; numbers must be finite and in the widget's range. A bad value is named in a message and the widget
keeps its default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

WRITTEN = "links_written"  # session key: the query strings this session wrote (the last 64), as sorted item tuples
APPLIED = "links_applied"  # session key: widget keys set from the URL in this run (until ``publish``)
FRAME = "frame"  # the query name of the player's frame on show


@dataclass(frozen=True)
class Field:
    """One linked widget."""

    key: str  # the widget's session key
    name: str  # its name in the query string
    parse: Callable[[str], Any]  # URL text -> widget value; raises ValueError with the reason
    show: Callable[[Any], str] = str  # widget value -> URL text


def choice(key: str, name: str, options: Sequence[Any]) -> Field:
    """A selectbox / radio / select_slider value: one of ``options`` (compared as text)."""
    by_text = {str(o): o for o in options}

    def parse(text: str) -> Any:
        if text not in by_text:
            shown = ", ".join(list(by_text)[:8]) + (" …" if len(by_text) > 8 else "")
            raise ValueError(f"not one of the choices ({shown})")
        return by_text[text]

    return Field(key, name, parse)


def _ranged(cast: Callable[[str], Any], what: str, low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            v = cast(text)
        except ValueError:
            raise ValueError(f"not {what}") from None
        if not (math.isfinite(v) and low <= v <= high):
            raise ValueError(f"outside {low:,} … {high:,}" if cast is int else f"outside {low:g} … {high:g}")
        return v

    return parse


def integer(key: str, name: str, low: int, high: int) -> Field:
    return Field(key, name, _ranged(int, "a whole number", low, high))


def number(key: str, name: str, low: float, high: float) -> Field:
    return Field(key, name, _ranged(float, "a number", low, high), lambda v: f"{float(v):g}")


def flag(key: str, name: str) -> Field:
    def parse(text: str) -> bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("not 1 or 0")

    return Field(key, name, parse, lambda v: "1" if v else "0")


def shown(text: str, limit: int) -> str:
    """A URL value as inert text for a message: cut to ``limit`` characters and set as inline code, where Markdown
    makes no link, image, markup, icon or formula of it (a link must not put any of those on the page)."""
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return "`" + cut.replace("`", "'").replace("\n", " ") + "`"


def _ours(params: dict[str, str]) -> bool:
    """Whether this session wrote ``params`` itself. Not only the last one: a click right after a rerun that
    changed the URL can reach the server with the URL from before, and must not bring those values back."""
    return tuple(sorted(params.items())) in st.session_state.get(WRITTEN, ())


def _params() -> dict[str, str]:
    return {k: st.query_params[k] for k in st.query_params}


def restore(fields: Sequence[Field]) -> None:
    """Before the widgets: copy the URL's values into their session keys, unless this session wrote the URL.

    Unknown names in the URL are ignored; a bad value gets a warning and leaves the widget as it is.
    """
    params = _params()
    if not params or _ours(params):
        return
    applied = st.session_state.setdefault(APPLIED, set())
    for f in fields:
        if f.name not in params:
            continue
        try:
            st.session_state[f.key] = f.parse(params[f.name])
            applied.add(f.key)
        except ValueError as exc:
            st.warning(f"The link's {f.name}={shown(params[f.name], 40)} was ignored ({exc}); using the default.",
                       icon=":material/link_off:")


def from_link(key: str) -> bool:
    """Whether the widget ``key`` got its value from the URL in this run (so a page's defaults must not replace it
    before it is drawn)."""
    return key in st.session_state.get(APPLIED, set())


def publish(fields: Sequence[Field], extra: dict[str, str] | None = None) -> None:
    """After the widgets: write their current values (and ``extra``) to the URL."""
    values = {f.name: f.show(st.session_state[f.key]) for f in fields if st.session_state.get(f.key) is not None}
    values.update(extra or {})
    if values != _params():
        st.query_params.from_dict(values)
    key = tuple(sorted(values.items()))
    written = [w for w in st.session_state.get(WRITTEN, ()) if w != key][-63:]
    st.session_state[WRITTEN] = (*written, key)
    st.session_state[APPLIED] = set()


def requested_frame(limit: int) -> int | None:
    """The frame a link asked for (``?frame=N``, 0 ≤ N ≤ limit) when the URL is not this session's own; else None."""
    params = _params()
    if FRAME not in params or _ours(params):
        return None
    try:
        return integer("", FRAME, 0, limit).parse(params[FRAME])
    except ValueError as exc:
        st.warning(f"The link's frame={shown(params[FRAME], 20)} was ignored ({exc}).", icon=":material/link_off:")
        return None
