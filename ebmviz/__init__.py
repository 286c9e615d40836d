"""ebmviz: interactive visual exploration of energy-based models on MNIST.

The public surface most code needs; everything else is imported from its module.
"""

from ebmviz.checkpoints import CheckpointError, list_checkpoints, load, save
from ebmviz.data import load_dataset
from ebmviz.sampling import LangevinConfig, LiveRun, Trajectory, langevin, sample

__all__ = ["CheckpointError", "LangevinConfig", "LiveRun", "Trajectory", "langevin", "list_checkpoints",
           "load", "load_dataset", "sample", "save"]
