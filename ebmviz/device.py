"""Device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def pick(pref: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; any other value is used as given."""
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(pref)


def available() -> list[str]:
    """Devices this machine can use, for a picker: always 'cpu', plus 'cuda' / 'mps' if present."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds code that uses the legacy global RNG)
    torch.manual_seed(seed)
