"""Settings of the server process, made once by ``app.py`` before any page runs."""

from __future__ import annotations

import os

import torch


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
