"""The etcd data-model rules, one test per rule, through `apply` and bytes."""
from __future__ import annotations

import pytest
from kv_driver import Driver

from cluster.kv import (
    Compact,
    CompactResponse,
    Compacted,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    DeleteResponse,
    FutureRevision,
    InvalidCommand,
    KeyValue,
    LeaseGrant,
    LeaseNotFound,
    LimitExceeded,
    Limits,
    Put,
    PutResponse,
    Range,
    RangeResponse,
    SortOrder,
    SortTarget,
    Txn,
    TxnResponse,
    prefix_end,
)
from node.statemachine import StateMachine


@pytest.fixture
def kv() -> Driver:
    return Driver()


def keys(result: object) -> list[bytes]:
    assert isinstance(result, RangeResponse), result
    return [kv.key for kv in result.kvs]


# --- revisions and put ------------------------------------------------------------


def test_an_empty_store_is_at_revision_1_as_in_etcd(kv: Driver) -> None:
    assert kv.machine.revision == 1
    assert kv(Range(b"a")) == RangeResponse(1, (), 0, False)


def test_each_put_makes_one_new_revision(kv: Driver) -> None:
    assert kv(Put(b"a", b"1")) == PutResponse(2)
    assert kv(Put(b"b", b"1")) == PutResponse(3)
    assert kv.machine.revision == 3


def test_put_sets_create_mod_revision_and_version(kv: Driver) -> None:
    kv(LeaseGrant(10, 7))
    kv(Put(b"a", b"1"))
    kv(Put(b"a", b"2", lease=7))
    assert kv.machine.get(b"a") == KeyValue(b"a", b"2", 2, 3, 2, 7)


def test_put_returns_previous_kv_only_when_asked(kv: Driver) -> None:
    assert kv(Put(b"a", b"1", prev_kv=True)) == PutResponse(2, None)
    assert kv(Put(b"a", b"2", prev_kv=True)) == PutResponse(3, KeyValue(b"a", b"1", 2, 2, 1))
    assert kv(Put(b"a", b"3")) == PutResponse(4, None)


def test_put_after_delete_starts_a_new_generation(kv: Driver) -> None:
    kv(Put(b"a", b"1"))
    kv(Put(b"a", b"2"))
    kv(DeleteRange(b"a"))
    kv(Put(b"a", b"3"))
    assert kv.machine.get(b"a") == KeyValue(b"a", b"3", 5, 5, 1)


def test_put_without_lease_detaches_the_key_from_its_lease(kv: Driver) -> None:
    kv(LeaseGrant(10, 9))
    kv(Put(b"a", b"1", lease=9))
    kv(Put(b"a", b"2"))
    assert kv.machine.get(b"a").lease == 0  # type: ignore[union-attr]
    assert kv.machine.lease(9).keys == set()  # type: ignore[union-attr]


# --- range --------------------------------------------------------------------------


@pytest.fixture
def abc(kv: Driver) -> Driver:
    for key, value in [(b"a", b"3"), (b"ab", b"1"), (b"b", b"2"), (b"c", b"0")]:
        kv(Put(key, value))  # revisions 2..5
    kv(Put(b"b", b"9"))  # revision 6: b has version 2
    return kv


def test_range_end_empty_means_single_key(abc: Driver) -> None:
    assert keys(abc(Range(b"a"))) == [b"a"]


def test_range_is_half_open(abc: Driver) -> None:
    assert keys(abc(Range(b"a", b"b"))) == [b"a", b"ab"]


def test_range_end_nul_means_all_keys_from_key(abc: Driver) -> None:
    assert keys(abc(Range(b"ab", b"\0"))) == [b"ab", b"b", b"c"]


def test_range_end_before_key_is_empty(abc: Driver) -> None:
    assert abc(Range(b"c", b"a")) == RangeResponse(6, (), 0, False)


def test_prefix_range(abc: Driver) -> None:
    assert keys(abc(Range.with_prefix(b"a"))) == [b"a", b"ab"]
    assert keys(abc(Range.with_prefix(b""))) == [b"a", b"ab", b"b", b"c"]


def test_prefix_end_follows_etcd() -> None:
    assert prefix_end(b"a") == b"b"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"


def test_limit_keeps_total_count_and_sets_more(abc: Driver) -> None:
    result = abc(Range(b"a", b"\0", limit=2))
    assert keys(result) == [b"a", b"ab"]
    assert (result.count, result.more) == (4, True)  # type: ignore[union-attr]


def test_count_only_returns_no_kvs(abc: Driver) -> None:
    assert abc(Range(b"a", b"\0", count_only=True)) == RangeResponse(6, (), 4, False)


def test_keys_only_empties_values(abc: Driver) -> None:
    result = abc(Range(b"b", keys_only=True))
    assert result.kvs == (KeyValue(b"b", b"", 4, 6, 2),)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "target, order, expected",
    [
        (SortTarget.KEY, SortOrder.DESCEND, [b"c", b"b", b"ab", b"a"]),
        (SortTarget.VALUE, SortOrder.ASCEND, [b"c", b"ab", b"a", b"b"]),
        (SortTarget.VALUE, SortOrder.NONE, [b"c", b"ab", b"a", b"b"]),  # etcd: NONE sorts ASCEND
        (SortTarget.MOD, SortOrder.DESCEND, [b"b", b"c", b"ab", b"a"]),
        (SortTarget.CREATE, SortOrder.DESCEND, [b"c", b"b", b"ab", b"a"]),
        (SortTarget.VERSION, SortOrder.DESCEND, [b"b", b"a", b"ab", b"c"]),  # ties in key order
    ],
)
def test_sort_target_and_order(abc: Driver, target: SortTarget, order: SortOrder,
                               expected: list[bytes]) -> None:
    assert keys(abc(Range(b"a", b"\0", sort_target=target, sort_order=order))) == expected


def test_sorted_range_applies_limit_after_sorting(abc: Driver) -> None:
    result = abc(Range(b"a", b"\0", limit=1, sort_target=SortTarget.VALUE,
                       sort_order=SortOrder.DESCEND))
    assert keys(result) == [b"b"]
    assert (result.count, result.more) == (4, True)  # type: ignore[union-attr]


# --- reads at older revisions, compaction -----------------------------------------------


def test_read_at_an_older_revision_sees_that_revision(abc: Driver) -> None:
    abc(DeleteRange(b"a"))
    assert abc(Range(b"b", revision=5)).kvs == (KeyValue(b"b", b"2", 4, 4, 1),)  # type: ignore[union-attr]
    assert keys(abc(Range(b"a", b"\0", revision=3))) == [b"a", b"ab"]
    assert keys(abc(Range(b"a", b"\0"))) == [b"ab", b"b", b"c"]


def test_read_header_revision_is_the_current_revision(abc: Driver) -> None:
    assert abc(Range(b"a", revision=2)).revision == 6  # type: ignore[union-attr]


def test_read_at_a_future_revision_fails(abc: Driver) -> None:
    assert abc(Range(b"a", revision=7)) == FutureRevision(7, 6)


def test_read_below_the_compact_revision_fails_with_it(abc: Driver) -> None:
    assert abc(Compact(4)) == CompactResponse(6, 4)
    assert abc(Range(b"a", revision=3)) == Compacted(3, 4)
    assert "compacted" in str(Compacted(3, 4))


def test_read_at_the_compact_revision_still_works(abc: Driver) -> None:
    abc(Compact(4))
    assert keys(abc(Range(b"a", b"\0", revision=4))) == [b"a", b"ab", b"b"]
    assert abc(Range(b"b", revision=4)).kvs[0].value == b"2"  # type: ignore[union-attr]


def test_compaction_keeps_a_key_deleted_after_the_compact_revision(abc: Driver) -> None:
    abc(DeleteRange(b"a"))  # revision 7
    abc(Compact(6))
    assert keys(abc(Range(b"a", revision=6))) == [b"a"]
    assert keys(abc(Range(b"a"))) == []


def test_compaction_drops_keys_deleted_at_or_before_it(abc: Driver) -> None:
    abc(DeleteRange(b"a"))  # revision 7
    abc(Compact(7))
    assert len(abc.machine._store) == 3  # noqa: SLF001 (the history of a is gone)


def test_compact_does_not_move_the_revision(abc: Driver) -> None:
    abc(Compact(5))
    assert abc.machine.revision == 6


def test_compact_again_at_or_below_fails_compacted(abc: Driver) -> None:
    abc(Compact(5))
    assert abc(Compact(5)) == Compacted(5, 5)
    assert abc(Compact(3)) == Compacted(3, 5)


def test_compact_in_the_future_fails(abc: Driver) -> None:
    assert abc(Compact(7)) == FutureRevision(7, 6)


# --- delete -----------------------------------------------------------------------------


def test_delete_single_key_returns_count_and_prev_kv(abc: Driver) -> None:
    assert abc(DeleteRange(b"c", prev_kv=True)) == DeleteResponse(
        7, 1, (KeyValue(b"c", b"0", 5, 5, 1),))


def test_delete_of_a_missing_key_makes_no_revision(abc: Driver) -> None:
    assert abc(DeleteRange(b"zz")) == DeleteResponse(6, 0)
    assert abc.machine.revision == 6


def test_delete_range_is_one_revision(abc: Driver) -> None:
    assert abc(DeleteRange(b"a", b"b")) == DeleteResponse(7, 2)
    assert keys(abc(Range(b"a", b"\0"))) == [b"b", b"c"]


def test_delete_prefix(abc: Driver) -> None:
    assert abc(DeleteRange.with_prefix(b"a")) == DeleteResponse(7, 2)


def test_delete_twice_deletes_once(abc: Driver) -> None:
    abc(DeleteRange(b"c"))
    assert abc(DeleteRange(b"c")) == DeleteResponse(7, 0)


# --- txn ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compare, holds",
    [
        (Compare.value(b"b", "=", b"9"), True),
        (Compare.value(b"b", "!=", b"9"), False),
        (Compare.value(b"b", ">", b"8"), True),
        (Compare.value(b"b", "<", b"8"), False),
        (Compare.version(b"b", "=", 2), True),
        (Compare.version(b"b", ">", 1), True),
        (Compare.create_revision(b"b", "=", 4), True),
        (Compare.mod_revision(b"b", "<", 6), False),
        (Compare.lease(b"b", "=", 0), True),
        # etcd: a missing key has version/create/mod/lease 0 ...
        (Compare.version(b"nope", "=", 0), True),
        (Compare.mod_revision(b"nope", "<", 1), True),
        # ... and every VALUE compare on it is false, even !=.
        (Compare.value(b"nope", "!=", b"x"), False),
    ],
)
def test_compare_rules(abc: Driver, compare: Compare, holds: bool) -> None:
    result = abc(Txn((compare,), (Range(b"b"),), ()))
    assert result.succeeded is holds  # type: ignore[union-attr]


def test_txn_runs_failure_ops_when_a_compare_fails(abc: Driver) -> None:
    result = abc(Txn((Compare.version(b"a", "=", 1), Compare.version(b"b", "=", 1)),
                     (Put(b"x", b"s"),), (Put(b"x", b"f"),)))
    assert result == TxnResponse(7, False, (PutResponse(7),))
    assert abc.machine.get(b"x").value == b"f"  # type: ignore[union-attr]


def test_txn_writes_are_one_revision_with_sub_revisions(abc: Driver) -> None:
    result = abc(Txn((), (Put(b"x", b"1"), Put(b"y", b"1"), DeleteRange(b"a")), ()))
    assert result == TxnResponse(7, True, (PutResponse(7), PutResponse(7), DeleteResponse(7, 1)))
    assert abc.machine.revision == 7
    history = abc.machine._store.history(b"y")  # noqa: SLF001
    assert (history.mains, history.subs) == ([7], [1])


def test_txn_ops_see_earlier_ops_of_the_same_txn(abc: Driver) -> None:
    # (etcd refuses two puts of one key in a txn: DuplicateKey, below.)
    result = abc(Txn((), (Put(b"x", b"1"), DeleteRange(b"a"), Range(b"x"), Range(b"a")), ()))
    assert result.responses[2].kvs == (KeyValue(b"x", b"1", 7, 7, 1),)  # type: ignore[union-attr]
    assert result.responses[3].kvs == ()  # type: ignore[union-attr]


def test_read_only_txn_makes_no_revision(abc: Driver) -> None:
    result = abc(Txn((), (Range(b"a"), DeleteRange(b"nope")), ()))
    assert result.revision == 6  # type: ignore[union-attr]
    assert abc.machine.revision == 6


def test_nested_txn_compares_read_the_revision_the_txn_started_from(abc: Driver) -> None:
    """etcd's compareToPath evaluates every compare, nested ones too, before
    the first write; the nested ops themselves run after the earlier ones."""
    inner = Txn((Compare.value(b"x", "=", b"1"),), (Put(b"y", b"yes"),), (Put(b"y", b"no"), Range(b"x")))
    result = abc(Txn((), (Put(b"x", b"1"), inner), ()))
    assert result.responses[1] == TxnResponse(  # type: ignore[union-attr]
        7, False, (PutResponse(7), RangeResponse(7, (KeyValue(b"x", b"1", 7, 7, 1),), 1, False)))
    assert abc.machine.get(b"y").value == b"no"  # type: ignore[union-attr]


def test_txn_with_a_bad_range_revision_applies_nothing(abc: Driver) -> None:
    abc(Compact(4))
    result = abc(Txn((), (Put(b"x", b"1"),), (Range(b"a", revision=2),)))
    assert result == Compacted(2, 4)
    assert abc.machine.get(b"x") is None and abc.machine.revision == 6


def test_txn_range_in_the_future_applies_nothing(abc: Driver) -> None:
    assert abc(Txn((), (Put(b"x", b"1"), Range(b"a", revision=7)), ())) == FutureRevision(7, 6)
    assert abc.machine.revision == 6


# --- limits and invalid requests -----------------------------------------------------------

SMALL = Limits(max_key_bytes=4, max_value_bytes=8, max_txn_ops=3, max_txn_depth=2)


def test_key_size_limit_names_the_limit() -> None:
    kv = Driver(SMALL)
    error = kv(Put(b"12345", b""))
    assert error == LimitExceeded("max_key_bytes", 5, 4)
    assert "max_key_bytes=4" in str(error)
    assert kv.machine.revision == 1


def test_value_size_limit_names_the_limit() -> None:
    assert Driver(SMALL)(Put(b"k", b"123456789")) == LimitExceeded("max_value_bytes", 9, 8)


def test_limits_apply_inside_txns() -> None:
    kv = Driver(SMALL)
    assert kv(Txn((), (), (Put(b"k", b"123456789"),))) == LimitExceeded("max_value_bytes", 9, 8)
    assert kv(Txn((), (Put(b"k", b""),) * 4, ())) == LimitExceeded("max_txn_ops", 4, 3)


def test_txn_nesting_limit() -> None:
    nested = Txn((), (Txn((), (Txn(),), ()),), ())
    assert Driver(SMALL)(nested) == LimitExceeded("max_txn_depth", 3, 2)


def test_empty_key_is_invalid(kv: Driver) -> None:
    assert kv(Put(b"", b"v")) == InvalidCommand("key is empty")
    assert kv(Range(b"")) == InvalidCommand("key is empty")


def test_a_put_naming_an_unknown_lease_fails_before_any_write(kv: Driver) -> None:
    kv(LeaseGrant(10, 5))
    assert kv(Put(b"a", b"1", lease=6)) == LeaseNotFound(6)
    assert kv(Txn((), (Put(b"b", b"1"), Put(b"a", b"1", lease=6)), ())) == LeaseNotFound(6)
    assert kv.machine.revision == 1
    kv(Put(b"a", b"1", lease=5))
    kv(Put(b"a", b"2", lease=5))
    kv(Put(b"b", b"1", lease=5))
    kv(Put(b"b", b"2"))
    assert kv.machine.lease(5).keys == {b"a"}  # type: ignore[union-attr]
    kv(DeleteRange(b"a"))
    assert kv.machine.lease(5).keys == set()  # type: ignore[union-attr]


# --- serializable reads ----------------------------------------------------------------------


def test_serializable_reads_need_no_log_entry(abc: Driver) -> None:
    index = abc.machine.applied_index
    assert keys(abc.machine.read(Range.with_prefix(b"a"))) == [b"a", b"ab"]
    assert abc.machine.read(Range(b"a", revision=9)) == FutureRevision(9, 6)
    txn = Txn((Compare(b"a", CompareTarget.VERSION, CompareOp.EQUAL, 1),), (Range(b"a"),), ())
    assert abc.machine.read(txn).succeeded  # type: ignore[union-attr]
    assert abc.machine.applied_index == index


def test_serializable_reads_refuse_writes(abc: Driver) -> None:
    assert isinstance(abc.machine.read(Txn((), (), (Put(b"a", b"x"),))), InvalidCommand)
    from cluster.kv import encode_command
    assert isinstance(abc.machine.query(encode_command(Put(b"a", b"x"))), InvalidCommand)
    assert keys(abc.machine.query(encode_command(Range(b"c")))) == [b"c"]
    assert abc.machine.revision == 6


def test_get_raises_for_a_compacted_revision(abc: Driver) -> None:
    abc(Compact(4))
    with pytest.raises(Compacted):
        abc.machine.get(b"a", 3)
    assert abc.machine.get(b"b", 4) == KeyValue(b"b", b"2", 4, 4, 1)


def test_apply_indexes_must_increase(kv: Driver) -> None:
    kv(Put(b"a", b"1"))
    with pytest.raises(AssertionError):
        kv.machine.apply(kv.index, b"")
