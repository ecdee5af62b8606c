"""Recorded client histories: the operation record and its JSON-lines form.

A history is what clients saw, not what the servers did: each operation has an
invoke time and (unless its outcome is unknown) a completion time, both read
from one monotonic clock, and one of three outcomes:

    ok    the operation completed and took effect (for a get: returned `result`)
    fail  the operation definitely did not take effect (e.g. rejected before
          being proposed); the checker ignores it
    info  unknown: a timeout or lost connection; it may take effect at any
          moment after its invoke, or never

One line per operation, a JSON object (see docs/checking.md):

    {"process": 3, "op": "put", "key": "k1", "value": "v7",
     "invoke": 12.5, "complete": 12.9, "outcome": "ok", "revision": 17}
    {"process": 1, "op": "get", "key": "k1", "invoke": 13.0, "complete": 13.1,
     "outcome": "ok", "result": "v7", "revision": 17}
    {"process": 2, "op": "cas", "key": "k1", "expected": "v7", "value": "v8",
     "invoke": 13.2, "complete": 13.4, "outcome": "ok", "result": true}
    {"process": 4, "op": "delete", "key": "k1", "invoke": 14.0, "complete": null,
     "outcome": "info"}

Values are JSON strings or integers; `null` means "the key is absent" (a get's
result, a cas's `expected` for create-if-absent).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any, Union

Value = Union[str, int]
"""A register value; `None` stands for "absent" wherever a value may be missing."""

Process = Union[int, str]


class OpKind(str, Enum):
    PUT = "put"
    GET = "get"
    DELETE = "delete"
    CAS = "cas"  # a txn: if value(key) == expected then put(key, value)


class Outcome(str, Enum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class HistoryError(ValueError):
    """Unreadable history input; names the (1-based) line it could not read."""

    def __init__(self, line: int, message: str, source: str = "") -> None:
        self.line = line
        self.message = message
        self.source = source
        where = f"{source}:{line}" if source else f"line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation as the client saw it.

    Invariants (checked by `validate`): `complete >= invoke` when known; an `ok`
    get has a `result` (None = absent); an `ok` cas has a bool `result` (whether
    its compare held); a delete's `result`, when known, is the number of keys it
    deleted (0 or 1).
    """

    id: int
    process: Process
    kind: OpKind
    key: str
    invoke: float
    complete: float | None
    outcome: Outcome
    value: Value | None = None      # put: the value; cas: the new value
    expected: Value | None = None   # cas: the value compared against (None = absent)
    result: Value | bool | None = None
    revision: int | None = None

    @property
    def effective_complete(self) -> float:
        """When the op must have taken effect by: +inf when the outcome is unknown."""
        if self.outcome is Outcome.INFO or self.complete is None:
            return math.inf
        return self.complete

    @property
    def is_mutation(self) -> bool:
        return self.kind is not OpKind.GET

    def describe(self) -> str:
        """One canonical text form, used in reports and timelines."""
        return f"{self.process}:{self.describe_call()}{self.describe_result()}"

    def describe_call(self) -> str:
        match self.kind:
            case OpKind.PUT:
                return f"put({self.key}, {_text(self.value)})"
            case OpKind.GET:
                return f"get({self.key})"
            case OpKind.DELETE:
                return f"delete({self.key})"
            case OpKind.CAS:
                return f"cas({self.key}, {_text(self.expected)}->{_text(self.value)})"
        raise AssertionError(self.kind)

    def describe_result(self) -> str:
        if self.outcome is not Outcome.OK:
            return f" {self.outcome.value}"
        if self.kind is OpKind.GET:
            return f" -> {_text(self.result)}"
        if self.kind is OpKind.CAS:
            return " -> ok" if self.result else " -> compare failed"
        if self.kind is OpKind.DELETE and self.result is not None:
            return f" -> deleted {self.result}"
        return ""


def _text(value: Value | None) -> str:
    return "nil" if value is None else str(value)


# --- JSON lines -------------------------------------------------------------------

_FIELDS = {"id", "process", "op", "key", "invoke", "complete", "outcome", "value",
           "expected", "result", "revision"}


def to_json(op: Operation) -> dict[str, Any]:
    record: dict[str, Any] = {"process": op.process, "op": op.kind.value, "key": op.key,
                              "invoke": op.invoke, "complete": op.complete,
                              "outcome": op.outcome.value}
    if op.kind in (OpKind.PUT, OpKind.CAS):
        record["value"] = op.value
    if op.kind is OpKind.CAS:
        record["expected"] = op.expected
    if op.outcome is Outcome.OK and (op.kind is OpKind.GET or op.result is not None):
        record["result"] = op.result  # a get's null result is meaningful: absent
    if op.revision is not None:
        record["revision"] = op.revision
    return record


def write_jsonl(ops: Iterable[Operation], out: IO[str]) -> None:
    for op in ops:
        out.write(json.dumps(to_json(op), separators=(",", ":")) + "\n")


def save_jsonl(ops: Iterable[Operation], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        write_jsonl(ops, out)


def read_jsonl(lines: Iterable[str], source: str = "") -> list[Operation]:
    """Parse a JSON-lines history. Blank lines are skipped; anything else that is
    not a valid operation raises `HistoryError` naming its line."""
    ops: list[Operation] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise HistoryError(number, f"not JSON: {err.msg}", source) from None
        try:
            ops.append(from_json(record, len(ops)))
        except ValueError as err:
            raise HistoryError(number, str(err), source) from None
    return ops


def load_jsonl(path: Path) -> list[Operation]:
    with open(path, encoding="utf-8") as lines:
        return read_jsonl(lines, source=str(path))


def from_json(record: object, op_id: int) -> Operation:
    """One JSON object -> Operation; ValueError says what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("an operation must be a JSON object")
    unknown = set(record) - _FIELDS
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = _enum(OpKind, _required(record, "op"), "op")
    outcome = _enum(Outcome, _required(record, "outcome"), "outcome")
    process = _required(record, "process")
    if isinstance(process, bool) or not isinstance(process, (int, str)):
        raise ValueError("process must be an integer or a string")
    key = _required(record, "key")
    if not isinstance(key, str):
        raise ValueError("key must be a string")
    invoke = _time(_required(record, "invoke"), "invoke")
    complete = record.get("complete")
    complete = None if complete is None else _time(complete, "complete")
    op = Operation(
        id=op_id, process=process, kind=kind, key=key, invoke=invoke, complete=complete,
        outcome=outcome, value=_value(record.get("value"), "value"),
        expected=_value(record.get("expected"), "expected"), result=record.get("result"),
        revision=_revision(record.get("revision")))
    validate(op, has_result="result" in record)
    return op


def validate(op: Operation, has_result: bool = True) -> None:
    """The record invariants of `Operation`; ValueError names the first broken one."""
    if op.complete is not None and op.complete < op.invoke:
        raise ValueError(f"complete ({op.complete}) is before invoke ({op.invoke})")
    if op.outcome is not Outcome.INFO and op.complete is None:
        raise ValueError(f"an {op.outcome.value} operation needs a complete time")
    if op.kind in (OpKind.PUT, OpKind.CAS) and op.value is None:
        raise ValueError(f"{op.kind.value} needs a value")
    if op.kind in (OpKind.GET, OpKind.DELETE) and op.value is not None:
        raise ValueError(f"{op.kind.value} takes no value")
    if op.kind is not OpKind.CAS and op.expected is not None:
        raise ValueError(f"only cas takes expected, not {op.kind.value}")
    if op.outcome is not Outcome.OK:
        if op.result is not None:
            raise ValueError(f"an {op.outcome.value} operation has no result")
        return
    match op.kind:
        case OpKind.GET:
            if not has_result:
                raise ValueError("an ok get needs a result (null = absent)")
            _value(op.result, "result")
        case OpKind.CAS:
            if not isinstance(op.result, bool):
                raise ValueError("an ok cas needs a boolean result (did the compare hold)")
        case OpKind.DELETE:
            if op.result is not None and (isinstance(op.result, bool) or op.result not in (0, 1)):
                raise ValueError("a delete's result is the number of keys deleted: 0 or 1")
        case OpKind.PUT:
            if op.result is not None:
                raise ValueError("a put has no result")


def _required(record: dict[str, Any], name: str) -> Any:
    if name not in record:
        raise ValueError(f"missing field {name!r}")
    return record[name]


def _enum(enum: type[OpKind] | type[Outcome], raw: object, name: str) -> Any:
    try:
        return enum(raw)
    except ValueError:
        choices = "/".join(member.value for member in enum)
        raise ValueError(f"{name} must be one of {choices}, not {raw!r}") from None


def _time(raw: object, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValueError(f"{name} must be a finite number")
    return float(raw)


def _value(raw: object, name: str) -> Value | None:
    if raw is None or (isinstance(raw, (str, int)) and not isinstance(raw, bool)):
        return raw
    raise ValueError(f"{name} must be a string, an integer or null")


def _revision(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError("revision must be a non-negative integer")
    return raw
