"""The static checks etcd 3.4's gRPC front door makes (etcdserver/api/v3rpc/
key.go), as `check_request` makes them: checkPutRequest's ignore_value and
ignore_lease rules, checkTxnRequest's op count, checkIntervals' duplicate keys.
The duplicate-key table is etcd's own (integration TestV3TxnDuplicateKeys),
then the rule's corners read from checkIntervals."""
from __future__ import annotations

import pytest

from cluster.kv import (
    ALL_KEYS_END,
    Compare,
    DeleteRange,
    DuplicateKey,
    InvalidCommand,
    LeaseProvided,
    LimitExceeded,
    Limits,
    Op,
    Put,
    Range,
    Txn,
    ValueProvided,
)
from cluster.kv.limits import check_request

LIMITS = Limits()


def test_ignore_value_with_a_value_is_refused() -> None:
    check_request(Put(b"k", b"", ignore_value=True), LIMITS)
    with pytest.raises(ValueProvided) as caught:
        check_request(Put(b"k", b"v", ignore_value=True), LIMITS)
    assert isinstance(caught.value, InvalidCommand) and str(caught.value).endswith("value is provided")


def test_ignore_lease_with_a_lease_is_refused() -> None:
    check_request(Put(b"k", b"v", ignore_lease=True), LIMITS)
    with pytest.raises(LeaseProvided):
        check_request(Put(b"k", b"", 5, ignore_lease=True), LIMITS)


def test_etcds_order_empty_key_then_value_then_lease() -> None:
    with pytest.raises(InvalidCommand, match="key is empty"):
        check_request(Put(b"", b"v", 5, ignore_value=True, ignore_lease=True), LIMITS)
    with pytest.raises(ValueProvided):
        check_request(Put(b"k", b"v", 5, ignore_value=True, ignore_lease=True), LIMITS)


def test_ignore_checks_apply_inside_txns() -> None:
    with pytest.raises(LeaseProvided):
        check_request(Txn((), (), (Txn((), (Put(b"k", b"", 5, ignore_lease=True),)),)), LIMITS)


# --- etcd's op count: max(compares, success, failure) per level, budget shared down a chain ----

SMALL = Limits(max_txn_ops=3)


def puts(n: int, prefix: bytes = b"k") -> tuple[Op, ...]:
    return tuple(Put(prefix + bytes([i]), b"") for i in range(n))


def test_a_txns_count_is_its_longest_list_not_the_sum() -> None:
    compares = tuple(Compare.version(b"k", "=", 0) for _ in range(3))
    check_request(Txn(compares, puts(3), puts(3)), SMALL)  # 3+3+3 ops, count 3
    with pytest.raises(LimitExceeded) as caught:
        check_request(Txn((), (), puts(4)), SMALL)
    assert caught.value == LimitExceeded("max_txn_ops", 4, 3)
    with pytest.raises(LimitExceeded):
        check_request(Txn(compares + compares[:1]), SMALL)


def test_nested_txns_get_what_their_parents_leave() -> None:
    inner = Txn((), puts(2, b"i"))
    check_request(Txn((), (inner,)), SMALL)  # 1 + 2
    with pytest.raises(LimitExceeded) as caught:
        check_request(Txn((), (inner, Range(b"x"))), SMALL)  # 2 + 2
    assert caught.value == LimitExceeded("max_txn_ops", 4, 3)
    # Siblings do not add up: each chain is counted on its own.
    check_request(Txn((), (Txn((), puts(2, b"i")), Txn((), puts(2, b"j")))), Limits(max_txn_ops=4))
    # A chain exactly at the budget, and an empty txn at the bottom of a full one.
    check_request(Txn((), (Txn((), (Txn((), (Range(b"x"),)),)),)), SMALL)
    check_request(Txn((), (Txn(), Range(b"a"), Range(b"b"))), SMALL)


# --- duplicate keys ------------------------------------------------------------------------------

PUT = Put(b"abc", b"def")
DEL_KEY = DeleteRange(b"abc")
DEL_IN_RANGE = DeleteRange(b"a", b"b")
DEL_OUT_OF_RANGE = DeleteRange(b"abb", b"abc")
TXN_DEL = Txn((), (DEL_IN_RANGE,))
TXN_DEL_TWO_SIDE = Txn((), (DEL_IN_RANGE,), (DEL_IN_RANGE,))
TXN_PUT = Txn((), (PUT,))
TXN_PUT_TWO_SIDE = Txn((), (PUT,), (PUT,))

ETCD_TABLE = [  # TestV3TxnDuplicateKeys: (success branch, refused)
    ((PUT, PUT), True),
    ((PUT, DEL_KEY), True),
    ((PUT, DEL_IN_RANGE), True),
    ((PUT, TXN_DEL), True),
    ((DEL_IN_RANGE, TXN_PUT), True),
    ((TXN_PUT_TWO_SIDE, TXN_PUT_TWO_SIDE), True),
    ((DEL_OUT_OF_RANGE, TXN_PUT_TWO_SIDE), False),
    ((TXN_DEL, TXN_DEL_TWO_SIDE), False),
    ((DEL_KEY, DEL_IN_RANGE, DEL_KEY, DEL_IN_RANGE), False),
    ((PUT, DEL_OUT_OF_RANGE), False),
]

CORNERS = [
    ((TXN_PUT, TXN_DEL), False),  # a nested txn's puts meet only the deletes before it
    ((TXN_DEL, TXN_PUT), True),
    ((TXN_PUT, PUT), True),  # this level's puts meet the nested ones
    ((Txn((), (TXN_PUT,)), DEL_KEY), True),  # however deep
    ((Txn((), (PUT,), (Put(b"x", b""),)), Txn((), (Put(b"x", b""),))), True),  # else vs a sibling
    ((DeleteRange(b"a", ALL_KEYS_END), PUT), False),  # a "from key on" delete holds no key here
    ((DeleteRange(b"abc", b"abc"), PUT), False),  # nor does an empty range
    ((DeleteRange(b"abc", b"abc\0"), PUT), True),
    ((Range(b"abc"), PUT, Range(b"abc")), False),  # reads never conflict
]


@pytest.mark.parametrize("branch, refused", ETCD_TABLE + CORNERS)
def test_a_branch_that_writes_a_key_twice_is_refused_as_etcd_does(branch: tuple[Op, ...], refused: bool) -> None:
    for txn in (Txn((), branch), Txn((), (), branch)):
        if refused:
            with pytest.raises(DuplicateKey):
                check_request(txn, LIMITS)
        else:
            check_request(txn, LIMITS)


def test_the_two_top_branches_are_checked_apart() -> None:
    check_request(Txn((), (PUT,), (PUT, DEL_OUT_OF_RANGE)), LIMITS)


def test_too_many_ops_is_found_before_duplicates() -> None:
    with pytest.raises(LimitExceeded):
        check_request(Txn((), (PUT,) * 4), SMALL)
