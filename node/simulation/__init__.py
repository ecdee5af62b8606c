"""A deterministic, seeded simulator of a jangada Raft cluster.

N pure cores, a simulated network (drop, duplicate, delay/reorder, partitions), a
simulated disk (a crash loses what was not persisted) and a replicated toy state
machine, all driven from one `random.Random(seed)`. Raft's invariants are checked
after every event; a failure names the seed and the command that replays it.
"""
from .cluster import SimCluster
from .invariants import InvariantViolation
from .run import FaultProfile, SimulationFailure, SimResult, run_seed

__all__ = ["SimCluster", "InvariantViolation", "FaultProfile", "SimulationFailure",
           "SimResult", "run_seed"]
