"""ebmviz: interactive visual exploration of energy-based models on MNIST.

The public surface most code needs (the README's Library and "Your own model" examples use it); everything else is
imported from its module.
"""

from ebmviz.checkpoints import CheckpointError, list_checkpoints, load, save
from ebmviz.data import load_dataset
from ebmviz.image_sets import ImageSet, load_images
from ebmviz.models import KINDS, Model
from ebmviz.sampling import LangevinConfig, LiveRun, Trajectory, langevin, sample
from ebmviz.sampling.trajectory_file import TrajectoryFileError, load_trajectory
from ebmviz.training_log import TAGS, EBMLogger
from ebmviz.user_model import UserModelError, UserSpec, load_user_model

__all__ = ["KINDS", "TAGS", "CheckpointError", "EBMLogger", "ImageSet", "LangevinConfig", "LiveRun", "Model",
           "Trajectory", "TrajectoryFileError", "UserModelError", "UserSpec", "langevin", "list_checkpoints", "load",
           "load_dataset", "load_images", "load_trajectory", "load_user_model", "sample", "save"]
