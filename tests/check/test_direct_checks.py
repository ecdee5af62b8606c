"""Direct checks: lost acknowledged writes after healing, and revision order."""
from __future__ import annotations

from cluster.check.direct import lost_writes, revision_regressions

from .history_builder import cas, delete, get, history, info, put


def test_acknowledged_put_missing_from_the_final_read_is_lost() -> None:
    ops = history(put(1, "x", 1, 0, 1), put(2, "y", 5, 0, 1))
    (lost,) = lost_writes(ops, {"x": None, "y": 5})
    assert lost.op == ops[0] and lost.final is None
    assert "lost: 1:put(x, 1)" in lost.describe()


def test_a_put_overwritten_by_a_later_put_is_not_lost() -> None:
    ops = history(put(1, "x", 1, 0, 1), put(2, "x", 2, 2, 3))
    assert lost_writes(ops, {"x": 2}) == []
    # ...but the later one is lost if the final read shows the earlier value.
    assert [w.op.id for w in lost_writes(ops, {"x": 1})] == [1]


def test_concurrent_or_unknown_mutations_may_have_overwritten() -> None:
    concurrent = history(put(1, "x", 1, 0, 10), put(2, "x", 2, 5, 6))
    assert lost_writes(concurrent, {"x": 1}) == []
    assert lost_writes(concurrent, {"x": 2}) == []
    unknown = history(info(put(2, "x", 9, 0)), put(1, "x", 1, 5, 6))
    assert lost_writes(unknown, {"x": 9}) == []  # the info put may land after the ack


def test_failed_mutations_cannot_overwrite() -> None:
    ops = history(put(1, "x", 1, 0, 1), put(2, "x", 2, 2, 3, outcome="fail"))
    assert [w.op.id for w in lost_writes(ops, {"x": 2})] == [0]


def test_acknowledged_delete_and_cas_are_checked_too() -> None:
    ops = history(put(1, "x", 1, 0, 1), delete(1, "x", 2, 3))
    assert [w.op.id for w in lost_writes(ops, {"x": 1})] == [1]  # resurrected
    swapped = history(put(1, "x", 1, 0, 1), cas(1, "x", 1, 2, True, 2, 3),
                      cas(1, "x", 7, 3, False, 4, 5))
    assert [w.op.id for w in lost_writes(swapped, {"x": 1})] == [1]
    assert lost_writes(swapped, {"x": 2}) == []


def test_only_keys_with_a_final_read_are_checked() -> None:
    assert lost_writes(history(put(1, "x", 1, 0, 1)), {}) == []


def test_sequential_writes_must_increase_the_revision() -> None:
    ops = history(put(1, "x", 1, 0, 1, revision=5), put(1, "y", 2, 2, 3, revision=5),
                  put(1, "x", 3, 4, 5, revision=4))
    found = revision_regressions(ops)
    assert [(r.earlier.id, r.later.id) for r in found] == [(0, 1), (0, 2)]
    assert "revision went back" in found[0].describe()


def test_reads_may_share_the_revision_of_the_write_before_them() -> None:
    ops = history(put(1, "x", 1, 0, 1, revision=5), get(2, "x", 1, 2, 3, revision=5),
                  get(2, "y", None, 4, 5, revision=5), cas(1, "x", 9, 2, False, 6, 7, revision=5),
                  delete(1, "z", 8, 9, deleted=0, revision=5), put(1, "x", 4, 10, 11, revision=6))
    assert revision_regressions(ops) == []


def test_a_read_must_not_see_an_older_revision_than_a_completed_write() -> None:
    ops = history(put(1, "x", 1, 0, 1, revision=5), get(2, "x", None, 2, 3, revision=4))
    assert [(r.earlier.id, r.later.id) for r in revision_regressions(ops)] == [(0, 1)]


def test_overlapping_writes_may_take_revisions_in_either_order() -> None:
    ops = history(put(1, "x", 1, 0, 10, revision=7), put(2, "y", 2, 1, 9, revision=6),
                  put(3, "x", 3, 11, 12, revision=8), info(put(4, "x", 5, 13)),
                  put(5, "x", 6, 14, 15))  # no revision recorded: ignored
    assert revision_regressions(ops) == []
