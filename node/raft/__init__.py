"""The pure Raft core: no I/O, no clock, no global randomness.

See docs/raft-core.md for the input/output contract and a worked example.
"""
from .config import Config
from .core import RaftCore, Status, boot
from .errors import (
    InvalidRequest, LeadershipTransferInProgress, LogCompacted, NotLeader, ProposalDropped,
    RaftError, UncommittedBytesExceeded,
)
from .messages import (
    AppendEntries, AppendEntriesResponse, Heartbeat, HeartbeatResponse, InstallSnapshot,
    Message, ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, TimeoutNow,
)
from .ready import Ready, Role, SoftState
from .types import (
    NONE, ConfState, Entry, EntryKind, HardState, Index, NodeId, ReadState, Snapshot,
    SnapshotMeta, Term,
)

__all__ = [
    "Config", "RaftCore", "Status", "boot",
    "InvalidRequest", "LeadershipTransferInProgress", "LogCompacted", "NotLeader",
    "ProposalDropped", "RaftError", "UncommittedBytesExceeded",
    "AppendEntries", "AppendEntriesResponse", "Heartbeat", "HeartbeatResponse",
    "InstallSnapshot", "Message", "ReadIndexRequest", "ReadIndexResponse", "RequestVote",
    "RequestVoteResponse", "TimeoutNow",
    "Ready", "Role", "SoftState",
    "NONE", "ConfState", "Entry", "EntryKind", "HardState", "Index", "NodeId", "ReadState",
    "Snapshot", "SnapshotMeta", "Term",
]
