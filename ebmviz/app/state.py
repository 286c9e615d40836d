"""Typed, prefixed session state: a page declares its keys once, with defaults, and reads them as attributes.

    class CascadeState(PlayerState):
        spec = Slot(None)           # st.session_state["cf_spec"] for CascadeState("cf")

Widget keys stay plain strings (``state.key("n")`` builds them with the page's prefix); a slot must
not share its name with a widget of the page (Streamlit refuses writes to a widget's key).
"""

from __future__ import annotations

from typing import Any

import streamlit as st


class Slot:
    """One session key of a ``PageState``, read and written as an attribute; ``default`` until first set."""

    def __init__(self, default: Any = None):
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: PageState | None, owner: type) -> Any:
        if obj is None:
            return self
        return st.session_state.get(obj.key(self.name), self.default)

    def __set__(self, obj: PageState, value: Any) -> None:
        st.session_state[obj.key(self.name)] = value


class PageState:
    """The session keys of one page, all named ``<prefix>_<name>``."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def forget(self, *names: str) -> None:
        """Drop these slots (they read as their defaults again)."""
        for name in names:
            st.session_state.pop(self.key(name), None)
