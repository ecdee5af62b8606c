"""What applying a command returns, as values (etcd's *Response messages).

`revision` in every result is the store revision as observed right after the
operation: for a top-level write, the revision it created (or the unchanged
current revision when a delete or txn wrote nothing); for an op inside a Txn,
the current revision plus one once the Txn has written something.
A command that fails returns a `KvError` instance instead (see `errors`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from node.statemachine.errors import KvError
from node.statemachine.keyvalue import KeyValue


@dataclass(frozen=True, slots=True)
class PutResult:
    revision: int
    prev_kv: KeyValue | None = None  # only when asked for and the key existed


@dataclass(frozen=True, slots=True)
class RangeResult:
    revision: int
    kvs: tuple[KeyValue, ...]
    count: int  # keys in the range at that revision, regardless of limit
    more: bool  # whether the limit left keys out


@dataclass(frozen=True, slots=True)
class DeleteResult:
    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...] = ()  # only when asked for


@dataclass(frozen=True, slots=True)
class TxnResult:
    revision: int
    succeeded: bool  # whether every compare held (the success branch ran)
    responses: tuple[OpResult, ...]


@dataclass(frozen=True, slots=True)
class CompactResult:
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
class LeaseGranted:
    revision: int
    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseRevoked:
    """A revoke or an expiry: the lease is gone with its `deleted` keys (one
    revision if any)."""

    revision: int
    deleted: int


@dataclass(frozen=True, slots=True)
class LeaseKeptAlive:
    revision: int
    id: int
    ttl: int  # the renewed remaining TTL, seconds


@dataclass(frozen=True, slots=True)
class LeaseTimeToLiveResult:
    revision: int
    id: int
    granted_ttl: int
    ttl: int  # remaining seconds (rounded up)
    keys: tuple[bytes, ...] = ()  # sorted; only when asked for


@dataclass(frozen=True, slots=True)
class LeaseList:
    revision: int
    ids: tuple[int, ...]  # ascending


OpResult = Union[PutResult, RangeResult, DeleteResult, TxnResult]
Result = Union[
    PutResult,
    RangeResult,
    DeleteResult,
    TxnResult,
    CompactResult,
    SessionOpened,
    SessionClosed,
    LeaseGranted,
    LeaseRevoked,
    LeaseKeptAlive,
    LeaseTimeToLiveResult,
    LeaseList,
    KvError,
]
