"""One module per method, each a ``Model`` (``base.py``). ``KINDS`` maps a checkpoint's ``kind`` to its class."""

from ebmviz.models.base import Model
from ebmviz.models.coarse_to_fine import CoarseToFineEBM
from ebmviz.models.denoising import DenoisingEBM
from ebmviz.models.ebgan import EBGAN
from ebmviz.models.evaluator import Evaluator
from ebmviz.models.frame import FRAME
from ebmviz.models.shortrun import ShortRunEBM
from ebmviz.models.triangle import TriangleModel

KINDS: dict[str, type[Model]] = {
    cls.kind: cls for cls in (ShortRunEBM, CoarseToFineEBM, TriangleModel, EBGAN, DenoisingEBM, FRAME, Evaluator)}

__all__ = ["EBGAN", "FRAME", "KINDS", "CoarseToFineEBM", "DenoisingEBM", "Evaluator", "Model", "ShortRunEBM",
           "TriangleModel"]
