"""Running ops against the store: put, range, delete and (nested) Txn.

Atomicity: everything that could make an op fail (limits, range revisions,
unknown leases) is checked for the whole op tree, both branches of every Txn,
before the first write; so are the keys that a put with ignore_value or
ignore_lease needs, along the branches that will run. Once `run_write` starts
writing, nothing can fail, so a Txn is never left half-applied. The checks are
exact because nothing they look at changes inside a write transaction: the
revision moves only at its end, compaction and leases are separate commands.

Compares, nested Txns' included, read the store at the revision the Txn
started from, as etcd's compareToPath does before the first write: so the
branches that will run are known before writing, and the key checks can follow
them. (That a put's key exists before the Txn is enough, given etcd's static
DuplicateKey rule, unless a delete earlier on the same path removes it.)
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from cluster.kv.enums import CompareOp, CompareTarget
from cluster.kv.errors import KeyNotFound, LeaseNotFound
from cluster.kv.keys import ALL_KEYS_END
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
    if type(op) is Put:  # the hot path: a plain put cannot fail
        if op.lease or op.ignore_value or op.ignore_lease:
            _check_references(store, leases, op)
            _check_kept_key(store, op, [])
        return
    _check_references(store, leases, op)
    if type(op) is Txn:
        _check_kept_keys(store, op, [])


def _check_references(store: MvccStore, leases: LeaseHook | None, op: Op) -> None:
    """What `op` names must exist: read revisions and leases, in both
    branches of every Txn (stricter than etcd, which checks the branch taken)."""
    match op:
        case Range(revision=revision):
            store.check_revision(revision)
        case Put(lease=lease) if lease and leases is not None:
            if not leases.exists(lease):
                raise LeaseNotFound(lease)
        case Txn(success=success, failure=failure):
            for nested in success + failure:
                _check_references(store, leases, nested)


def _check_kept_keys(store: MvccStore, txn: Txn, deletes: list[DeleteRange]) -> None:
    """Along the branches of `txn` that will run, in order, every put that
    keeps its key's value or lease finds the key (etcd's checkRequestPut);
    `deletes` collects the deletes run before it."""
    branch = txn.success if txn_succeeds(store, txn) else txn.failure
    for op in branch:
        if type(op) is Put:
            _check_kept_key(store, op, deletes)
        elif type(op) is DeleteRange:
            deletes.append(op)
        elif type(op) is Txn:
            _check_kept_keys(store, op, deletes)


def _check_kept_key(store: MvccStore, put: Put, deletes: list[DeleteRange]) -> None:
    if put.ignore_value or put.ignore_lease:
        if store.get(put.key) is None or any(_deletes(d, put.key) for d in deletes):
            raise KeyNotFound()


def _deletes(delete: DeleteRange, key: bytes) -> bool:
    """Whether `delete` removes `key` (the range convention of cluster.kv.keys)."""
    if not delete.range_end:
        return key == delete.key
    if delete.range_end == ALL_KEYS_END:
        return delete.key <= key
    return delete.key <= key < delete.range_end


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
            succeeded = txn_succeeds(store, op)
            branch = op.success if succeeded else op.failure
            responses = tuple(execute(store, leases, nested) for nested in branch)
            return TxnResponse(store.observed_revision, succeeded, responses)
    raise AssertionError(f"not an op: {op!r}")


def txn_succeeds(store: MvccStore, txn: Txn) -> bool:
    """Whether every compare of `txn` holds at the revision the (outermost)
    Txn started from: `store.revision` moves only when the write ends."""
    return all(compare_holds(store, c) for c in txn.compares)


def compare_holds(store: MvccStore, compare: Compare) -> bool:
    """etcd's applyCompare: a compare over a range holds iff it holds for
    every key in the range; an empty range (or a missing key) reads as
    version/create/mod/lease 0, and any VALUE compare on it is false."""
    revision = store.revision
    kv: KeyValue | None = None
    if compare.range_end:
        for kv in store.scan(compare.key, compare.range_end, revision):
            if not _kv_holds(kv, compare):
                return False
        if kv is not None:
            return True  # held for every key (and there was one)
    else:
        kv = store.get(compare.key, revision)
    if kv is None:
        if compare.target == CompareTarget.VALUE:
            return False
        return bool(_COMPARE[compare.op](0, compare.operand))
    return _kv_holds(kv, compare)


def _kv_holds(kv: KeyValue, compare: Compare) -> bool:
    return bool(_COMPARE[compare.op](kv[_FIELD[compare.target]], compare.operand))


def _put(store: MvccStore, leases: LeaseHook, op: Put) -> PutResponse:
    if op.ignore_value or op.ignore_lease:
        return _put_keeping(store, leases, op)
    prev = store.put(op.key, op.value, op.lease)
    if (prev.lease if prev else 0) != op.lease:
        _move_lease(leases, op.key, prev, op.lease)
    return PutResponse(store.observed_revision, prev if op.prev_kv else None)


def _put_keeping(store: MvccStore, leases: LeaseHook, op: Put) -> PutResponse:
    """A put that keeps the key's current value or lease (checked to exist)."""
    current = store.get(op.key)
    assert current is not None, f"kept key {op.key!r} was not checked"
    value = current.value if op.ignore_value else op.value
    lease = current.lease if op.ignore_lease else op.lease
    prev = store.put(op.key, value, lease)
    if current.lease != lease:
        _move_lease(leases, op.key, prev, lease)
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
