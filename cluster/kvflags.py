"""The arguments of `put`, `get` and `del`, defined once for the commands and for
the operations of a `txn` (etcdctl parses a txn's operation lines with its put, get
and del commands, so the same flags mean the same there: `put K V --lease=ID`,
`get K --sort-by=MODIFY --order=DESCEND`).

Keys and values are bytes: a command line is decoded by Python with
surrogateescape, and `os.fsencode` gives back the exact bytes typed, UTF-8 or not.
"""
from __future__ import annotations

import argparse
import os

from cluster.kv import SortOrder, SortTarget

SORT_TARGETS = {"KEY": SortTarget.KEY, "VERSION": SortTarget.VERSION, "CREATE": SortTarget.CREATE,
                "MODIFY": SortTarget.MOD, "VALUE": SortTarget.VALUE}
SORT_ORDERS = {"ASCEND": SortOrder.ASCEND, "DESCEND": SortOrder.DESCEND}


def raw(text: str) -> bytes:
    """The bytes of a command-line (or txn-line) string, undoing surrogateescape."""
    return os.fsencode(text)


def nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_lease_id(text: str, *, allow_zero: bool = False) -> int:
    """A lease id in hex, as etcdctl prints and reads them; ValueError if not."""
    try:
        value = int(text, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not a lease id (hexadecimal)") from None
    if not (0 if allow_zero else 1) <= value < 2**63:
        raise ValueError(f"lease id {text} out of range (1 to 7fffffffffffffff)")
    return value


def lease_id(text: str) -> int:
    try:
        return parse_lease_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def sort_options(sort_by: str, order: str) -> tuple[SortTarget, SortOrder]:
    """etcdctl's `--sort-by` and `--order` (any case; empty: by key, unsorted);
    ValueError for an unknown one (etcdctl: "bad sort target", ExitBadFeature)."""
    target = SORT_TARGETS.get(sort_by.upper()) if sort_by else SortTarget.KEY
    if target is None:
        raise ValueError(f"bad sort target {sort_by} (CREATE, KEY, MODIFY, VALUE or VERSION)")
    sort_order = SORT_ORDERS.get(order.upper()) if order else SortOrder.NONE
    if sort_order is None:
        raise ValueError(f"bad sort order {order} (ASCEND or DESCEND)")
    return target, sort_order


def add_range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("range_end", metavar="RANGE_END", nargs="?", default="",
                        help="end of the range [KEY, RANGE_END)")
    parser.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    parser.add_argument("--from-key", action="store_true", help="every key >= KEY")


def add_put_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("value", metavar="VALUE", nargs="?")
    parser.add_argument("--prev-kv", action="store_true", help="also print the previous key-value")
    parser.add_argument("--lease", type=lease_id, default=0, metavar="ID",
                        help="attach the key to lease ID (hex); a put without --lease detaches it")
    parser.add_argument("--ignore-value", action="store_true",
                        help="update the key using its current value (no VALUE given)")
    parser.add_argument("--ignore-lease", action="store_true", help="update the key using its current lease")


def add_get_args(parser: argparse.ArgumentParser) -> None:
    add_range_args(parser)
    parser.add_argument("--limit", type=nonnegative, default=0, metavar="N", help="at most N keys (0: no limit)")
    parser.add_argument("--rev", type=nonnegative, default=0, metavar="R", help="read at revision R (0: latest)")
    parser.add_argument("--keys-only", action="store_true")
    parser.add_argument("--count-only", action="store_true")
    parser.add_argument("--print-value-only", action="store_true", help="simple output: values only")
    parser.add_argument("--sort-by", default="", metavar="TARGET",
                        help="sort by CREATE, KEY, MODIFY, VALUE or VERSION")
    parser.add_argument("--order", default="", metavar="ORDER", help="ASCEND or DESCEND (with --sort-by)")


def add_del_args(parser: argparse.ArgumentParser) -> None:
    add_range_args(parser)
    parser.add_argument("--prev-kv", action="store_true", help="also print the deleted key-values")
