"""Terse constructors for hand-made histories: one call per operation.

    history(put(1, "x", 1, 0, 1), get(2, "x", 1, 2, 3))

Times are (invoke, complete); `complete=None` with `outcome="info"` is an op whose
outcome is unknown. Ids are assigned in argument order by `history`.
"""
from __future__ import annotations

from dataclasses import replace

from cluster.check.history import Operation, OpKind, Outcome, Value


def _op(process: int, kind: OpKind, key: str, invoke: float, complete: float | None,
        outcome: str, **fields: object) -> Operation:
    out = Outcome(outcome)
    return Operation(id=-1, process=process, kind=kind, key=key, invoke=invoke,
                     complete=None if out is Outcome.INFO else complete, outcome=out,
                     **fields)  # type: ignore[arg-type]


def put(p: int, key: str, value: Value, invoke: float, complete: float | None = None,
        outcome: str = "ok", revision: int | None = None) -> Operation:
    return _op(p, OpKind.PUT, key, invoke, complete, outcome, value=value, revision=revision)


def get(p: int, key: str, result: Value | None, invoke: float, complete: float | None = None,
        outcome: str = "ok", revision: int | None = None) -> Operation:
    return _op(p, OpKind.GET, key, invoke, complete, outcome,
               result=result if outcome == "ok" else None, revision=revision)


def delete(p: int, key: str, invoke: float, complete: float | None = None, outcome: str = "ok",
           deleted: int | None = None, revision: int | None = None) -> Operation:
    return _op(p, OpKind.DELETE, key, invoke, complete, outcome, result=deleted,
               revision=revision)


def cas(p: int, key: str, expected: Value | None, value: Value, succeeded: bool | None,
        invoke: float, complete: float | None = None, outcome: str = "ok",
        revision: int | None = None) -> Operation:
    return _op(p, OpKind.CAS, key, invoke, complete, outcome, expected=expected, value=value,
               result=succeeded if outcome == "ok" else None, revision=revision)


def info(op: Operation) -> Operation:
    """The same call with an unknown outcome."""
    return replace(op, outcome=Outcome.INFO, complete=None, result=None)


def history(*ops: Operation) -> list[Operation]:
    return [replace(op, id=index) for index, op in enumerate(ops)]
