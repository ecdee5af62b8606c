"""Running ops against the store: put, range, delete and (nested) Txn.

Atomicity: everything that could make an op fail (limits, range revisions,
unknown leases) is checked for the whole op tree, both branches of every Txn,
before the first write. Once `run_write` starts writing, nothing can fail, so a
Txn is never left half-applied. The checks are exact because nothing they look
at changes inside a write transaction: the revision moves only at its end,
compaction and leases are separate commands.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from cluster.kv.enums import CompareOp, CompareTarget
from cluster.kv.errors import LeaseNotFound
from cluster.kv.keyvalue import KeyValue
from cluster.kv.requests import Compare, DeleteRange, Op, Put, Range, Txn, is_read_only
from cluster.kv.results import DeleteResponse, OpResult, PutResponse, TxnResponse
from node.statemachine.lease_table import LeaseHook
from node.statemachine.mvcc import MvccStore
from node.statemachine.query import run_range

_COMPARE: dict[CompareOp, Callable[[Any, Any], Any]] = {
    CompareOp.EQUAL: operator.eq,
    CompareOp.GREATER: operator.gt,
    CompareOp.LESS: operator.lt,
    CompareOp.NOT_EQUAL: operator.ne,
}

# Which KeyValue field a compare target reads (KeyValue is a tuple).
_FIELD = {
    CompareTarget.VALUE: 1,
    CompareTarget.CREATE: 2,
    CompareTarget.MOD: 3,
    CompareTarget.VERSION: 4,
    CompareTarget.LEASE: 5,
}


def run_write(store: MvccStore, leases: LeaseHook, op: Op) -> OpResult:
    """Run `op` as one write transaction (one revision if it writes anything)."""
    check_state(store, leases, op)
    store.begin_write()
    result = execute(store, leases, op)
    store.end_write()
    return result


def run_read(store: MvccStore, op: Range | Txn) -> OpResult:
    """Run a read-only op (see `is_read_only`) without a write transaction."""
    assert is_read_only(op)
    check_state(store, None, op)
    return execute(store, None, op)  # type: ignore[arg-type]  # no writes: no hook


def check_state(store: MvccStore, leases: LeaseHook | None, op: Op) -> None:
    """Raise what `op` would fail with against the current store, if anything."""
    if type(op) is Put and not op.lease:  # the hot path: nothing can fail
        return
    match op:
        case Range(revision=revision):
            store.check_revision(revision)
        case Put(lease=lease) if lease and leases is not None:
            if not leases.exists(lease):
                raise LeaseNotFound(lease)
        case Txn(success=success, failure=failure):
            for nested in success + failure:
                check_state(store, leases, nested)


def execute(store: MvccStore, leases: LeaseHook, op: Op) -> OpResult:
    """Run a checked op inside the write transaction in progress."""
    if type(op) is Put:  # the hot path, ahead of the general match
        return _put(store, leases, op)
    match op:
        case Put():
            return _put(store, leases, op)
        case Range():
            return run_range(store, op)
        case DeleteRange():
            return _delete(store, leases, op)
        case Txn():
            succeeded = all(compare_holds(store, c) for c in op.compares)
            branch = op.success if succeeded else op.failure
            responses = tuple(execute(store, leases, nested) for nested in branch)
            return TxnResponse(store.observed_revision, succeeded, responses)
    raise AssertionError(f"not an op: {op!r}")


def compare_holds(store: MvccStore, compare: Compare) -> bool:
    """etcd's rule: a missing key has version/create/mod/lease 0, and any
    VALUE compare on a missing key is false."""
    kv = store.get(compare.key)
    if kv is None:
        if compare.target == CompareTarget.VALUE:
            return False
        actual: object = 0
    else:
        actual = kv[_FIELD[compare.target]]
    return bool(_COMPARE[compare.op](actual, compare.operand))


def _put(store: MvccStore, leases: LeaseHook, op: Put) -> PutResponse:
    prev = store.put(op.key, op.value, op.lease)
    if (prev.lease if prev else 0) != op.lease:
        _move_lease(leases, op.key, prev, op.lease)
    return PutResponse(store.observed_revision, prev if op.prev_kv else None)


def _delete(store: MvccStore, leases: LeaseHook, op: DeleteRange) -> DeleteResponse:
    if op.range_end:
        keys = list(store.keys(op.key, op.range_end))
    else:
        keys = [op.key]
    deleted = []
    for key in keys:
        prev = store.delete(key)
        if prev is not None:
            deleted.append(prev)
            if prev.lease:
                leases.detach(prev.lease, key)
    prev_kvs = tuple(deleted) if op.prev_kv else ()
    return DeleteResponse(store.observed_revision, len(deleted), prev_kvs)


def _move_lease(leases: LeaseHook, key: bytes, prev: KeyValue | None, lease: int) -> None:
    if prev is not None and prev.lease:
        leases.detach(prev.lease, key)
    if lease:
        leases.attach(lease, key)
