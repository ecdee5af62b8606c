"""The text form of a transaction read by `python -m cluster txn` (etcdctl's):

    compares, one per line
    <blank line>
    operations if every compare holds, one per line
    <blank line>
    operations otherwise, one per line

A compare is `TARGET("KEY") OP OPERAND` with TARGET one of value (or val), version
(ver), create (c), mod (m), lease; OP one of = == != > <; OPERAND a quoted string
for value, an integer (quoted or not) for version/create/mod, a lease id in hex
(as `lease grant` prints it) for lease. An operation is a put, get or del command
line with etcdctl's flags, split like a shell line (quote values with spaces):

    put KEY VALUE [--lease=ID] [--prev-kv] [--ignore-value] [--ignore-lease]
    get KEY [RANGE_END] [--prefix] [--from-key] [--limit N] [--rev R] [--keys-only]
        [--count-only] [--sort-by CREATE|KEY|MODIFY|VALUE|VERSION] [--order ASCEND|DESCEND]
    del KEY [RANGE_END] [--prefix] [--from-key] [--prev-kv]

Lines starting with `#` are comments. Keys and values are bytes: text that is not
UTF-8 passes through unchanged (read as bytes, decoded with surrogateescape).

    mod("config") > "0"

    put config v2
    get config

    put config v1

Errors are `TxnSyntaxError`, naming the line (the CLI exits 3, etcdctl's
ExitInvalidInput).
"""
from __future__ import annotations

import argparse
import re
import shlex
from typing import NoReturn

from cluster import kvflags
from cluster.kv import (
    ALL_KEYS_END, Compare, CompareOp, CompareTarget, DeleteRange, Op, Put, Range, prefix_end,
)

_COMPARE = re.compile(r'^\s*(\w+)\s*\(\s*(.*?)\s*\)\s*(==|=|!=|>|<)\s*(.*?)\s*$')
#: etcdctl's spellings (txn_command.go's parseCompare) and ours.
_TARGETS = {"value": CompareTarget.VALUE, "val": CompareTarget.VALUE,
            "version": CompareTarget.VERSION, "ver": CompareTarget.VERSION,
            "create": CompareTarget.CREATE, "c": CompareTarget.CREATE,
            "mod": CompareTarget.MOD, "m": CompareTarget.MOD,
            "lease": CompareTarget.LEASE}
_OPS = {"=": CompareOp.EQUAL, "==": CompareOp.EQUAL, "!=": CompareOp.NOT_EQUAL, ">": CompareOp.GREATER,
        "<": CompareOp.LESS}


class TxnSyntaxError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"txn line {line}: {problem}")
        self.line = line


def parse_txn(text: str | bytes) -> tuple[list[Compare], list[Op], list[Op]]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
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
    if not match or match.group(1) not in _TARGETS:
        raise TxnSyntaxError(number, f"not a compare: {line!r} (expected e.g. value(\"k\") = \"v\" or "
                                     "mod(\"k\") > 3; targets: " + ", ".join(_TARGETS) + ")")
    target_name, key, op, operand = match.groups()
    target = _TARGETS[target_name]
    key_bytes = kvflags.raw(_unquote(number, key))
    value = _unquote(number, operand)
    if target is CompareTarget.VALUE:
        return Compare(key_bytes, target, _OPS[op], kvflags.raw(value))
    if target is CompareTarget.LEASE:
        try:
            return Compare(key_bytes, target, _OPS[op], kvflags.parse_lease_id(value, allow_zero=True))
        except ValueError as error:
            raise TxnSyntaxError(number, f"lease() compares with a lease id: {error}") from None
    try:
        number_operand = int(value)
    except ValueError:
        raise TxnSyntaxError(number, f"{target_name}() compares with an integer, got {value!r}") from None
    return Compare(key_bytes, target, _OPS[op], number_operand)


class _OpLineError(Exception):
    pass


class _OpParser(argparse.ArgumentParser):
    """argparse, raising instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _OpLineError(message)


def _op_parser() -> argparse.ArgumentParser:
    parser = _OpParser(prog="txn", add_help=False, allow_abbrev=False)
    verbs = parser.add_subparsers(dest="verb", metavar="put|get|del", parser_class=_OpParser)
    verbs.required = True
    kvflags.add_put_args(verbs.add_parser("put", add_help=False, allow_abbrev=False))
    kvflags.add_get_args(verbs.add_parser("get", add_help=False, allow_abbrev=False))
    kvflags.add_del_args(verbs.add_parser("del", aliases=["delete"], add_help=False, allow_abbrev=False))
    return parser


_OP_PARSER = _op_parser()


def parse_op(number: int, line: str) -> Op:
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise TxnSyntaxError(number, f"bad quoting: {error}") from None
    if words and words[0].lower() not in ("put", "get", "del", "delete"):
        raise TxnSyntaxError(number, f"unknown operation {words[0]!r} (put, get, del)")
    words[0] = words[0].lower()
    try:
        args = _OP_PARSER.parse_args(words)
    except _OpLineError as error:
        raise TxnSyntaxError(number, f"bad {words[0]}: {error} in {line!r}") from None
    if args.verb == "put":
        return _put(number, args)
    key, end = _op_span(number, args)
    if args.verb == "get":
        try:
            sort_target, sort_order = kvflags.sort_options(args.sort_by, args.order)
        except ValueError as error:
            raise TxnSyntaxError(number, str(error)) from None
        return Range(key, end, revision=args.rev, limit=args.limit, keys_only=args.keys_only,
                     count_only=args.count_only, sort_target=sort_target, sort_order=sort_order)
    return DeleteRange(key, end, prev_kv=args.prev_kv)


def _put(number: int, args: argparse.Namespace) -> Put:
    if args.ignore_value:
        if args.value is not None:
            raise TxnSyntaxError(number, "put takes only KEY with --ignore-value")
        value = b""
    elif args.value is None:
        raise TxnSyntaxError(number, "put takes KEY VALUE")
    else:
        value = kvflags.raw(args.value)
    return Put(kvflags.raw(args.key), value, lease=args.lease, prev_kv=args.prev_kv,
               ignore_value=args.ignore_value, ignore_lease=args.ignore_lease)


def _op_span(number: int, args: argparse.Namespace) -> tuple[bytes, bytes]:
    if args.prefix + args.from_key + bool(args.range_end) > 1:
        raise TxnSyntaxError(number, "use only one of RANGE_END, --prefix, --from-key")
    return span(kvflags.raw(args.key), kvflags.raw(args.range_end), args.prefix, args.from_key)


def span(key: bytes, range_end: bytes, prefix: bool, from_key: bool) -> tuple[bytes, bytes]:
    """(key, range_end) for the etcd-style range options."""
    if prefix:
        return (key or ALL_KEYS_END), prefix_end(key)
    if from_key:
        return (key or ALL_KEYS_END), ALL_KEYS_END
    return key, range_end
