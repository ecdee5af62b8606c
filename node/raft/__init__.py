"""The pure Raft core: no I/O, no clock, no global randomness.

See docs/raft-core.md for the input/output contract and a worked example.
"""
from .config import Config
from .core import RaftCore, boot
from .errors import (
    ConfChangePending, InvalidConfChange, InvalidRequest, LeaderNotReady,
    LeadershipTransferInProgress, LearnerLagging, LogCompacted, NotLeader, ProposalDropped,
    RaftError, UncommittedBytesExceeded,
)
from .describe import describe_conf, describe_conf_change
from .membership import check_conf_change
from .messages import (
    AppendEntries, AppendEntriesResponse, Heartbeat, HeartbeatResponse, InstallSnapshot,
    Message, ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, TimeoutNow,
)
from .ready import Ready, Role, SoftState
from .status import Status
from .types import (
    NONE, ConfChange, ConfChangeKind, ConfChangeSingle, ConfState, Entry, EntryKind, HardState,
    Index, NodeId, ReadState, Snapshot, SnapshotMeta, Term, decode_conf_change, encode_conf_change,
    enter_joint, leave_joint,
)

__all__ = [
    "Config", "RaftCore", "Status", "boot",
    "ConfChangePending", "InvalidConfChange", "InvalidRequest", "LeaderNotReady",
    "LeadershipTransferInProgress", "LearnerLagging", "LogCompacted", "NotLeader",
    "ProposalDropped", "RaftError", "UncommittedBytesExceeded",
    "check_conf_change", "describe_conf", "describe_conf_change",
    "AppendEntries", "AppendEntriesResponse", "Heartbeat", "HeartbeatResponse",
    "InstallSnapshot", "Message", "ReadIndexRequest", "ReadIndexResponse", "RequestVote",
    "RequestVoteResponse", "TimeoutNow",
    "Ready", "Role", "SoftState",
    "NONE", "ConfChange", "ConfChangeKind", "ConfState", "Entry", "EntryKind", "HardState", "Index", "NodeId", "ReadState",
    "Snapshot", "SnapshotMeta", "Term", "decode_conf_change", "encode_conf_change",
    "ConfChangeSingle", "enter_joint", "leave_joint",
]
