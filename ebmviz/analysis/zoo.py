"""Every shipped model's numbers, computed once and stored: evaluator quality of its samples and the AUROC of its
energy against each out-of-distribution set (``ebmviz.analysis.anomaly``). ``python -m training scores`` writes them to
``checkpoints/scores.json`` (plain JSON: read without unpickling anything); the model-zoo and anomaly pages read
them there instead of computing at page load.

Each entry records the checkpoint's size and SHA-256 prefix, so a file that changed after scoring is flagged
(``Scores.stale``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmviz.analysis import metrics
from ebmviz.checkpoints import CheckpointError, checkpoint_dir, resolve

BATCH = 250  # samples per draw; batch i is seeded seed + i (as benchmarks/quality.py)


def scores_path(folder: Path | None = None) -> Path:
    return (folder or checkpoint_dir()) / "scores.json"


def fingerprint(path: Path) -> str:
    """Size and SHA-256 prefix of a file: "<bytes>:<16 hex digits>" (hashed again only when its size or
    modification time changes)."""
    st = Path(path).stat()
    return _fingerprint(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{size}:{h.hexdigest()[:16]}"


@dataclass
class ModelScores:
    """One checkpoint's stored numbers."""

    fingerprint: str  # of the file that was scored
    parameters: int | None = None  # trainable numbers of the model (its nn.Parameters)
    quality: dict[str, Any] | None = None  # metrics.Quality fields of n samples, with "seed" and "grad_evals"
    auroc: dict[str, float] | None = None  # set name -> AUROC of −E against held-out digits
    further_auroc: dict[str, dict[str, float]] | None = None  # the same for each of the model's further energies
    notes: dict[str, str] = field(default_factory=dict)  # how each part was computed
    # what -> numbers a benchmark measured on this very file, with "source" (the command and date); the pages
    # quote them instead of typing a measurement into a sentence (``measured``, ``store_measured``)
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Scores:
    """checkpoint name -> ModelScores, with how they were computed."""

    models: dict[str, ModelScores]
    settings: dict[str, Any]  # n, seed, sets, data sources, date, commit

    def stale(self, name: str, path: Path) -> bool:
        """Whether the file at ``path`` differs from the one ``name`` was scored on (or was never scored)."""
        entry = self.models.get(name)
        return entry is None or entry.fingerprint != fingerprint(path)

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings, "models": {k: asdict(v) for k, v in sorted(self.models.items())}},
                          indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scores:
        """Parse and check the types (a wrong one raises TypeError, which ``read_scores`` reports)."""
        raw = json.loads(text)
        models = {}
        for k, v in raw.get("models", {}).items():
            entry = ModelScores(v["fingerprint"], v.get("parameters"), v.get("quality"), v.get("auroc"),
                                v.get("further_auroc"), v.get("notes") or {}, v.get("measured") or {})
            if not isinstance(entry.fingerprint, str) or not isinstance(entry.parameters, int | None):
                raise TypeError(f"{k}: fingerprint or parameters of the wrong type")
            rows = [entry.auroc] if entry.auroc is not None else []
            rows += list(dict(entry.further_auroc).values()) if entry.further_auroc is not None else []
            if not all(isinstance(a, int | float) for row in rows for a in dict(row).values()):
                raise TypeError(f"{k}: an AUROC that is not a number")
            if entry.quality is not None and not isinstance(entry.quality.get("confident_share"), int | float):
                raise TypeError(f"{k}: quality without a confident share")
            if not all(isinstance(m, dict) and isinstance(m.get("source"), str) for m in dict(entry.measured).values()):
                raise TypeError(f"{k}: a measurement without its source")
            models[k] = entry
        settings = raw.get("settings", {})
        if not isinstance(settings, dict):
            raise TypeError("settings is not an object")
        return cls(models, settings)


def read_scores(path: Path | None = None) -> Scores:
    """The stored scores (empty when the file is missing). Raises ValueError for a file that is not valid JSON."""
    path = path or scores_path()
    if not path.is_file():
        return Scores({}, {})
    try:
        return Scores.from_json(path.read_text())
    except (json.JSONDecodeError, TypeError, AttributeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path.name} is not a valid scores file ({exc})") from exc


def measured(name: str, what: str, path: Path | None = None) -> dict[str, Any] | None:
    """The numbers ``what`` a benchmark stored for checkpoint ``name`` (with their "source"), or None when none
    are stored, the scores file cannot be read, or the checkpoint's file changed since they were measured."""
    try:
        scores = read_scores(path)
    except ValueError:
        return None
    entry = scores.models.get(name)
    try:
        current = fingerprint(resolve(name))
    except (CheckpointError, OSError):
        return None
    if entry is None or entry.fingerprint != current:
        return None
    return entry.measured.get(what)


def store_measured(name: str, what: str, values: dict[str, Any], source: str, path: Path | None = None) -> Path:
    """Store a benchmark's numbers for checkpoint ``name`` under ``what`` in the scores file; returns its path.

    Refused (ValueError) when the checkpoint was not scored in its present form: a measurement belongs to one file,
    and ``python -m training scores`` must first give that file its entry."""
    path = path or scores_path()
    scores = read_scores(path)
    entry = scores.models.get(name)
    if entry is None or entry.fingerprint != fingerprint(resolve(name)):
        raise ValueError(f"{name} has no entry for its present file in {path.name}: run python -m training scores "
                         f"--only {name} first")
    entry.measured[what] = {**values, "source": source}
    path.write_text(scores.to_json())
    return path


def draw_many(model, n: int, seed: int, config=None) -> list:
    """``model.draw`` in batches of 250, batch i seeded ``seed + i``: a list of results."""
    return [model.draw(min(BATCH, n - start), seed + i, config) for i, start in enumerate(range(0, n, BATCH))]


def sample_quality(model, evaluator: torch.nn.Module, reference: np.ndarray, n: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Evaluator quality of n samples of ``model.draw`` at its shipped settings, with the draws' gradient budget."""
    results = draw_many(model, n, seed)
    images = torch.from_numpy(np.concatenate([r.final for r in results]))
    q = metrics.quality(evaluator, images, reference)
    return {**asdict(q), "seed": seed, "grad_evals": int(getattr(results[0], "grad_evals", 0) or 0)}
