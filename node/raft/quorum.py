"""Quorum arithmetic: pure functions over a voter set (Raft §5.2, §5.4.2), and over
the two voter sets of a joint configuration (Raft §6)."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import Enum

from .types import Index, NodeId


class VoteResult(Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(n_voters: int) -> int:
    """Smallest number of voters that is more than half."""
    return n_voters // 2 + 1


def committed_index(voters: Collection[NodeId], match: Mapping[NodeId, Index]) -> Index:
    """The largest index replicated on a majority of voters: the (majority)-th
    largest match index. A voter missing from `match` counts as 0."""
    none = Index(0)
    if not voters:
        return none
    acked = sorted((match.get(v, none) for v in voters), reverse=True)
    return acked[majority(len(voters)) - 1]


def vote_result(voters: Collection[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority is out of reach."""
    need = majority(len(voters))
    granted = sum(1 for v in voters if votes.get(v) is True)
    if granted >= need:
        return VoteResult.WON
    undecided = sum(1 for v in voters if v not in votes)
    return VoteResult.PENDING if granted + undecided >= need else VoteResult.LOST


def has_quorum(voters: Collection[NodeId], active: Collection[NodeId]) -> bool:
    """Whether the `active` nodes include a majority of `voters`."""
    return sum(1 for v in voters if v in active) >= majority(len(voters))


# -- Joint consensus (Raft §6, thesis §4.3): a majority of each voter set ------------------
# `outgoing` is empty for a simple configuration; then each function is its simple form.

def joint_committed_index(incoming: Collection[NodeId], outgoing: Collection[NodeId],
                          match: Mapping[NodeId, Index]) -> Index:
    """The largest index replicated on a majority of `incoming` AND a majority of
    `outgoing`: the smaller of the two sets' committed indexes."""
    ci = committed_index(incoming, match)
    if not outgoing:
        return ci
    return min(ci, committed_index(outgoing, match))


def joint_vote_result(incoming: Collection[NodeId], outgoing: Collection[NodeId],
                      votes: Mapping[NodeId, bool]) -> VoteResult:
    """WON once both sets' majorities granted; LOST once either is out of reach."""
    first = vote_result(incoming, votes)
    if not outgoing:
        return first
    second = vote_result(outgoing, votes)
    if VoteResult.LOST in (first, second):
        return VoteResult.LOST
    if first is VoteResult.WON and second is VoteResult.WON:
        return VoteResult.WON
    return VoteResult.PENDING


def joint_has_quorum(incoming: Collection[NodeId], outgoing: Collection[NodeId],
                     active: Collection[NodeId]) -> bool:
    """Whether `active` includes a majority of `incoming` and one of `outgoing`."""
    return has_quorum(incoming, active) and (not outgoing or has_quorum(outgoing, active))
