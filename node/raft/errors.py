"""Expected outcomes the core reports to its caller (broken invariants raise
AssertionError instead: those are bugs, and the node fails stop)."""
from __future__ import annotations


class RaftError(Exception):
    """Base of the expected-outcome hierarchy."""


class ProposalDropped(RaftError):
    """The proposal or request was not accepted; nothing was appended. Safe to retry."""

    reason = "proposal dropped"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class NotLeader(ProposalDropped):
    """This node is not the leader; `leader_hint` is the leader it knows of (0 = none)."""

    reason = "not leader"

    def __init__(self, leader_hint: int, detail: str = "") -> None:
        self.leader_hint = leader_hint
        super().__init__(detail or f"leader is {leader_hint or 'unknown'}")


class LeadershipTransferInProgress(ProposalDropped):
    reason = "leadership transfer in progress"


class UncommittedBytesExceeded(ProposalDropped):
    """Backpressure: the leader already holds `max_uncommitted_bytes` of entries that
    are not committed yet; retry once the cluster catches up."""

    reason = "too many uncommitted bytes"


class ConfChangePending(ProposalDropped):
    """A membership change is appended but not committed yet: one at a time (thesis
    §4.1). Retry once it commits."""

    reason = "a membership change is already pending"


class LeaderNotReady(ProposalDropped):
    """A new leader must commit an entry of its own term (its no-op) before it may
    append a membership change (the one-server-at-a-time fix, Ongaro, raft-dev 2015).
    Retry shortly."""

    reason = "the leader has not committed an entry in its term yet"


class LearnerLagging(ProposalDropped):
    """Promoting a learner that is far behind would stall commitment while it catches
    up (thesis §4.2.1): wait until its match index is within `limit` of the leader's
    last index (and covers the latest membership entry, which names it)."""

    reason = "learner is not caught up"

    def __init__(self, node_id: int, lag: int, limit: int, needs_index: int = 0) -> None:
        self.node_id, self.lag, self.limit = node_id, lag, limit
        detail = f"node {node_id} lags the leader's log by {lag} entries (at most {limit} allowed"
        if needs_index:
            detail += f", and it must hold the membership entry at index {needs_index}"
        super().__init__(detail + ")")


class InvalidRequest(RaftError):
    """The request makes no sense in the current configuration (e.g. transferring
    leadership to an unknown node or a learner)."""


class InvalidConfChange(InvalidRequest):
    """The membership change makes no sense in the configuration in effect (adding a
    member twice, promoting a non-learner, removing an unknown id or the last voter)."""


class LogCompacted(RaftError):
    """The requested log position precedes the first retained entry."""
