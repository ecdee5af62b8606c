"""Hand-made histories with known verdicts: each names the anomaly it shows.

Times are (invoke, complete) in arbitrary units; every op is on key "x" unless
the test is about keys.
"""
from __future__ import annotations

import pytest

from cluster.check.history import Operation
from cluster.check.linearizability import Verdict, check_history, check_key

from .history_builder import cas, delete, get, history, info, put
from .witness import assert_valid_witness

NOT_LINEARIZABLE = {
    "stale read: a read after a completed overwrite returns the old value": history(
        put(1, "x", 1, 0, 1), put(1, "x", 2, 2, 3), get(2, "x", 1, 4, 5)),
    "lost write: an acknowledged put is not visible to a later read": history(
        put(1, "x", 1, 0, 1), get(2, "x", None, 2, 3)),
    "read of a value never written": history(
        put(1, "x", 1, 0, 1), get(2, "x", 7, 2, 3)),
    "write visible before its invoke": history(
        get(2, "x", 1, 0, 1), put(1, "x", 1, 2, 3)),
    "cas succeeded twice on the same old value (sequential)": history(
        put(1, "x", 0, 0, 1), cas(1, "x", 0, 1, True, 2, 3), cas(2, "x", 0, 2, True, 4, 5)),
    "cas succeeded twice on the same old value (concurrent)": history(
        put(1, "x", 0, 0, 1), cas(1, "x", 0, 1, True, 2, 5), cas(2, "x", 0, 2, True, 3, 6)),
    "new-old inversion: a read sees a concurrent write, a later read does not": history(
        put(1, "x", 1, 0, 1), put(2, "x", 2, 2, 10), get(3, "x", 2, 3, 4),
        get(4, "x", 1, 5, 6)),
    "a failed put took effect (fail means definitely not applied)": history(
        put(1, "x", 5, 0, 1, outcome="fail"), get(2, "x", 5, 2, 3)),
    "an info put cannot take effect before its invoke": history(
        get(2, "x", 1, 0, 1), info(put(1, "x", 1, 2))),
    "an info put takes effect at most once": history(
        info(put(1, "x", 1, 0)), get(2, "x", 1, 1, 2), put(3, "x", 2, 3, 4),
        get(2, "x", 1, 5, 6)),
    "cas reported a failed compare while the value matched": history(
        put(1, "x", 3, 0, 1), cas(2, "x", 3, 4, False, 2, 3)),
    "delete reported deleting an absent key": history(
        delete(1, "x", 0, 1, deleted=1)),
    "read after an acknowledged delete still sees the value": history(
        put(1, "x", 1, 0, 1), delete(1, "x", 2, 3), get(2, "x", 1, 4, 5)),
}

LINEARIZABLE = {
    "concurrent overlapping writes read in one order": history(
        put(1, "x", 1, 0, 10), put(2, "x", 2, 1, 9), get(3, "x", 1, 2, 3),
        get(3, "x", 2, 4, 5)),
    "concurrent overlapping writes read in the other order": history(
        put(1, "x", 1, 0, 10), put(2, "x", 2, 1, 9), get(3, "x", 2, 2, 3),
        get(3, "x", 1, 4, 5)),
    "a read concurrent with a write may see either value": history(
        put(1, "x", 1, 0, 1), put(2, "x", 2, 2, 10), get(3, "x", 1, 3, 4),
        get(4, "x", 2, 5, 6)),
    "a later-invoked write may take effect first": history(
        put(1, "x", 1, 0, 10), put(2, "x", 2, 5, 6), get(3, "x", 1, 11, 12)),
    "operations that merely touch count as concurrent": history(
        put(1, "x", 1, 0, 1), get(2, "x", None, 1, 2)),
    "an info put takes effect late": history(
        info(put(1, "x", 1, 0)), get(2, "x", None, 1, 2), get(2, "x", None, 3, 4),
        get(2, "x", 1, 10, 11)),
    "an info put never takes effect": history(
        info(put(1, "x", 1, 0)), get(2, "x", None, 1, 2), get(2, "x", None, 20, 21)),
    "an info put takes effect after a later acknowledged put": history(
        info(put(1, "x", 1, 0)), put(2, "x", 2, 5, 6), get(3, "x", 1, 7, 8)),
    "an info cas applies only if its compare holds, at any later time": history(
        put(1, "x", 0, 0, 1), info(cas(2, "x", 0, 1, None, 2)), get(3, "x", 0, 3, 4),
        get(3, "x", 1, 5, 6)),
    "a failed put is ignored": history(
        put(1, "x", 5, 0, 1, outcome="fail"), get(2, "x", None, 2, 3)),
    "a cas chain with failed compares": history(
        put(1, "x", 0, 0, 1), cas(1, "x", 0, 1, True, 2, 5), cas(2, "x", 0, 2, False, 3, 6),
        cas(3, "x", 1, 2, True, 7, 8), get(3, "x", 2, 9, 10)),
    "create-if-absent cas and delete results": history(
        cas(1, "x", None, 1, True, 0, 1), delete(2, "x", 2, 3, deleted=1),
        delete(2, "x", 4, 5, deleted=0), get(1, "x", None, 6, 7)),
    "an info get constrains nothing": history(
        put(1, "x", 1, 0, 1), info(get(2, "x", 9, 2))),
    "the empty history": [],
}


@pytest.mark.parametrize("name", sorted(NOT_LINEARIZABLE))
def test_anomaly_is_rejected(name: str) -> None:
    result = check_history(NOT_LINEARIZABLE[name], timeout=5)
    assert result.verdict is Verdict.NOT_LINEARIZABLE, name
    (failed,) = result.failures
    example = failed.counterexample
    assert example is not None and example.blocked is not None
    assert {op.id for op in example.ops} <= {op.id for op in NOT_LINEARIZABLE[name]}
    assert check_key("x", example.ops).verdict is Verdict.NOT_LINEARIZABLE, \
        "a counterexample must fail on its own"
    assert example.blocked in example.ops


@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_history_is_accepted_with_a_valid_witness(name: str) -> None:
    result = check_history(LINEARIZABLE[name], timeout=5)
    assert result.verdict is Verdict.LINEARIZABLE, name
    for key_result in result.keys:
        assert_valid_witness(key_result.ops, key_result.linearized)


def test_stale_read_counterexample_names_the_overwrite_and_the_read() -> None:
    ops = NOT_LINEARIZABLE["stale read: a read after a completed overwrite returns the old value"]
    (failed,) = check_history(ops).failures
    assert failed.key == "x"
    assert failed.counterexample is not None
    assert failed.counterexample.blocked == ops[2]
    assert [op.id for op in failed.counterexample.linearized] == [0, 1]


def test_minimization_drops_irrelevant_reads_and_later_operations() -> None:
    noise = [get(5, "x", 1, 2.1 + i, 2.2 + i) for i in range(5)]
    after = [put(6, "x", 9, 30, 31), get(6, "x", 9, 32, 33)]
    ops = history(put(1, "x", 1, 0, 1), *noise, put(1, "x", 2, 10, 11),
                  get(2, "x", 1, 12, 13), *after)
    (failed,) = check_history(ops).failures
    assert failed.counterexample is not None
    kept = {op.describe() for op in failed.counterexample.ops}
    assert kept == {"1:put(x, 1)", "1:put(x, 2)", "2:get(x) -> 1"}


def test_keys_are_checked_independently() -> None:
    ops = history(put(1, "x", 1, 0, 1), get(2, "x", 1, 2, 3),
                  put(1, "y", 1, 0, 1), put(1, "y", 2, 2, 3), get(2, "y", 1, 4, 5),
                  get(3, "z", None, 0, 1))
    result = check_history(ops)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert [k.key for k in result.keys] == ["x", "y", "z"]
    assert [k.key for k in result.failures] == ["y"]


def test_same_value_on_two_keys_does_not_leak_between_them() -> None:
    ops = history(put(1, "x", 1, 0, 1), get(2, "y", 1, 2, 3))
    assert check_history(ops).verdict is Verdict.NOT_LINEARIZABLE


def _hard_history(width: int = 12) -> list[Operation]:
    """`width` concurrent info puts of distinct values then a read of a value none
    wrote: the search must exhaust every subset of the puts before failing."""
    return history(*[info(put(i, "x", i, 0)) for i in range(width)],
                   *[get(100 + i, "x", i, 1 + 2 * i, 2 + 2 * i) for i in range(width)],
                   get(99, "x", -1, 100, 101))


def test_running_out_of_time_gives_unknown_never_linearizable() -> None:
    ticks = iter(range(1_000_000))

    def clock() -> float:  # each read of the clock is one second later
        return float(next(ticks))

    result = check_history(_hard_history(), timeout=1.5, clock=clock)
    assert result.verdict is Verdict.UNKNOWN
    assert result.keys[0].steps > 0


def test_the_hard_history_is_decided_given_time() -> None:
    assert check_history(_hard_history(8), timeout=30).verdict is Verdict.NOT_LINEARIZABLE
