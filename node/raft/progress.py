"""The leader's view of one follower (etcd's Progress): what matches, what to send
next, and how fast to send it.

States:
* PROBE: we do not know where the logs agree; send one AppendEntries per heartbeat
  interval and wait for the answer (after a rejection, a restart, an unreachable peer).
* REPLICATE: logs agree up to `match`; stream entries optimistically (pipelining)
  with at most `max_inflight` unacknowledged AppendEntries.
* SNAPSHOT: the follower needs a compacted prefix; an InstallSnapshot is in flight,
  nothing else is sent until it is acknowledged or reported failed.
Invariant: match < next.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Collection, Set
from enum import Enum

from .types import Index, NodeId


class ProgressState(Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = (
        "match", "next", "state", "probe_sent", "inflight", "max_inflight",
        "recent_active", "pending_snapshot", "is_learner",
    )

    def __init__(self, next_index: Index, max_inflight: int, is_learner: bool = False) -> None:
        self.match = Index(0)
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        # Last index of each unacknowledged AppendEntries, in send order.
        self.inflight: deque[Index] = deque()
        self.max_inflight = max_inflight
        self.recent_active = False
        self.pending_snapshot = 0
        self.is_learner = is_learner

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_probe(self) -> None:
        # After a snapshot, the follower has at least the snapshot's entries.
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset(ProgressState.PROBE)
            self.next = Index(max(self.match, pending) + 1)
        else:
            self._reset(ProgressState.PROBE)
            self.next = Index(self.match + 1)

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = Index(self.match + 1)

    def become_snapshot(self, snapshot_index: Index) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def snapshot_finished(self, ok: bool) -> None:
        """The snapshot stream ended, installed (`ok`) or failed: probe again, after
        the next heartbeat answer. On success the follower holds at least the
        snapshot's entries."""
        if not ok:
            self.pending_snapshot = 0
        self.become_probe()
        self.probe_sent = True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def sent_entries(self, last_index: Index, n_entries: int) -> None:
        """Record that an AppendEntries ending at `last_index` went out."""
        if self.state is ProgressState.REPLICATE:
            if n_entries:
                self.next = Index(last_index + 1)
                self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def maybe_update(self, index: Index) -> bool:
        """An acknowledgement up to `index` arrived; returns whether match grew."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        if index >= self.next:
            self.next = Index(index + 1)
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: Index, hint_next: Index) -> bool:
        """A rejection of prev index `rejected` arrived. Returns False when it is stale
        (it answers an AppendEntries older than what we know now)."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = Index(self.match + 1)
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint_next), Index(self.match + 1))
        self.probe_sent = False
        return True

    def free_first_inflight(self) -> None:
        """A heartbeat answer proves the follower is alive: let one more append out so
        a window full of lost messages cannot stall replication forever."""
        if self.inflight:
            self.inflight.popleft()

    def __repr__(self) -> str:
        return (
            f"Progress(state={self.state.value}, match={self.match}, next={self.next}, "
            f"inflight={len(self.inflight)}, active={self.recent_active})"
        )


def progress_for(voters: Collection[NodeId], learners: Collection[NodeId], next_index: Index,
                 max_inflight: int) -> dict[NodeId, Progress]:
    """A fresh Progress per member, every one probing from `next_index` (a new term:
    the leader knows nothing yet about where its followers' logs agree with its own)."""
    prs = {v: Progress(next_index, max_inflight) for v in voters}
    for learner in learners:
        prs[learner] = Progress(next_index, max_inflight, is_learner=True)
    return prs


def track_members(prs: dict[NodeId, Progress], members: Set[NodeId], learners: Set[NodeId],
                  next_index: Index, max_inflight: int) -> None:
    """The membership changed (thesis §4.1): a Progress for each new member, probing
    from `next_index`; none for a removed one, which is no longer replicated to (it
    may never see the entry removing it)."""
    for peer in members - prs.keys():
        prs[peer] = Progress(next_index, max_inflight, peer in learners)
    for peer in prs.keys() - members:
        del prs[peer]
    for peer, pr in prs.items():
        pr.is_learner = peer in learners


def take_recently_active(prs: dict[NodeId, Progress]) -> set[NodeId]:
    """The peers heard from since the last call, whose marks it clears (CheckQuorum
    asks once per election timeout, thesis §6.2)."""
    active = set()
    for peer, pr in prs.items():
        if pr.recent_active:
            active.add(peer)
            pr.recent_active = False
    return active
