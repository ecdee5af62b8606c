"""etcd's PutRequest.ignore_value/ignore_lease and Compare.range_end, through
`apply` and bytes: the rules of etcdserver/apply.go (Put, checkRequestPut,
applyCompare), one test per rule."""
from __future__ import annotations

import pytest
from kv_driver import Driver

from cluster.kv import (
    ALL_KEYS_END,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    DuplicateKey,
    KeyNotFound,
    KeyValue,
    LeaseNotFound,
    LeaseProvided,
    LeaseRevoke,
    Put,
    PutResponse,
    Range,
    Txn,
    TxnResponse,
    ValueProvided,
)


@pytest.fixture
def kv() -> Driver:
    kv = Driver.with_leases(5, 6)
    kv(Put(b"a", b"1", lease=5))  # revision 2
    kv(Put(b"b", b"2"))  # revision 3
    kv(Put(b"b", b"3"))  # revision 4: b has version 2
    return kv


def get(kv: Driver, key: bytes) -> KeyValue | None:
    return kv.machine.get(key)


# --- ignore_value / ignore_lease -------------------------------------------------------------


def test_ignore_value_keeps_the_value_and_sets_the_lease(kv: Driver) -> None:
    assert kv(Put(b"a", b"", lease=6, ignore_value=True)) == PutResponse(5)
    assert get(kv, b"a") == KeyValue(b"a", b"1", 2, 5, 2, 6)
    assert kv.machine.lease(5).keys == set()  # type: ignore[union-attr]
    assert kv.machine.lease(6).keys == {b"a"}  # type: ignore[union-attr]


def test_ignore_lease_keeps_the_lease_and_sets_the_value(kv: Driver) -> None:
    assert kv(Put(b"a", b"new", prev_kv=True, ignore_lease=True)) == PutResponse(
        5, KeyValue(b"a", b"1", 2, 2, 1, 5))
    assert get(kv, b"a") == KeyValue(b"a", b"new", 2, 5, 2, 5)
    assert kv.machine.lease(5).keys == {b"a"}  # type: ignore[union-attr]


def test_both_keep_everything_but_still_make_a_revision(kv: Driver) -> None:
    assert kv(Put(b"a", b"", ignore_value=True, ignore_lease=True)) == PutResponse(5)
    assert get(kv, b"a") == KeyValue(b"a", b"1", 2, 5, 2, 5)


def test_keeping_needs_the_key(kv: Driver) -> None:
    assert kv(Put(b"zz", b"", ignore_value=True)) == KeyNotFound()
    assert kv(Put(b"zz", b"v", ignore_lease=True)) == KeyNotFound()
    kv(DeleteRange(b"b"))
    assert kv(Put(b"b", b"", ignore_value=True)) == KeyNotFound()
    assert kv.machine.revision == 5 and get(kv, b"zz") is None


def test_a_value_or_lease_given_with_its_ignore_flag_is_refused(kv: Driver) -> None:
    assert kv(Put(b"a", b"v", ignore_value=True)) == ValueProvided()
    assert kv(Put(b"a", b"", 6, ignore_lease=True)) == LeaseProvided()
    assert kv(Put(b"zz", b"v", ignore_value=True)) == ValueProvided()  # static, before the store
    assert kv.machine.revision == 4


def test_an_unknown_lease_is_found_before_a_missing_key_as_in_etcds_put(kv: Driver) -> None:
    assert kv(Put(b"zz", b"", lease=9, ignore_value=True)) == LeaseNotFound(9)


def test_a_revoked_lease_is_not_kept(kv: Driver) -> None:
    kv(LeaseRevoke(5))  # deletes a
    assert kv(Put(b"a", b"v", ignore_lease=True)) == KeyNotFound()


def test_a_failing_kept_put_late_in_a_txn_fails_it_whole(kv: Driver) -> None:
    txn = Txn((), (Put(b"x", b"1"), DeleteRange(b"b"), Txn((), (Put(b"zz", b"", ignore_value=True),))))
    assert kv(txn) == KeyNotFound()
    assert kv.machine.revision == 4
    assert get(kv, b"x") is None and get(kv, b"b") is not None


def test_a_kept_put_in_the_branch_not_taken_does_not_count(kv: Driver) -> None:
    """etcd's idiom: create the key if missing, else keep its value."""
    missing = Compare.version(b"zz", "=", 0)
    txn = Txn((missing,), (Put(b"zz", b"v"),), (Put(b"zz", b"", 6, ignore_value=True),))
    assert kv(txn) == TxnResponse(5, True, (PutResponse(5),))
    assert kv(txn) == TxnResponse(6, False, (PutResponse(6),))
    assert get(kv, b"zz") == KeyValue(b"zz", b"v", 5, 6, 2, 6)
    nested = Txn((), (Txn((Compare.version(b"yy", ">", 0),), (Put(b"yy", b"", ignore_value=True),)),))
    assert kv(nested) == TxnResponse(6, True, (TxnResponse(6, False, ()),))


def test_a_key_deleted_earlier_in_the_txn_cannot_be_kept(kv: Driver) -> None:
    """A delete "from key on" escapes etcd's DuplicateKey rule (etcd itself
    panics on this txn); here the txn fails whole instead."""
    txn = Txn((), (DeleteRange(b"a", ALL_KEYS_END), Put(b"b", b"", ignore_value=True)))
    assert kv(txn) == KeyNotFound()
    assert kv.machine.revision == 4 and get(kv, b"a") is not None


def test_two_puts_of_a_key_in_a_txn_are_refused(kv: Driver) -> None:
    assert kv(Txn((), (Put(b"a", b"x"), Put(b"a", b"", ignore_value=True)))) == DuplicateKey()


# --- compares over a range --------------------------------------------------------------------


def version(key: bytes, op: str, operand: int, range_end: bytes) -> Compare:
    return Compare(key, CompareTarget.VERSION, CompareOp.from_symbol(op), operand, range_end)


def succeeded(kv: Driver, *compares: Compare) -> bool:
    result = kv(Txn(compares))
    assert isinstance(result, TxnResponse), result
    return result.succeeded


def test_a_range_compare_holds_iff_it_holds_for_every_key(kv: Driver) -> None:
    # a has version 1, b version 2
    assert succeeded(kv, version(b"a", ">", 0, b"c"))
    assert not succeeded(kv, version(b"a", "=", 1, b"c"))
    assert succeeded(kv, version(b"a", "=", 1, b"b"))
    assert succeeded(kv, version(b"a", "<", 3, ALL_KEYS_END))
    assert not succeeded(kv, version(b"a", "!=", 2, ALL_KEYS_END))
    value = Compare(b"a", CompareTarget.VALUE, CompareOp.GREATER, b"0", b"c")
    assert succeeded(kv, value)
    lease = Compare(b"a", CompareTarget.LEASE, CompareOp.EQUAL, 5, b"c")
    assert not succeeded(kv, lease)


def test_an_empty_range_compares_as_a_missing_key(kv: Driver) -> None:
    assert succeeded(kv, version(b"c", "=", 0, b"d"))
    assert succeeded(kv, Compare(b"c", CompareTarget.MOD, CompareOp.LESS, 1, ALL_KEYS_END))
    assert not succeeded(kv, Compare(b"c", CompareTarget.VALUE, CompareOp.NOT_EQUAL, b"x", b"d"))
    assert succeeded(kv, version(b"b", "=", 0, b"a"))  # range_end before key: empty


def test_a_range_compare_ignores_deleted_keys(kv: Driver) -> None:
    kv(DeleteRange(b"b"))
    assert succeeded(kv, version(b"a", "=", 1, ALL_KEYS_END))


def test_range_compares_in_nested_txns_read_the_start_revision(kv: Driver) -> None:
    inner = Txn((version(b"a", "=", 1, b"c"),), (Range(b"a"),), (Range(b"b"),))
    result = kv(Txn((), (DeleteRange(b"b"), inner)))
    assert isinstance(result, TxnResponse)
    assert result.responses[1].succeeded is False  # type: ignore[union-attr]


def test_range_compares_read_revisions_as_served_without_the_log(kv: Driver) -> None:
    txn = Txn((version(b"a", ">", 0, b"c"),), (Range(b"a"),))
    assert kv.machine.read(txn).succeeded  # type: ignore[union-attr]
