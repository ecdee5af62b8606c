"""Quorum arithmetic: pure functions over a voter set (Raft §5.2, §5.4.2)."""
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
