"""A deliberately simple reference model of the MVCC store: a full copy of the
state (key -> KeyValue) for every revision, ranges by sorting everything.
Slow, obviously right; the property tests hold the real store to it."""
from __future__ import annotations

from dataclasses import replace
from operator import attrgetter

from cluster.kv import (
    ALL_KEYS_END,
    Compact,
    CompactResponse,
    Compacted,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    DeleteResponse,
    FutureRevision,
    KeyNotFound,
    KeyValue,
    KvError,
    Op,
    OpResult,
    Put,
    PutResponse,
    Range,
    RangeResponse,
    Request,
    Result,
    SortOrder,
    SortTarget,
    Txn,
    TxnResponse,
)
from cluster.kv.limits import Limits, check_request

State = dict[bytes, KeyValue]
LIMITS = Limits()


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == ALL_KEYS_END:
        return key >= start
    return start <= key < end


class Reference:
    def __init__(self) -> None:
        self.states: list[State] = [{}, {}]  # states[r] = the state at revision r; 1 is empty
        self.compact = 0
        self.wrote = False

    @property
    def revision(self) -> int:
        return len(self.states) - 1

    def apply(self, request: Request) -> Result:
        try:
            if isinstance(request, Compact):
                return self._compact(request.revision)
            check_request(request, LIMITS)  # the static rules are held to etcd's in test_kv_rules
            self._check(request)  # type: ignore[arg-type]
            work = dict(self.states[-1])
            self.wrote = False
            result = self._run(work, request)  # type: ignore[arg-type]
        except KvError as error:
            return error
        if self.wrote:
            self.states.append(work)
        return result

    def _compact(self, revision: int) -> Result:
        if revision <= self.compact:
            raise Compacted(revision, self.compact)
        if revision > self.revision:
            raise FutureRevision(revision, self.revision)
        self.compact = revision
        return CompactResponse(self.revision, revision)

    def _check(self, op: Op) -> None:
        if isinstance(op, Range) and op.revision:
            if op.revision < self.compact:
                raise Compacted(op.revision, self.compact)
            if op.revision > self.revision:
                raise FutureRevision(op.revision, self.revision)
        if isinstance(op, Txn):
            for nested in op.success + op.failure:
                self._check(nested)

    @property
    def observed(self) -> int:
        return self.revision + 1 if self.wrote else self.revision

    def _run(self, work: State, op: Op) -> OpResult:
        main = self.revision + 1
        if isinstance(op, Put):
            prev = work.get(op.key)
            if op.ignore_value or op.ignore_lease:
                if prev is None:
                    raise KeyNotFound()  # the command fails whole: `work` is dropped
                op = replace(op, value=prev.value if op.ignore_value else op.value,
                             lease=prev.lease if op.ignore_lease else op.lease)
            if prev is None:
                work[op.key] = KeyValue(op.key, op.value, main, main, 1, op.lease)
            else:
                work[op.key] = KeyValue(op.key, op.value, prev.create_revision, main,
                                        prev.version + 1, op.lease)
            self.wrote = True
            return PutResponse(self.observed, prev if op.prev_kv else None)
        if isinstance(op, DeleteRange):
            gone = [work.pop(k) for k in sorted(work) if in_range(k, op.key, op.range_end)]
            self.wrote = self.wrote or bool(gone)
            return DeleteResponse(self.observed, len(gone), tuple(gone) if op.prev_kv else ())
        if isinstance(op, Range):
            state = self.states[op.revision] if op.revision else work
            return self.range(state, op)
        # Compares, nested ones too, read the state the Txn started from (etcd).
        succeeded = all(holds(self.states[-1], c) for c in op.compares)
        responses = tuple(self._run(work, o) for o in (op.success if succeeded else op.failure))
        return TxnResponse(self.observed, succeeded, responses)

    def range(self, state: State, op: Range) -> RangeResponse:
        kvs = [state[k] for k in sorted(state) if in_range(k, op.key, op.range_end)]
        count = len(kvs)
        if op.count_only:
            return RangeResponse(self.observed, (), count, False)
        order = op.sort_order
        if order == SortOrder.NONE and op.sort_target != SortTarget.KEY:
            order = SortOrder.ASCEND
        field = {SortTarget.KEY: "key", SortTarget.VERSION: "version",
                 SortTarget.CREATE: "create_revision", SortTarget.MOD: "mod_revision",
                 SortTarget.VALUE: "value"}[op.sort_target]
        kvs = sorted(kvs, key=attrgetter(field), reverse=order == SortOrder.DESCEND)
        more = bool(op.limit) and count > op.limit
        if op.limit:
            kvs = kvs[: op.limit]
        if op.keys_only:
            kvs = [kv._replace(value=b"") for kv in kvs]
        return RangeResponse(self.observed, tuple(kvs), count, more)


def holds(state: State, compare: Compare) -> bool:
    if compare.range_end:
        found = [kv for k, kv in state.items() if in_range(k, compare.key, compare.range_end)]
        if found:
            return all(holds(state, replace(compare, key=kv.key, range_end=b"")) for kv in found)
        return holds({}, replace(compare, range_end=b""))
    kv = state.get(compare.key)
    if kv is None and compare.target == CompareTarget.VALUE:
        return False
    actual = {
        CompareTarget.VALUE: lambda: kv.value,  # type: ignore[union-attr]
        CompareTarget.VERSION: lambda: kv.version if kv else 0,
        CompareTarget.CREATE: lambda: kv.create_revision if kv else 0,
        CompareTarget.MOD: lambda: kv.mod_revision if kv else 0,
        CompareTarget.LEASE: lambda: kv.lease if kv else 0,
    }[compare.target]()
    operand = compare.operand
    return {
        CompareOp.EQUAL: actual == operand,
        CompareOp.NOT_EQUAL: actual != operand,
        CompareOp.LESS: actual < operand,  # type: ignore[operator]
        CompareOp.GREATER: actual > operand,  # type: ignore[operator]
    }[compare.op]
