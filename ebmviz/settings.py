"""Frozen dataclass settings stored as JSON (checkpoint metadata, map headers, cache keys): one way there and back."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

S = TypeVar("S", bound="JsonSettings")


class JsonSettings:
    """``to_dict`` / ``from_dict`` for a frozen dataclass. A ``clamp`` pair is a list in JSON and a tuple of floats
    here; reading ignores unknown keys, and missing ones take the defaults (older files keep loading)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if d.get("clamp") is not None:
            d["clamp"] = list(d["clamp"])
        return d

    @classmethod
    def from_dict(cls: type[S], d: dict) -> S:
        """Inverse of ``to_dict``."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("clamp") is not None:
            kw["clamp"] = (float(kw["clamp"][0]), float(kw["clamp"][1]))
        return cls(**kw)
