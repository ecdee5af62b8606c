"""The requests of the key-value API, as values: the one definition that the
client builds and the node's state machine executes.

Names and enum numbers follow etcd's v3 API (RangeRequest, PutRequest,
DeleteRangeRequest, TxnRequest, Compare, CompactionRequest) so that anyone who
knows etcd can read them. The bytes of a command (what goes into a Raft log
entry) are produced and checked by `cluster.kv.codec`; key ranges follow the
convention in `cluster.kv.keys`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from cluster.kv.alarms import Alarm
from cluster.kv.auth import AUTH_READS, AuthRequest
from cluster.kv.enums import CompareOp, CompareTarget, SortOrder, SortTarget
from cluster.kv.keys import ALL_KEYS_END, prefix_end


@dataclass(frozen=True, slots=True)
class Put:
    """Set `key` to `value` (lease 0 = none); one new revision.

    As in etcd's PutRequest, `ignore_value` keeps the key's current value (then
    `value` must be empty) and `ignore_lease` its current lease (then `lease`
    must be 0); either needs the key to exist (else KeyNotFound).
    """

    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False  # return the key's previous version, if any
    ignore_value: bool = False
    ignore_lease: bool = False


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
    key is false. With a `range_end` (the `cluster.kv.keys` convention) the
    compare holds iff it holds for every key in [key, range_end); an empty
    range compares as one missing key (etcd's applyCompare).
    """

    key: bytes
    target: CompareTarget
    op: CompareOp
    operand: bytes | int
    range_end: bytes = b""

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
class AutoCompact:
    """The leader node's auto-compaction (etcd's --auto-compaction-mode; see
    node/auto_compaction.py): a `Compact` the node decided on, proposed without a
    user, never by clients (the router refuses it, as LeaseExpire). A revision at
    or below the compact revision is a no-op, not an error (etcd's compactor takes
    ErrCompacted as success). Not checked against auth: the node's own act."""

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
#: its clock and the applied state (see `node/lease_timers.py`), so a client
#: sends them without a session.
LEASE_QUERIES = (LeaseKeepAlive, LeaseTimeToLive, LeaseLeases)

Op = Union[Put, Range, DeleteRange, Txn]
LeaseRequest = Union[LeaseGrant, LeaseRevoke, LeaseExpire, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases]
Request = Union[Put, Range, DeleteRange, Txn, Compact, AutoCompact, OpenSession, CloseSession,
                LeaseGrant, LeaseRevoke, LeaseExpire, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases, AuthRequest,
                Alarm]


@dataclass(frozen=True, slots=True)
class Command:
    """A request as it travels in the log: with the client session it belongs
    to (`client_id` 0 = none, then `seq` is 0) for exactly-once application,
    and the user it acts for."""

    request: Request
    client_id: int = 0
    seq: int = 0
    #: the user the command acts for ("" = none); set by the node from the
    #: request's token, checked by the state machine when auth is enabled
    #: (cluster/kv/auth.py)
    user: str = ""


def is_read_only(request: Request) -> bool:
    """Whether no branch of `request` can write, so it can be served without a
    log entry (ReadIndex, or a replica's local state when serializable): a
    Range, a Txn of reads, and the read-only auth requests (`AUTH_READS`:
    AuthStatus, UserGet, UserList, RoleGet, RoleList)."""
    if isinstance(request, Range):
        return True
    if isinstance(request, Txn):
        return all(is_read_only(op) for op in request.success + request.failure)
    return isinstance(request, AUTH_READS)
