"""The requests a client can make of the key-value store, as values.

Names and enum numbers follow etcd's v3 API (RangeRequest, PutRequest,
DeleteRangeRequest, TxnRequest, Compare, CompactionRequest) so that anyone who
knows etcd can read them. The bytes of a command (what goes into a Raft log
entry) are produced and checked by `node.statemachine.codec`.

Key ranges use etcd's convention: `range_end == b""` means the single key `key`;
`range_end == b"\\0"` means every key >= `key`; otherwise the half-open
interval [key, range_end). `prefix_end` turns a prefix into its range end.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Union

#: The range end meaning "to the end of the key space" (etcd's convention).
ALL_KEYS_END = b"\0"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`
    (etcd's GetPrefixRangeEnd); `ALL_KEYS_END` if there is none."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return ALL_KEYS_END
    return stripped[:-1] + bytes([stripped[-1] + 1])


class SortTarget(IntEnum):
    """etcd's RangeRequest.SortTarget."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class SortOrder(IntEnum):
    """etcd's RangeRequest.SortOrder."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class CompareTarget(IntEnum):
    """etcd's Compare.CompareTarget: which field of the key a compare reads."""

    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareOp(IntEnum):
    """etcd's Compare.CompareResult: how the field is compared to the operand."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3

    @classmethod
    def from_symbol(cls, symbol: str) -> CompareOp:
        """`"="`, `"!="`, `"<"` or `">"` as a CompareOp."""
        return _SYMBOLS[symbol]


_SYMBOLS = {
    "=": CompareOp.EQUAL,
    "==": CompareOp.EQUAL,
    ">": CompareOp.GREATER,
    "<": CompareOp.LESS,
    "!=": CompareOp.NOT_EQUAL,
}


@dataclass(frozen=True, slots=True)
class Put:
    """Set `key` to `value` (lease 0 = none); one new revision."""

    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False  # return the key's previous version, if any


@dataclass(frozen=True, slots=True)
class Range:
    """Read one key or a range of keys, at the latest or an older revision.

    `revision` 0 means the latest; `limit` 0 means no limit. With `count_only`
    no kvs are returned, only the count; with `keys_only` values are empty.
    """

    key: bytes
    range_end: bytes = b""
    revision: int = 0
    limit: int = 0
    keys_only: bool = False
    count_only: bool = False
    sort_target: SortTarget = SortTarget.KEY
    sort_order: SortOrder = SortOrder.NONE

    @classmethod
    def with_prefix(cls, prefix: bytes, **options: object) -> Range:
        """Every key starting with `prefix` (all keys for an empty prefix)."""
        key = prefix or ALL_KEYS_END
        return cls(key, prefix_end(prefix), **options)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DeleteRange:
    """Delete one key or a range of keys; one new revision if any was deleted."""

    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False  # return the deleted versions

    @classmethod
    def with_prefix(cls, prefix: bytes, prev_kv: bool = False) -> DeleteRange:
        return cls(prefix or ALL_KEYS_END, prefix_end(prefix), prev_kv)


@dataclass(frozen=True, slots=True)
class Compare:
    """One guard of a Txn: `<target field of key> <op> <operand>`.

    The operand is bytes for VALUE and an int otherwise. As in etcd, a missing
    key reads as version/create/mod/lease 0, and any VALUE compare on a missing
    key is false.
    """

    key: bytes
    target: CompareTarget
    op: CompareOp
    operand: bytes | int

    @classmethod
    def value(cls, key: bytes, op: str, operand: bytes) -> Compare:
        return cls(key, CompareTarget.VALUE, CompareOp.from_symbol(op), operand)

    @classmethod
    def version(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.VERSION, CompareOp.from_symbol(op), operand)

    @classmethod
    def create_revision(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.CREATE, CompareOp.from_symbol(op), operand)

    @classmethod
    def mod_revision(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.MOD, CompareOp.from_symbol(op), operand)

    @classmethod
    def lease(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.LEASE, CompareOp.from_symbol(op), operand)


@dataclass(frozen=True, slots=True)
class Txn:
    """If every compare holds, run `success`, else `failure`; atomically, in
    one revision (or none, if nothing was written). Later ops see the writes of
    earlier ones, as in etcd; ops may be nested Txns."""

    compares: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()


@dataclass(frozen=True, slots=True)
class Compact:
    """Forget history superseded at or before `revision` (reads below it fail)."""

    revision: int


@dataclass(frozen=True, slots=True)
class OpenSession:
    """Register a client session; its id is the log index of this command
    (unique and deterministic, as in the Raft thesis §6.3)."""


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Forget a client session and its cached result."""

    client_id: int


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """Create a lease of `ttl` seconds (etcd's LeaseGrantRequest); `id` 0 lets
    the state machine pick one (deterministically, from the log index)."""

    ttl: int
    id: int = 0


@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    """Delete a lease and every key attached to it, in one revision."""

    id: int


@dataclass(frozen=True, slots=True)
class LeaseExpire:
    """The leader's verdict that lease `id` expired: a revoke that applies only
    to the lease granted at log index `granted_index` (so a late verdict can
    never revoke a lease re-granted later with the same id). Proposed by the
    leader's node, never by clients."""

    id: int
    granted_index: int


@dataclass(frozen=True, slots=True)
class LeaseKeepAlive:
    """Renew lease `id`; served by the leader from its clock, never logged."""

    id: int


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    """Granted and remaining TTL of lease `id` (and its keys); served by the leader."""

    id: int
    keys: bool = False


@dataclass(frozen=True, slots=True)
class LeaseLeases:
    """Every lease id; served by the leader."""


#: Lease requests that never go through the log: the leader answers them from
#: its clock and the applied state (see `node/lease_timers.py`).
LEASE_QUERIES = (LeaseKeepAlive, LeaseTimeToLive, LeaseLeases)

Op = Union[Put, Range, DeleteRange, Txn]
LeaseRequest = Union[LeaseGrant, LeaseRevoke, LeaseExpire, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases]
Request = Union[Put, Range, DeleteRange, Txn, Compact, OpenSession, CloseSession,
                LeaseGrant, LeaseRevoke, LeaseExpire, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases]


@dataclass(frozen=True, slots=True)
class Command:
    """A request as it travels in the log: with the client session it belongs
    to (`client_id` 0 = none, then `seq` is 0) for exactly-once application."""

    request: Request
    client_id: int = 0
    seq: int = 0
