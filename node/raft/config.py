"""Core configuration, validated once. Randomness is injected, never global."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .types import NodeId


@runtime_checkable
class RandomSource(Protocol):
    """What the core needs from its injected generator (e.g. a seeded
    `random.Random`): the core never touches the module-level `random`."""

    def randrange(self, start: int, stop: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Config:
    """Parameters of one Raft core.

    Time is counted in ticks: the caller decides how long a tick is.
    * election_ticks (T): a follower that hears nothing for a random number of ticks
      in [T, 2T) starts an election (Raft §5.2); also the CheckQuorum period and the
      leader-stickiness window.
    * heartbeat_ticks (H): a leader sends heartbeats every H ticks; H < T.
    * max_size_per_msg: payload bytes per AppendEntries (at least one entry is sent).
    * max_inflight_msgs: AppendEntries in flight per follower in replicate state.
    * max_committed_size_per_ready: payload bytes of committed entries one Ready hands
      out for applying (at least one entry; etcd-io/raft's MaxCommittedSizePerReady):
      the rest follow in the next Readys, so the caller can answer its peers between
      batches instead of applying a long backlog in one stall.
    * max_uncommitted_bytes: proposal backpressure; 0 disables the limit.
    * max_learner_lag: a learner is promoted only when its match index is at most this
      many entries behind the leader's last index (thesis §4.2.1).
    * commit_linger_ticks (L): when a leader's commit index advances and nothing
      else is about to go to a follower, the AppendEntries that only carries the new
      commit index waits up to L ticks; an AppendEntries sent meanwhile (the next
      proposal's) carries it instead. 0 sends it at once (etcd-io/raft). Commit
      timing is not safety: followers learn a commit index later, never a wrong one.
    """

    id: NodeId
    rng: RandomSource
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_committed_size_per_ready: int = 1 << 20
    max_uncommitted_bytes: int = 64 << 20
    max_learner_lag: int = 1000
    commit_linger_ticks: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.id < 1:
            problems.append(f"id must be >= 1 (0 means 'none'), got {self.id}")
        if not isinstance(self.rng, RandomSource):
            problems.append("rng must be an injected generator with randrange(), e.g. random.Random(seed)")
        if self.heartbeat_ticks < 1:
            problems.append(f"heartbeat_ticks must be >= 1, got {self.heartbeat_ticks}")
        if self.election_ticks <= self.heartbeat_ticks:
            problems.append(
                f"election_ticks ({self.election_ticks}) must exceed "
                f"heartbeat_ticks ({self.heartbeat_ticks})"
            )
        if self.max_size_per_msg < 1:
            problems.append(f"max_size_per_msg must be >= 1, got {self.max_size_per_msg}")
        if self.max_inflight_msgs < 1:
            problems.append(f"max_inflight_msgs must be >= 1, got {self.max_inflight_msgs}")
        if self.max_committed_size_per_ready < 1:
            problems.append("max_committed_size_per_ready must be >= 1, "
                            f"got {self.max_committed_size_per_ready}")
        if self.max_uncommitted_bytes < 0:
            problems.append("max_uncommitted_bytes must be >= 0 (0 = unlimited)")
        if not 0 <= self.commit_linger_ticks <= self.heartbeat_ticks:
            problems.append(f"commit_linger_ticks must be in [0, heartbeat_ticks], got {self.commit_linger_ticks}")
        if self.max_learner_lag < 0:
            problems.append(f"max_learner_lag must be >= 0, got {self.max_learner_lag}")
        if problems:
            raise ValueError("invalid raft config: " + "; ".join(problems))
