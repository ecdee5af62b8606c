"""The text form of a transaction read by `python -m cluster txn` (etcdctl's):

    compares, one per line
    <blank line>
    operations if every compare holds, one per line
    <blank line>
    operations otherwise, one per line

A compare is `TARGET("KEY") OP OPERAND` with TARGET one of value, version, create,
mod, lease; OP one of = == != > <; OPERAND a quoted string for value, an integer
(quoted or not) for the others. An operation is `put KEY VALUE`, `get KEY
[RANGE_END] [--prefix] [--from-key] [--limit N] [--rev R] [--keys-only]
[--count-only]`, or `del KEY [RANGE_END] [--prefix] [--from-key]`, split like a
shell line (quote values with spaces). Lines starting with `#` are comments.

    mod("config") > "0"

    put config v2
    get config

    put config v1

Errors are `TxnSyntaxError`, naming the line.
"""
from __future__ import annotations

import re
import shlex

from cluster.kv import (
    ALL_KEYS_END, Compare, CompareOp, CompareTarget, DeleteRange, Op, Put, Range, prefix_end,
)

_COMPARE = re.compile(r'^\s*(value|version|create|mod|lease)\s*\(\s*(.*?)\s*\)\s*(==|=|!=|>|<)\s*(.*?)\s*$')
_TARGETS = {"value": CompareTarget.VALUE, "version": CompareTarget.VERSION, "create": CompareTarget.CREATE,
            "mod": CompareTarget.MOD, "lease": CompareTarget.LEASE}
_OPS = {"=": CompareOp.EQUAL, "==": CompareOp.EQUAL, "!=": CompareOp.NOT_EQUAL, ">": CompareOp.GREATER,
        "<": CompareOp.LESS}


class TxnSyntaxError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"txn line {line}: {problem}")
        self.line = line


def parse_txn(text: str) -> tuple[list[Compare], list[Op], list[Op]]:
    sections: list[list[tuple[int, str]]] = [[]]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:  # every blank line ends a section (a leading one: no compares)
            sections.append([])
            continue
        sections[-1].append((number, line))
    while len(sections) > 1 and not sections[-1]:
        sections.pop()
    if len(sections) > 3:
        number = sections[3][0][0]
        raise TxnSyntaxError(number, "more than three sections (compares, success ops, failure ops)")
    sections += [[]] * (3 - len(sections))
    compares = [parse_compare(n, line) for n, line in sections[0]]
    success = [parse_op(n, line) for n, line in sections[1]]
    failure = [parse_op(n, line) for n, line in sections[2]]
    return compares, success, failure


def _unquote(number: int, text: str) -> str:
    try:
        parts = shlex.split(text)
    except ValueError as error:
        raise TxnSyntaxError(number, f"bad quoting in {text!r}: {error}") from None
    if len(parts) != 1:
        raise TxnSyntaxError(number, f"expected one (quoted) value, got {text!r}")
    return parts[0]


def parse_compare(number: int, line: str) -> Compare:
    match = _COMPARE.match(line)
    if not match:
        raise TxnSyntaxError(number, f"not a compare: {line!r} (expected e.g. value(\"k\") = \"v\" or "
                                     "mod(\"k\") > 3)")
    target, key, op, operand = match.groups()
    key_bytes = _unquote(number, key).encode()
    value = _unquote(number, operand)
    if target == "value":
        return Compare(key_bytes, _TARGETS[target], _OPS[op], value.encode())
    try:
        number_operand = int(value)
    except ValueError:
        raise TxnSyntaxError(number, f"{target}() compares with an integer, got {value!r}") from None
    return Compare(key_bytes, _TARGETS[target], _OPS[op], number_operand)


def parse_op(number: int, line: str) -> Op:
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise TxnSyntaxError(number, f"bad quoting: {error}") from None
    verb, args = words[0].lower(), words[1:]
    flags = {a for a in args if a.startswith("--") and a.partition("=")[0] not in ("--limit", "--rev")}
    valued = _valued_flags(number, args)
    plain = _positional(args)
    if verb == "put":
        if len(plain) != 2 or flags or valued:
            raise TxnSyntaxError(number, "put takes KEY VALUE")
        return Put(plain[0].encode(), plain[1].encode())
    if verb in ("get", "del", "delete"):
        allowed = {"--prefix", "--from-key"} | ({"--keys-only", "--count-only"} if verb == "get" else set())
        unknown = flags - allowed
        if unknown or not 1 <= len(plain) <= 2 or (verb != "get" and valued):
            raise TxnSyntaxError(number, f"bad {verb}: {line!r}")
        key, end = span(plain[0].encode(), plain[1].encode() if len(plain) == 2 else b"",
                        "--prefix" in flags, "--from-key" in flags)
        if verb == "get":
            return Range(key, end, revision=valued.get("--rev", 0), limit=valued.get("--limit", 0),
                         keys_only="--keys-only" in flags, count_only="--count-only" in flags)
        return DeleteRange(key, end)
    raise TxnSyntaxError(number, f"unknown operation {verb!r} (put, get, del)")


def _valued_flags(number: int, args: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in ("--limit", "--rev"):
            text = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            try:
                out[name] = int(text)
            except ValueError:
                raise TxnSyntaxError(number, f"{name} needs an integer") from None
    return out


def _positional(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--limit", "--rev"):
            skip = True
        elif not arg.startswith("--"):
            out.append(arg)
    return out


def span(key: bytes, range_end: bytes, prefix: bool, from_key: bool) -> tuple[bytes, bytes]:
    """(key, range_end) for the etcd-style range options."""
    if prefix:
        return (key or ALL_KEYS_END), prefix_end(key)
    if from_key:
        return (key or ALL_KEYS_END), ALL_KEYS_END
    return key, range_end
