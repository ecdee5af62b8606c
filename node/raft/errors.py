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


class InvalidRequest(RaftError):
    """The request makes no sense in the current configuration (e.g. transferring
    leadership to an unknown node or a learner)."""


class LogCompacted(RaftError):
    """The requested log position precedes the first retained entry."""
