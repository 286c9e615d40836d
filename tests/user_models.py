"""The fixture user models of ``tests/fixtures/`` as specs, and a way to hand them to the app as ``ebmviz run`` does.

``RGB`` is a 3×32×32 energy with its colour-digit images, ``GRAY`` a 1×28×28 one with digits; ``serve(monkeypatch,
*specs)`` puts specs in ``$EBMVIZ_USER_MODELS`` (what ``ebmviz run --model …`` passes the app's process).
"""

import json
from pathlib import Path

from ebmviz.user_model import ENV, UserSpec

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENERGY_FILE = FIXTURES / "user_energy.py"
RGB = UserSpec(f"{ENERGY_FILE}:build", str(FIXTURES / "rgb_energy.safetensors"), str(FIXTURES / "colour_digits.npz"),
               "rgb-digits")
GRAY = UserSpec(f"{ENERGY_FILE}:build_gray", str(FIXTURES / "gray_energy.safetensors"),
                str(FIXTURES / "gray_digits.npz"), "gray-digits")


def serve(monkeypatch, *specs: UserSpec) -> None:
    """Offer ``specs`` to the app in this test, as ``ebmviz run --model …`` would."""
    monkeypatch.setenv(ENV, json.dumps([s.to_dict() for s in specs]))
