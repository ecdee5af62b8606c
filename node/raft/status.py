"""`RaftCore.status()`: the core's state as operators and tests see it."""
from __future__ import annotations

from dataclasses import dataclass

from .ready import Role
from .types import Index, NodeId, Term


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of the core's state for operators and tests."""

    id: NodeId
    role: Role
    term: Term
    vote: NodeId
    lead: NodeId
    commit: Index
    applied: Index
    last_index: Index
    snapshot_index: Index
    progress: dict[NodeId, str]
    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()
    conf_index: Index = Index(0)  # where the membership in effect starts: its entry or snapshot
    learner_match: dict[NodeId, Index] | None = None  # leader only: learner -> match index
    learner_lag: dict[NodeId, int] | None = None  # leader only: learner -> entries behind
    voters_outgoing: tuple[NodeId, ...] = ()  # while joint: the old voters (also deciding)
    learners_next: tuple[NodeId, ...] = ()  # while joint: outgoing voters that become learners
