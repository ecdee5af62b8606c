"""The enumerations of the KV API, numbered as in etcd's v3 API.

Their numbers are what the codec puts on the wire, so they never change: a
request's `sort_target` or a compare's `op` is one of these on both sides.
"""
from __future__ import annotations

from enum import IntEnum


class SortTarget(IntEnum):
    """etcd's RangeRequest.SortTarget: which field a Range sorts by."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class SortOrder(IntEnum):
    """etcd's RangeRequest.SortOrder (NONE: by key, ascending)."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class CompareTarget(IntEnum):
    """etcd's Compare.CompareTarget: which field of the key a compare reads."""

    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareOp(IntEnum):
    """etcd's Compare.CompareResult: how the field is compared to the operand."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3

    @classmethod
    def from_symbol(cls, symbol: str) -> CompareOp:
        """`"="`, `"!="`, `"<"` or `">"` as a CompareOp."""
        return _SYMBOLS[symbol]


_SYMBOLS = {
    "=": CompareOp.EQUAL,
    "==": CompareOp.EQUAL,
    ">": CompareOp.GREATER,
    "<": CompareOp.LESS,
    "!=": CompareOp.NOT_EQUAL,
}
