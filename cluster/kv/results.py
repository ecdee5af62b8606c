"""What applying a command returns, as values (etcd's *Response messages):
what the state machine produces and the client receives, defined once.

`revision` in every result is the store revision as observed right after the
operation: for a top-level write, the revision it created (or the unchanged
current revision when a delete or txn wrote nothing); for an op inside a Txn,
the current revision plus one once the Txn has written something.
A command that fails returns a `KvError` instance instead (see `errors`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from cluster.kv.alarms import AlarmResponse
from cluster.kv.errors import KvError
from cluster.kv.keyvalue import KeyValue


@dataclass(frozen=True, slots=True)
class PutResponse:
    revision: int
    prev_kv: KeyValue | None = None  # only when asked for and the key existed


@dataclass(frozen=True, slots=True)
class RangeResponse:
    revision: int
    kvs: tuple[KeyValue, ...]
    count: int  # keys in the range at that revision, regardless of limit
    more: bool  # whether the limit left keys out
    # Set by the client, never encoded: the read was served from a replica's
    # local state (possibly stale) rather than linearizably.
    serializable: bool = False


@dataclass(frozen=True, slots=True)
class DeleteResponse:
    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...] = ()  # only when asked for


@dataclass(frozen=True, slots=True)
class TxnResponse:
    revision: int
    succeeded: bool  # whether every compare held (the success branch ran)
    responses: tuple[OpResult, ...]


@dataclass(frozen=True, slots=True)
class CompactResponse:
    revision: int
    compact_revision: int


@dataclass(frozen=True, slots=True)
class SessionOpened:
    client_id: int


@dataclass(frozen=True, slots=True)
class SessionClosed:
    client_id: int
    existed: bool


@dataclass(frozen=True, slots=True)
class LeaseGrantResponse:
    revision: int
    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseRevokeResponse:
    """A revoke or an expiry: the lease is gone with its `deleted` keys (one
    revision if any)."""

    revision: int
    deleted: int


@dataclass(frozen=True, slots=True)
class LeaseKeepAliveResponse:
    revision: int
    id: int
    ttl: int  # the renewed remaining TTL, seconds


@dataclass(frozen=True, slots=True)
class LeaseTimeToLiveResponse:
    revision: int
    id: int
    granted_ttl: int
    ttl: int  # remaining seconds (rounded up)
    keys: tuple[bytes, ...] = ()  # sorted; only when asked for


@dataclass(frozen=True, slots=True)
class LeaseLeasesResponse:
    revision: int
    ids: tuple[int, ...]  # ascending


OpResult = Union[PutResponse, RangeResponse, DeleteResponse, TxnResponse]
#: What a client can receive for a request that succeeded.
Response = Union[
    PutResponse,
    RangeResponse,
    DeleteResponse,
    TxnResponse,
    CompactResponse,
    SessionOpened,
    SessionClosed,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    LeaseKeepAliveResponse,
    LeaseTimeToLiveResponse,
    LeaseLeasesResponse,
    AlarmResponse,
]
#: What applying a command returns: a response, or the expected error it failed with.
Result = Union[Response, KvError]
