"""Suite-wide switches that change torch's reduction order, to catch comparisons too tight for another CPU.

Float sums in convolutions and matrix products come out in another order on another CPU (instruction set, BLAS
kernel, thread count), and their last digits differ. The same kind of difference appears on one machine when
the order changes here, so a run with these switches shows which comparison of a live value with a stored one
(``checkpoints/scores.json``, checkpoint metadata, shipped maps) would fail on a user's machine:

- ``EBMVIZ_TEST_THREADS=n``: torch's intra-op thread count for the test process (``app.py`` reads its own
  ``EBMVIZ_TORCH_THREADS`` in AppTest and browser runs; set both for a whole run).
- ``EBMVIZ_TEST_MKLDNN=0``: oneDNN off, so convolutions take torch's own kernels.

``make test-orders`` runs the whole suite with both switches; ``tests/test_reduction_order.py`` is the cheap form
that ``make test`` runs every time.
"""

import os

import torch

_threads = os.environ.get("EBMVIZ_TEST_THREADS", "")
if _threads.isdigit() and int(_threads) > 0:
    torch.set_num_threads(int(_threads))
if os.environ.get("EBMVIZ_TEST_MKLDNN", "1") == "0":
    torch.backends.mkldnn.enabled = False
