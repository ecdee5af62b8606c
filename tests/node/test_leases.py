"""The leader's lease clock (node/lease_timers.py), with `now` passed in: no sleeping."""
from __future__ import annotations

from node.lease_timers import LeaseTimers, answer_query
from cluster.kv import (
    LeaseGrant,
    LeaseKeepAlive,
    LeaseKeepAliveResponse,
    LeaseLeases,
    LeaseLeasesResponse,
    LeaseNotFound,
    LeaseTimeToLive,
    LeaseTimeToLiveResponse,
    Put,
    encode_command,
)
from node.statemachine import StateMachine


def timers_with(*leases: tuple[int, int], now: float = 0.0) -> LeaseTimers:
    timers = LeaseTimers()
    for index, (lease_id, ttl) in enumerate(leases, 1):
        timers.granted(lease_id, ttl, index, now)
    return timers


def test_a_lease_expires_ttl_after_its_grant_and_is_reported_once() -> None:
    timers = timers_with((1, 5), (2, 10))
    assert timers.expired(4.99, 100) == []
    assert timers.expired(5.0, 100) == [(1, 1)]
    assert timers.expired(6.0, 100) == []  # reported once: the revoke is under way
    assert timers.keepalive(1, 6.0) is None  # keepalives for an expiring lease fail
    assert timers.remaining(1, 6.0) is None
    assert timers.expired(10.0, 100) == [(2, 2)]


def test_a_keepalive_moves_the_deadline_to_now_plus_ttl() -> None:
    timers = timers_with((1, 5))
    assert timers.keepalive(1, 4.0) == 5
    assert timers.expired(8.9, 100) == []
    assert timers.remaining(1, 8.2) == 1  # rounded up
    assert timers.expired(9.0, 100) == [(1, 1)]


def test_promotion_gives_every_lease_its_full_ttl_from_now() -> None:
    timers = timers_with((1, 5), (2, 10))
    timers.keepalive(1, 4.0)  # at the old leader: unknown to the new one anyway
    timers.promote(7.0)
    assert timers.remaining(1, 7.0) == 5 and timers.remaining(2, 7.0) == 10
    assert timers.expired(11.9, 100) == []
    assert timers.expired(12.0, 100) == [(1, 1)]


def test_promotion_forgets_expiries_proposed_in_an_earlier_term() -> None:
    timers = timers_with((1, 5))
    assert timers.expired(5.0, 100) == [(1, 1)]
    timers.promote(6.0)  # that proposal may be lost: start over with a full TTL
    assert timers.keepalive(1, 6.0) == 5
    assert timers.expired(11.0, 100) == [(1, 1)]


def test_a_failed_proposal_is_retried_and_removal_forgets_the_lease() -> None:
    timers = timers_with((1, 5), (2, 5), (3, 5))
    assert timers.expired(5.0, 2) == [(1, 1), (2, 2)]  # bounded per sweep
    timers.retry(1, 5.0)
    assert sorted(timers.expired(5.1, 100)) == [(1, 1), (3, 3)]
    timers.removed(1)
    assert 1 not in timers and len(timers) == 2
    assert timers.keepalive(1, 6.0) is None


def test_stale_heap_entries_from_many_keepalives_stay_bounded() -> None:
    timers = timers_with((1, 5))
    for i in range(10_000):
        timers.keepalive(1, i / 1000)
    assert len(timers._heap) < 100  # noqa: SLF001
    assert timers.expired(14.999 + 5, 100) == [(1, 1)]


def test_answers_come_from_the_applied_state_and_the_clock() -> None:
    sm = StateMachine()
    sm.apply(1, encode_command(LeaseGrant(5, 7)))
    sm.apply(2, encode_command(Put(b"b", b"1", lease=7)))
    sm.apply(3, encode_command(Put(b"a", b"1", lease=7)))
    timers = LeaseTimers()
    timers.reset([(7, 5, 1)], 100.0)
    assert answer_query(LeaseTimeToLive(7, True), sm, timers, 101.5) == LeaseTimeToLiveResponse(3, 7, 5, 4, (b"a", b"b"))
    assert answer_query(LeaseTimeToLive(7), sm, timers, 101.5) == LeaseTimeToLiveResponse(3, 7, 5, 4, ())
    assert answer_query(LeaseKeepAlive(7), sm, timers, 102.0) == LeaseKeepAliveResponse(3, 7, 5)
    assert answer_query(LeaseKeepAlive(8), sm, timers, 102.0) == LeaseNotFound(8)
    assert answer_query(LeaseLeases(), sm, timers, 102.0) == LeaseLeasesResponse(3, (7,))
    assert timers.expired(106.9, 10) == []
    assert timers.expired(107.0, 10) == [(7, 1)]
    assert answer_query(LeaseKeepAlive(7), sm, timers, 107.0) == LeaseNotFound(7)
