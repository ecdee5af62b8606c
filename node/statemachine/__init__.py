"""The deterministic etcd-style MVCC key-value state machine (see `machine`).

Everything the node and the client codec need is re-exported here; the
modules behind it are private to the package.
"""
from node.statemachine.codec import decode_command, decode_result, encode_command, encode_result
from node.statemachine.commands import (
    ALL_KEYS_END,
    CloseSession,
    Command,
    Compact,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    LEASE_QUERIES,
    LeaseExpire,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseLeases,
    LeaseRevoke,
    LeaseTimeToLive,
    OpenSession,
    Op,
    Put,
    Range,
    Request,
    SortOrder,
    SortTarget,
    Txn,
    prefix_end,
)
from node.statemachine.errors import (
    Compacted,
    FutureRevision,
    InvalidCommand,
    KvError,
    LeaseExists,
    LeaseNotFound,
    LimitExceeded,
    SessionExpired,
    SnapshotCorrupt,
    StaleSequence,
)
from node.statemachine.events import DELETE, PUT, Event, EventSlice, in_range
from node.statemachine.keyvalue import KeyValue
from node.statemachine.lease_table import Lease, LeaseEvent, LeaseHook, LeaseTable
from node.statemachine.limits import Limits
from node.statemachine.machine import StateMachine
from node.statemachine.results import (
    CompactResult,
    DeleteResult,
    LeaseGranted,
    LeaseKeptAlive,
    LeaseList,
    LeaseRevoked,
    LeaseTimeToLiveResult,
    OpResult,
    PutResult,
    RangeResult,
    Result,
    SessionClosed,
    SessionOpened,
    TxnResult,
)
from node.statemachine.txn import is_read_only

__all__ = [
    "ALL_KEYS_END", "CloseSession", "Command", "Compact", "CompactResult", "Compacted",
    "Compare", "CompareOp", "CompareTarget", "DeleteRange", "DeleteResult",
    "FutureRevision", "InvalidCommand", "KeyValue", "KvError", "LEASE_QUERIES", "Lease",
    "LeaseEvent", "LeaseExists", "LeaseExpire", "LeaseGrant", "LeaseGranted", "LeaseHook",
    "LeaseKeepAlive", "LeaseKeptAlive", "LeaseLeases", "LeaseList", "LeaseNotFound",
    "LeaseRevoke", "LeaseRevoked", "LeaseTable", "LeaseTimeToLive", "LeaseTimeToLiveResult",
    "LimitExceeded", "Limits", "Op", "OpResult",
    "OpenSession", "Put", "PutResult", "Range", "RangeResult", "Request", "Result",
    "SessionClosed", "SessionExpired", "SessionOpened", "SnapshotCorrupt",
    "SortOrder", "SortTarget", "StaleSequence", "StateMachine", "Txn", "TxnResult",
    "decode_command", "decode_result", "encode_command", "encode_result", "is_read_only",
    "prefix_end", "PUT", "DELETE", "Event", "EventSlice", "in_range",
]
