"""Samplers for any energy ``E(x) -> (B,)`` with p ∝ exp(−E): Langevin (ULA, MALA), HMC, annealed Langevin and
proximal (JKO) particle steps.

Each sampler is a step generator (``langevin_steps``, ``hmc_steps``, ``annealed_steps``) and returns the same
``Trajectory`` through one collector (``LiveRun``; ``langevin``, ``hmc`` and ``annealed`` run it to the end).
Modules: ``chains`` (the shared types), ``langevin_dynamics``, ``hmc``, ``annealing``, ``jko``, ``run``.
"""

from ebmviz.sampling.annealing import AnnealedConfig, annealed_langevin, annealed_steps
from ebmviz.sampling.chains import Energy, LangevinStep, Step, Trajectory, energy_and_grad
from ebmviz.sampling.hmc import HMCConfig, hmc_steps
from ebmviz.sampling.jko import JKOConfig, jko_steps
from ebmviz.sampling.langevin_dynamics import LangevinConfig, langevin_steps
from ebmviz.sampling.run import LiveRun, SamplerConfig, annealed, hmc, langevin, sample, steps_for

__all__ = [
    "AnnealedConfig", "Energy", "HMCConfig", "JKOConfig", "LangevinConfig", "LangevinStep", "LiveRun",
    "SamplerConfig", "Step", "Trajectory", "annealed", "annealed_langevin", "annealed_steps", "energy_and_grad",
    "hmc", "hmc_steps", "jko_steps", "langevin", "langevin_steps", "sample", "steps_for",
]
