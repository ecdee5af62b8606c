"""Key-value commands and results as the client sees them, and their bytes.

The node's state machine (`node/statemachine/codec.py`) defines the format of a
command (what a log entry holds) and of a result; `cluster` may not import `node`,
so this module is the client's implementation of the same documented format:

    command     = [FORMAT, client_id, seq, request]
    Put         = [1, key, value, lease, prev_kv]
    Range       = [2, key, range_end, revision, limit, keys_only, count_only,
                   sort_target, sort_order]
    DeleteRange = [3, key, range_end, prev_kv]
    Txn         = [4, [compare...], [op...], [op...]]
    compare     = [key, target, op, operand]
    Compact     = [5, revision]
    OpenSession = [6]
    LeaseGrant  = [8, ttl, id]       LeaseRevoke = [9, id]
    LeaseKeepAlive = [10, id]        LeaseTimeToLive = [11, id, keys]     LeaseLeases = [12]
    (the node's LeaseExpire = [13, id, granted_index] is proposed by leaders only)

    KeyValue    = [key, value, create_revision, mod_revision, version, lease]
    result      = [1, revision, kv|nil] | [2, revision, [kv...], count, more]
                | [3, revision, deleted, [kv...]] | [4, revision, succeeded, [result...]]
                | [5, revision, compact_revision] | [6, client_id] | [7, client_id, existed]
                | [8, revision, id, ttl] | [9, revision, deleted] | [10, revision, id, ttl]
                | [11, revision, id, granted_ttl, ttl, [key...]] | [12, revision, [id...]]

`tests/node/test_client_commands.py` checks that both sides produce and read the
same bytes, so the two implementations cannot drift apart silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Union, cast

import msgpack

FORMAT = 1
ALL_KEYS_END = b"\0"
PUT, RANGE, DELETE, TXN, COMPACT, OPEN_SESSION, CLOSE_SESSION = 1, 2, 3, 4, 5, 6, 7
LEASE_GRANT, LEASE_REVOKE, LEASE_KEEPALIVE, LEASE_TTL, LEASE_LEASES = 8, 9, 10, 11, 12


class ResultDecodeError(ValueError):
    """A result's bytes do not follow the format (a node bug or a foreign server)."""


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return ALL_KEYS_END
    return stripped[:-1] + bytes([stripped[-1] + 1])


class CompareTarget(IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareOp(IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


_SYMBOLS = {"=": CompareOp.EQUAL, "==": CompareOp.EQUAL, ">": CompareOp.GREATER,
            "<": CompareOp.LESS, "!=": CompareOp.NOT_EQUAL}


@dataclass(frozen=True, slots=True)
class Put:
    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    """`range_end` b"" = the single key; b"\\0" = every key >= key."""

    key: bytes
    range_end: bytes = b""
    revision: int = 0
    limit: int = 0
    keys_only: bool = False
    count_only: bool = False
    sort_target: int = 0  # etcd's SortTarget: KEY, VERSION, CREATE, MOD, VALUE
    sort_order: int = 0  # etcd's SortOrder: NONE, ASCEND, DESCEND


@dataclass(frozen=True, slots=True)
class DeleteRange:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


@dataclass(frozen=True, slots=True)
class Compare:
    key: bytes
    target: CompareTarget
    op: CompareOp
    operand: bytes | int

    @classmethod
    def value(cls, key: bytes, op: str, operand: bytes) -> Compare:
        return cls(key, CompareTarget.VALUE, _SYMBOLS[op], operand)

    @classmethod
    def version(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.VERSION, _SYMBOLS[op], operand)

    @classmethod
    def create_revision(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.CREATE, _SYMBOLS[op], operand)

    @classmethod
    def mod_revision(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.MOD, _SYMBOLS[op], operand)

    @classmethod
    def lease(cls, key: bytes, op: str, operand: int) -> Compare:
        return cls(key, CompareTarget.LEASE, _SYMBOLS[op], operand)


@dataclass(frozen=True, slots=True)
class Txn:
    compares: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()


@dataclass(frozen=True, slots=True)
class Compact:
    revision: int


@dataclass(frozen=True, slots=True)
class OpenSession:
    pass


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    ttl: int  # seconds
    id: int = 0  # 0: the cluster picks one


@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    id: int


@dataclass(frozen=True, slots=True)
class LeaseKeepAlive:
    """Answered by the leader, never logged."""

    id: int


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    """Answered by the leader, never logged."""

    id: int
    keys: bool = False


@dataclass(frozen=True, slots=True)
class LeaseLeases:
    """Answered by the leader, never logged."""


#: Lease requests the leader answers without the log (sent without a session).
LEASE_QUERIES = (LeaseKeepAlive, LeaseTimeToLive, LeaseLeases)

Op = Union[Put, Range, DeleteRange, Txn]
Request = Union[Put, Range, DeleteRange, Txn, Compact, OpenSession, LeaseGrant, LeaseRevoke, LeaseKeepAlive,
                LeaseTimeToLive, LeaseLeases]


def is_read_only(request: Request) -> bool:
    """Whether `request` can be served without a log entry (ReadIndex)."""
    if isinstance(request, Range):
        return True
    if isinstance(request, Txn):
        return all(is_read_only(op) for op in request.success + request.failure)
    return False


def encode_command(request: Request, client_id: int = 0, seq: int = 0) -> bytes:
    return cast(bytes, msgpack.packb([FORMAT, client_id, seq, _fields(request)], use_bin_type=True))


def _fields(request: Request) -> list[Any]:
    match request:
        case Put(key, value, lease, prev_kv):
            return [PUT, key, value, lease, prev_kv]
        case Range():
            r = request
            return [RANGE, r.key, r.range_end, r.revision, r.limit, r.keys_only, r.count_only,
                    int(r.sort_target), int(r.sort_order)]
        case DeleteRange(key, range_end, prev_kv):
            return [DELETE, key, range_end, prev_kv]
        case Txn(compares, success, failure):
            return [TXN, [[c.key, int(c.target), int(c.op), c.operand] for c in compares],
                    [_fields(op) for op in success], [_fields(op) for op in failure]]
        case Compact(revision):
            return [COMPACT, revision]
        case OpenSession():
            return [OPEN_SESSION]
        case LeaseGrant(ttl, lease):
            return [LEASE_GRANT, ttl, lease]
        case LeaseRevoke(lease):
            return [LEASE_REVOKE, lease]
        case LeaseKeepAlive(lease):
            return [LEASE_KEEPALIVE, lease]
        case LeaseTimeToLive(lease, keys):
            return [LEASE_TTL, lease, keys]
        case LeaseLeases():
            return [LEASE_LEASES]
    raise TypeError(f"not a request: {request!r}")


# --- results ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class PutResponse:
    revision: int
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class RangeResponse:
    revision: int
    kvs: tuple[KeyValue, ...]
    count: int
    more: bool
    serializable: bool = False  # served from a replica's local state: possibly stale


@dataclass(frozen=True, slots=True)
class DeleteResponse:
    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnResponse:
    revision: int
    succeeded: bool
    responses: tuple[Response, ...]


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
    revision: int
    deleted: int  # keys deleted with the lease (one revision)


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
    ttl: int  # remaining seconds, rounded up
    keys: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseLeasesResponse:
    revision: int
    ids: tuple[int, ...]


Response = Union[PutResponse, RangeResponse, DeleteResponse, TxnResponse, CompactResponse,
                 SessionOpened, SessionClosed, LeaseGrantResponse, LeaseRevokeResponse,
                 LeaseKeepAliveResponse, LeaseTimeToLiveResponse, LeaseLeasesResponse]


def decode_result(data: bytes) -> Response:
    """The result in `data`; raises ResultDecodeError if malformed."""
    try:
        return _result(msgpack.unpackb(data, raw=False, use_list=True))
    except (ValueError, TypeError, LookupError, msgpack.UnpackException) as error:
        raise ResultDecodeError(f"malformed result: {error!r}") from None


def _result(fields: list[Any]) -> Response:
    tag = fields[0]
    if tag == PUT:
        return PutResponse(int(fields[1]), None if fields[2] is None else _kv(fields[2]))
    if tag == RANGE:
        return RangeResponse(int(fields[1]), tuple(_kv(kv) for kv in fields[2]),
                             int(fields[3]), bool(fields[4]))
    if tag == DELETE:
        return DeleteResponse(int(fields[1]), int(fields[2]), tuple(_kv(kv) for kv in fields[3]))
    if tag == TXN:
        return TxnResponse(int(fields[1]), bool(fields[2]), tuple(_result(r) for r in fields[3]))
    if tag == COMPACT:
        return CompactResponse(int(fields[1]), int(fields[2]))
    if tag == OPEN_SESSION:
        return SessionOpened(int(fields[1]))
    if tag == CLOSE_SESSION:
        return SessionClosed(int(fields[1]), bool(fields[2]))
    if tag == LEASE_GRANT:
        return LeaseGrantResponse(int(fields[1]), int(fields[2]), int(fields[3]))
    if tag == LEASE_REVOKE:
        return LeaseRevokeResponse(int(fields[1]), int(fields[2]))
    if tag == LEASE_KEEPALIVE:
        return LeaseKeepAliveResponse(int(fields[1]), int(fields[2]), int(fields[3]))
    if tag == LEASE_TTL:
        keys = tuple(fields[5])
        if not all(isinstance(k, bytes) for k in keys):
            raise TypeError("lease keys must be bytes")
        return LeaseTimeToLiveResponse(int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4]), keys)
    if tag == LEASE_LEASES:
        return LeaseLeasesResponse(int(fields[1]), tuple(int(i) for i in fields[2]))
    raise ValueError(f"unknown result tag {tag!r}")


def _kv(fields: list[Any]) -> KeyValue:
    if len(fields) != 6:
        raise ValueError("a kv has 6 fields")
    key, value = fields[0], fields[1]
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise TypeError("kv key and value must be bytes")
    return KeyValue(key, value, *(int(f) for f in fields[2:]))
