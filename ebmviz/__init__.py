"""ebmviz: interactive visual exploration of energy-based models on MNIST.

The public surface most code needs (the README's Library example uses it); everything else is
imported from its module.
"""

from ebmviz.checkpoints import CheckpointError, list_checkpoints, load, save
from ebmviz.data import load_dataset
from ebmviz.models import KINDS, Model
from ebmviz.sampling import LangevinConfig, LiveRun, Trajectory, langevin, sample

__all__ = ["KINDS", "CheckpointError", "LangevinConfig", "LiveRun", "Model", "Trajectory", "langevin",
           "list_checkpoints", "load", "load_dataset", "sample", "save"]
