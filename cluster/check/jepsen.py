"""Jepsen's single-register etcd logs, read into our operation model.

Each line is `INFO  jepsen.util - PROCESS <ws> :TYPE <ws> :F <ws> VALUE` (tabs in
most files, spaces in some), TYPE one of invoke/ok/fail/info, F one of
read/write/cas. Mapping onto `history.Operation`, all on one key, `REGISTER_KEY`:

    read  ok V            get, result V (nil = absent)
    read  fail :timed-out get, outcome fail (no information: the checker ignores it)
    write ok N            put N
    cas   ok [A B]        cas A->B, result True
    cas   fail [A B]      cas A->B, result False: etcd's client reports a failed
                          compare as :fail, which observes "the value was not A"
                          (the reading Porcupine and Knossos give these logs)
    ... info              outcome info (may take effect later, or never)
    invoke, no completion outcome info

Times are line numbers: Jepsen logs events in real-time order, which is all a
linearizability checker needs.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .history import HistoryError, Operation, OpKind, Outcome, Value

REGISTER_KEY = "register"

_LINE = re.compile(
    r"^INFO\s+jepsen\.util\s+-\s+(?P<process>\d+)\s+:(?P<type>invoke|ok|fail|info)"
    r"\s+:(?P<f>read|write|cas)\s+(?P<value>.*?)\s*$")
_CAS_ARGS = re.compile(r"^\[\s*(-?\d+)\s+(-?\d+)\s*\]$")


@dataclass(slots=True)
class _Pending:
    line: int
    f: str
    value: str


def looks_like_jepsen(first_line: str) -> bool:
    return bool(_LINE.match(first_line))


def read_jepsen(lines: Iterable[str], source: str = "") -> list[Operation]:
    """Parse a Jepsen register log; `HistoryError` names the first unreadable line."""
    pending: dict[int, _Pending] = {}
    ops: list[tuple[int, Operation]] = []  # (invoke line, op), to restore invoke order
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise HistoryError(number, "not a Jepsen `INFO jepsen.util - PROCESS :TYPE :F VALUE` "
                                       "line", source)
        process, kind, f, value = (int(match["process"]), match["type"], match["f"],
                                   match["value"])
        if kind == "invoke":
            if process in pending:
                raise HistoryError(number, f"process {process} invokes while its operation "
                                           f"from line {pending[process].line} is outstanding",
                                   source)
            pending[process] = _Pending(number, f, value)
            continue
        call = pending.pop(process, None)
        if call is None:
            raise HistoryError(number, f"process {process} completes an operation it never "
                                       "invoked", source)
        if call.f != f:
            raise HistoryError(number, f"process {process} invoked :{call.f} (line {call.line}) "
                                       f"but completes :{f}", source)
        try:
            op = _operation(len(ops), process, call, kind, value, number)
        except ValueError as err:
            raise HistoryError(number, str(err), source) from None
        ops.append((call.line, op))
    for process, call in pending.items():
        try:
            ops.append((call.line, _operation(len(ops), process, call, "info", "", None)))
        except ValueError as err:
            raise HistoryError(call.line, str(err), source) from None
    ops.sort(key=lambda item: item[0])
    return [_renumber(op, index) for index, (_, op) in enumerate(ops)]


def load_jepsen(path: Path) -> list[Operation]:
    with open(path, encoding="utf-8") as lines:
        return read_jepsen(lines, source=str(path))


def _operation(op_id: int, process: int, call: _Pending, kind: str, value: str,
               line: int | None) -> Operation:
    """The operation invoked at `call` and completed as `kind` on `line` (None: never)."""
    op = Operation(id=op_id, process=process, kind=_KINDS[call.f], key=REGISTER_KEY,
                   invoke=float(call.line), complete=None if line is None else float(line),
                   outcome=Outcome.INFO)
    if kind == "info":
        return _with_args(call, op)
    if call.f == "read":
        if kind == "fail":
            return replace(op, outcome=Outcome.FAIL)
        return replace(op, outcome=Outcome.OK, result=_register(value))
    if value != call.value:
        raise ValueError(f"{call.f} completes with {value}, invoked with {call.value}")
    if call.f == "write":
        return _with_args(call, replace(op, outcome=Outcome.OK if kind == "ok" else Outcome.FAIL))
    return _with_args(call, replace(op, outcome=Outcome.OK, result=kind == "ok"))


_KINDS = {"read": OpKind.GET, "write": OpKind.PUT, "cas": OpKind.CAS}


def _with_args(call: _Pending, op: Operation) -> Operation:
    """Fill put/cas arguments from the invoke line's value."""
    if call.f == "write":
        value = _register(call.value)
        if value is None:
            raise ValueError("a write needs an integer value, not nil")
        return replace(op, value=value)
    if call.f == "cas":
        args = _CAS_ARGS.match(call.value)
        if args is None:
            raise ValueError(f"cas arguments must be [FROM TO], not {call.value!r}")
        return replace(op, expected=int(args[1]), value=int(args[2]))
    return op


def _register(raw: str) -> Value | None:
    if raw == "nil":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"register values are integers or nil, not {raw!r}") from None


def _renumber(op: Operation, op_id: int) -> Operation:
    return replace(op, id=op_id)
