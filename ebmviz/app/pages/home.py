"""What the home page shows, computed here: the view (views/home.py) only lays it out."""

from __future__ import annotations

from ebmviz import checkpoints as checkpoints
from ebmviz.models import KINDS as KINDS
