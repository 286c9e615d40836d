"""Settings of the server process, made once by ``app.py`` before any page runs."""

from __future__ import annotations

import gc
import os

import torch

_frozen = False


def limit_torch_threads() -> int:
    """Set torch's intra-op thread count to ``EBMVIZ_TORCH_THREADS`` (default 1) and return it.

    One thread per computation by default: sessions run in threads of one process, and on a shared server several
    sessions each asking for every core made one page's descent take 30–220 s instead of 2–3 s
    (benchmarks/load.py). One user gains too: the Langevin page played 23–26 frames/s with one thread, 16–18 with
    two (2 cores, which the browser shares).
    """
    value = os.environ.get("EBMVIZ_TORCH_THREADS", "1")
    threads = int(value) if value.isdigit() and int(value) > 0 else 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def freeze_imports() -> None:
    """Once per process: take every object alive now out of the garbage collector's rounds (``gc.freeze``).

    Streamlit runs a full collection after every script and fragment run, and a playing page runs a fragment every
    second or two. With torch, plotly, pandas and Streamlit imported, a full collection walks about 280,000 objects:
    0.17–0.3 s here, holding the interpreter lock, 42% of a four-session server's busy samples (py-spy). The modules'
    objects live as long as the process anyway; after the freeze a collection walks only what sessions made since
    (under a millisecond), and still frees their garbage. Called by ``app.py`` at its first run, after its imports
    and the pages' heavy ones: the few objects the first session has made by then are kept for good."""
    global _frozen
    if _frozen:
        return
    import ebmviz.analysis.metrics  # noqa: F401 — the pages' heavy imports (plotly, scipy), frozen with the rest
    import ebmviz.figures.chains  # noqa: F401

    gc.collect()
    gc.freeze()
    _frozen = True
