"""One module per method. ``KINDS`` maps a checkpoint's ``kind`` to its module class."""

from ebmviz.models.coarse_to_fine import CoarseToFineEBM
from ebmviz.models.evaluator import Evaluator
from ebmviz.models.shortrun import ShortRunEBM
from ebmviz.models.triangle import TriangleModel

KINDS = {cls.kind: cls for cls in (ShortRunEBM, CoarseToFineEBM, TriangleModel, Evaluator)}

__all__ = ["KINDS", "CoarseToFineEBM", "Evaluator", "ShortRunEBM", "TriangleModel"]
