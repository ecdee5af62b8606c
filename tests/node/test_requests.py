"""The rules for answering waiting clients (node/requests.py)."""
from __future__ import annotations

from node.requests import PendingRequests, Waiter


def _waiter(rid: int, deadline: float = 10.0) -> Waiter:
    return Waiter(b"client", rid, b"cmd", deadline)


def test_a_write_succeeded_iff_the_entry_applied_at_its_index_has_its_term() -> None:
    pending = PendingRequests(limit=10)
    pending.add_write(5, term=2, waiter=_waiter(1))
    pending.add_write(6, term=2, waiter=_waiter(2))
    assert pending.write_applied(5, 2) == (_waiter(1), True)
    assert pending.write_applied(6, 3) == (_waiter(2), False)  # overwritten by a new leader
    assert pending.write_applied(7, 3) is None
    assert len(pending) == 0


def test_a_read_is_served_only_once_its_read_index_is_applied() -> None:
    pending = PendingRequests(limit=10)
    pending.add_read(b"a", _waiter(1))
    pending.add_read(b"b", _waiter(2))
    assert pending.reads_ready(applied=100) == []  # no ReadState yet
    pending.read_index_known(b"a", 7)
    assert pending.reads_ready(applied=6) == []
    assert pending.reads_ready(applied=7) == [_waiter(1)]
    assert pending.reads_without_index() == [_waiter(2)]


def test_deadlines_limits_and_snapshots() -> None:
    pending = PendingRequests(limit=3)
    pending.add_write(1, 1, _waiter(1, deadline=1.0))
    pending.add_write(2, 1, _waiter(2, deadline=5.0))
    pending.add_read(b"r", _waiter(3, deadline=1.0))
    assert pending.full()
    assert sorted(w.request_id for w in pending.expired(now=2.0)) == [1, 3]
    assert [w.request_id for w in pending.writes_up_to(2)] == [2]
    assert not pending.full() and list(pending.drain()) == []


def test_reads_of_one_turn_share_a_context_and_expire_one_by_one() -> None:
    pending = PendingRequests(limit=10)
    pending.add_reads(b"turn", [_waiter(1, deadline=1.0), _waiter(2, deadline=5.0)])
    pending.add_reads(b"turn", [_waiter(3, deadline=5.0)])
    assert len(pending) == 3
    assert [w.request_id for w in pending.expired(now=2.0)] == [1]
    assert len(pending) == 2
    pending.read_index_known(b"turn", 4)
    assert [w.request_id for w in pending.reads_ready(applied=4)] == [2, 3]
    assert len(pending) == 0 and pending.reads == {}
    pending.add_reads(b"lost", [_waiter(4), _waiter(5)])
    assert [w.request_id for w in pending.reads_without_index()] == [4, 5]
    assert len(pending) == 0
