"""Raft messages: one frozen dataclass per message, named as in the paper.

Every message carries `src`, `dst` and `term` (the sender's current term, or for a
PreVote the term the sender would campaign in). Bytes never appear here: encoding
lives in the node's wire codec.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .types import Entry, Index, NodeId, Snapshot, Term


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Candidate -> voter (Raft §5.2). With `pre_vote` it is a PreVote (thesis §9.6):
    `term` is the term the sender *would* use, and nobody changes term on it.
    `transfer` marks a campaign started by TimeoutNow, which bypasses leader stickiness."""

    src: NodeId
    dst: NodeId
    term: Term
    last_log_index: Index
    last_log_term: Term
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    src: NodeId
    dst: NodeId
    term: Term
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Leader -> follower (Raft §5.3): entries following (prev_log_index, prev_log_term)."""

    src: NodeId
    dst: NodeId
    term: Term
    prev_log_index: Index
    prev_log_term: Term
    entries: tuple[Entry, ...]
    leader_commit: Index


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """Follower -> leader.

    success: `index` is the follower's last index known to match the leader's log.
    rejection: `index` is the rejected prev_log_index; (hint_index, hint_term) is the
    follower's best guess of where the logs may agree -- the largest index
    <= min(prev_log_index, last index) whose term is <= prev_log_term -- so the
    leader can skip a whole conflicting term per round trip (fast backtracking).
    """

    src: NodeId
    dst: NodeId
    term: Term
    success: bool
    index: Index
    hint_index: Index = Index(0)
    hint_term: Term = Term(0)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Leader -> follower: keeps authority, carries commit (bounded by the follower's
    match) and the newest ReadIndex context so one round confirms many reads."""

    src: NodeId
    dst: NodeId
    term: Term
    commit: Index
    ctx: bytes = b""


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    src: NodeId
    dst: NodeId
    term: Term
    ctx: bytes = b""


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Leader -> follower whose next entry was compacted away (Raft §7). The reply is
    an AppendEntriesResponse whose `index` is the follower's new last index."""

    src: NodeId
    dst: NodeId
    term: Term
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leader -> transfer target (thesis §3.10): campaign now, skipping PreVote."""

    src: NodeId
    dst: NodeId
    term: Term


@dataclass(frozen=True, slots=True)
class ReadIndexRequest:
    """Follower -> leader: please run ReadIndex for `ctx` on my behalf."""

    src: NodeId
    dst: NodeId
    term: Term
    ctx: bytes


@dataclass(frozen=True, slots=True)
class ReadIndexResponse:
    """Leader -> follower: reads for `ctx` are safe once `index` is applied."""

    src: NodeId
    dst: NodeId
    term: Term
    ctx: bytes
    index: Index


Message = Union[
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
]

#: Responses whose content depends on state that must be durable before they leave
#: the node (tikv/raft-rs's "persisted messages"): a vote, an append acknowledgement.
RESPONSES_AFTER_PERSIST = (RequestVoteResponse, AppendEntriesResponse)
