"""One module per method. ``KINDS`` maps a checkpoint's ``kind`` to its module class."""

from ebmviz.models.coarse_to_fine import CoarseToFineEBM
from ebmviz.models.evaluator import Evaluator
from ebmviz.models.shortrun import ShortRunEBM

KINDS = {cls.kind: cls for cls in (ShortRunEBM, CoarseToFineEBM, Evaluator)}

__all__ = ["KINDS", "CoarseToFineEBM", "Evaluator", "ShortRunEBM"]
