"""The request values themselves: the read/write classification every side
uses (the client picks ReadIndex by it, the node serves reads by it), the key
range helpers and Compare's constructors."""
from __future__ import annotations

import pytest

from cluster.kv import (
    ALL_KEYS_END,
    Compact,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    LeaseGrant,
    LeaseLeases,
    OpenSession,
    Put,
    Range,
    Request,
    SortOrder,
    SortTarget,
    Txn,
    is_read_only,
    prefix_end,
)

READS = [
    Range(b"k"),
    Range(b"a", b"z", 3, 10, True, False, SortTarget.VERSION, SortOrder.DESCEND),
    Txn(),
    Txn((Compare.value(b"k", "=", b"v"),), (Range(b"k"),), (Range(b"j"), Txn((), (Range(b"x"),)))),
]
WRITES = [
    Put(b"k", b"v"),
    DeleteRange(b"a", ALL_KEYS_END),
    Txn((), (Range(b"k"), Put(b"k", b"w"))),
    Txn((), (Range(b"k"),), (DeleteRange(b"k"),)),  # a write in either branch counts
    Txn((), (Txn((), (Put(b"k", b"v"),)),)),  # also when nested
    Compact(5),
    OpenSession(),
    LeaseGrant(5),
    LeaseLeases(),  # answered by the leader, not a ReadIndex read
]


@pytest.mark.parametrize("request_", READS)
def test_ranges_and_txns_of_ranges_are_read_only(request_: Request) -> None:
    assert is_read_only(request_)


@pytest.mark.parametrize("request_", WRITES)
def test_anything_that_may_write_is_not_read_only(request_: Request) -> None:
    assert not is_read_only(request_)


def test_prefix_end_is_the_first_key_past_the_prefix() -> None:
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"/p/") == b"/p0"
    assert prefix_end(b"") == prefix_end(b"\xff\xff") == ALL_KEYS_END


def test_with_prefix_spans_the_prefix() -> None:
    assert Range.with_prefix(b"/p/", limit=1) == Range(b"/p/", b"/p0", limit=1)
    assert Range.with_prefix(b"") == Range(ALL_KEYS_END, ALL_KEYS_END)
    assert DeleteRange.with_prefix(b"a\xff", prev_kv=True) == DeleteRange(b"a\xff", b"b", True)


def test_compare_constructors_read_the_operator_symbols() -> None:
    assert Compare.value(b"k", "=", b"v") == Compare(b"k", CompareTarget.VALUE, CompareOp.EQUAL, b"v")
    assert Compare.version(b"k", ">", 2) == Compare(b"k", CompareTarget.VERSION, CompareOp.GREATER, 2)
    assert Compare.create_revision(b"k", "<", 5) == Compare(b"k", CompareTarget.CREATE, CompareOp.LESS, 5)
    assert Compare.mod_revision(b"k", "!=", 4) == Compare(b"k", CompareTarget.MOD, CompareOp.NOT_EQUAL, 4)
    assert Compare.lease(b"k", "==", 9) == Compare(b"k", CompareTarget.LEASE, CompareOp.EQUAL, 9)


def test_sort_enums_carry_etcds_numbers() -> None:
    assert [int(t) for t in (SortTarget.KEY, SortTarget.VERSION, SortTarget.CREATE, SortTarget.MOD,
                             SortTarget.VALUE)] == [0, 1, 2, 3, 4]
    assert [int(o) for o in (SortOrder.NONE, SortOrder.ASCEND, SortOrder.DESCEND)] == [0, 1, 2]
