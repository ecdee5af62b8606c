"""Size and count limits on requests, and the static checks that enforce them.

The limits are part of the replicated configuration: every member of a cluster
must use the same `Limits`, or replicas could disagree about which commands
fail. The checks are static (they depend on the request only, not on the
store), so a request that passes them cannot fail half-way through a Txn.
"""
from __future__ import annotations

from dataclasses import dataclass

from cluster.kv.requests import (
    CloseSession,
    Compact,
    Compare,
    DeleteRange,
    LeaseGrant,
    OpenSession,
    Put,
    Range,
    Request,
    Txn,
)
from cluster.kv.errors import InvalidCommand, LimitExceeded


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on requests and on the session table (names appear in errors)."""

    max_key_bytes: int = 8 * 1024
    # etcd's default request limit is 1.5 MiB; a value must fit in a log entry.
    max_value_bytes: int = 1024 * 1024
    max_txn_ops: int = 128  # etcd's --max-txn-ops default; counted recursively
    max_txn_depth: int = 4  # nesting of Txns inside Txns
    max_sessions: int = 10_000  # least recently used sessions are evicted beyond this
    # A session idle for this many log entries expires (see sessions.py).
    session_ttl_entries: int = 1_000_000
    # etcd's MaxLeaseTTL (seconds), and a bound on live leases (etcd has none).
    max_lease_ttl: int = 9_000_000_000
    max_leases: int = 100_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")


def check_request(request: Request, limits: Limits) -> None:
    """Raise InvalidCommand or LimitExceeded if `request` breaks a rule that
    does not depend on the state of the store."""
    if type(request) is Put:  # the hot path, ahead of the general match
        if not request.key or len(request.key) > limits.max_key_bytes:
            _check_key(request.key, limits)
        if len(request.value) > limits.max_value_bytes:
            raise LimitExceeded("max_value_bytes", len(request.value), limits.max_value_bytes)
        return
    match request:
        case Put(key, value):
            _check_key(key, limits)
            if len(value) > limits.max_value_bytes:
                raise LimitExceeded("max_value_bytes", len(value), limits.max_value_bytes)
        case Range(key, range_end) | DeleteRange(key, range_end):
            _check_key(key, limits)
            if len(range_end) > limits.max_key_bytes + 1:
                raise LimitExceeded("max_key_bytes", len(range_end), limits.max_key_bytes)
        case Txn():
            ops = _check_txn(request, limits, depth=1)
            if ops > limits.max_txn_ops:
                raise LimitExceeded("max_txn_ops", ops, limits.max_txn_ops)
        case LeaseGrant(ttl):
            if ttl < 1:
                raise InvalidCommand(f"lease TTL must be at least 1 second, got {ttl}")
            if ttl > limits.max_lease_ttl:
                raise LimitExceeded("max_lease_ttl", ttl, limits.max_lease_ttl)
        case _:
            pass


def _check_txn(txn: Txn, limits: Limits, depth: int) -> int:
    """Check a Txn and its nested Txns; return how many ops it holds in all."""
    if depth > limits.max_txn_depth:
        raise LimitExceeded("max_txn_depth", depth, limits.max_txn_depth)
    if len(txn.compares) > limits.max_txn_ops:
        raise LimitExceeded("max_txn_ops", len(txn.compares), limits.max_txn_ops)
    for compare in txn.compares:
        _check_compare(compare, limits)
    ops = 0
    for op in txn.success + txn.failure:
        ops += 1
        if isinstance(op, Txn):
            ops += _check_txn(op, limits, depth + 1)
        else:
            check_request(op, limits)
    return ops


def _check_compare(compare: Compare, limits: Limits) -> None:
    _check_key(compare.key, limits)
    if isinstance(compare.operand, bytes) and len(compare.operand) > limits.max_value_bytes:
        raise LimitExceeded("max_value_bytes", len(compare.operand), limits.max_value_bytes)


def _check_key(key: bytes, limits: Limits) -> None:
    if not key:
        raise InvalidCommand("key is empty")
    if len(key) > limits.max_key_bytes:
        raise LimitExceeded("max_key_bytes", len(key), limits.max_key_bytes)
