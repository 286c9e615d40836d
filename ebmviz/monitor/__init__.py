"""Watching training: a run's TensorBoard logs read live (``events``), the runs of a folder (``runs``), and the
alerts a log raises with their usual remedies (``alerts``)."""
