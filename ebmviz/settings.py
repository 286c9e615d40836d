"""Frozen dataclass settings stored as JSON (checkpoint metadata, map headers, cache keys): one way there and back."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, TypeVar

from ebmviz.storage import to_json

S = TypeVar("S", bound="JsonSettings")


class JsonSettings:
    """``to_dict`` / ``from_dict`` for a frozen dataclass. A ``clamp`` pair is a list in JSON and a tuple of floats
    here; reading ignores unknown keys, and missing ones take the defaults (older files keep loading)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``clamp`` a list)."""
        return to_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls: type[S], d: dict) -> S:
        """Inverse of ``to_dict``."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("clamp") is not None:
            kw["clamp"] = (float(kw["clamp"][0]), float(kw["clamp"][1]))
        return cls(**kw)


def check_count(name: str, value: Any, low: int = 0) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer ≥ ``low`` (a step count, a thinning, a number of levels)."""
    if not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive finite number."""
    if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def check_box(clamp: tuple[float, float] | None) -> None:
    """Raise ``ValueError`` unless ``clamp`` is None or (low, high) with low < high."""
    if clamp is not None and not clamp[0] < clamp[1]:
        raise ValueError(f"clamp must be (low, high) with low < high, got {clamp!r}")
