"""node/wakeup.py: when the loop must wake, and how many ticks it delivers then.

The property that matters: sleeping through the quiet ticks and delivering them at
once leaves the Raft core exactly where ticking every interval would have (same
counters, same acting tick at the same tick number)."""
from __future__ import annotations

import random

from node.raft import Config, ConfState, RaftCore, Role
from node.wakeup import ticks_to_deliver, ticks_until_due, wake_in_ms


def test_a_leader_wakes_for_its_next_heartbeat_or_quorum_check() -> None:
    assert ticks_until_due(True, election_elapsed=0, heartbeat_elapsed=0, randomized_election_timeout=45,
                           heartbeat_ticks=3, election_ticks=30) == 3
    assert ticks_until_due(True, 28, 0, 45, 3, 30) == 2  # the quorum check comes first
    assert ticks_until_due(True, 5, 2, 45, 3, 30) == 1


def test_a_leader_wakes_for_its_lingering_commit_only_append() -> None:
    # RaftCore.commit_linger: ticks left before the commit-only AppendEntries goes out.
    assert ticks_until_due(True, 0, 0, 45, 5, 30, commit_linger=1) == 1
    assert ticks_until_due(True, 0, 3, 45, 5, 30, commit_linger=3) == 2  # the heartbeat first
    assert ticks_until_due(True, 0, 0, 45, 5, 30, commit_linger=0) == 5  # none due
    assert ticks_until_due(False, 10, 0, 45, 5, 30, commit_linger=1) == 35  # only a leader lingers


def test_a_follower_wakes_for_its_election_timeout_and_never_for_zero_ticks() -> None:
    assert ticks_until_due(False, 10, 0, 45, 3, 30) == 35
    assert ticks_until_due(False, 45, 0, 45, 3, 30) == 1
    assert ticks_until_due(False, 50, 0, 45, 3, 30) == 1  # overdue: at once


def test_the_poll_timeout_rounds_up_and_stops_at_the_earlier_deadline() -> None:
    # 0.3 ms before the tick: 1 ms, not 0 (a zero timeout spun until the tick was due).
    assert wake_in_ms(now=9.9997, next_tick=10.0, tick_seconds=0.01, quiet_ticks=1, other_deadline=99.0) == 1
    assert wake_in_ms(10.0, 10.01, 0.01, 3, 99.0) == 30  # the 3rd tick from the next: 10.03
    assert wake_in_ms(10.0, 10.01, 0.01, 30, 10.05) == 50  # the sweep comes first
    assert wake_in_ms(10.2, 10.01, 0.01, 3, 99.0) == 0  # overdue


def test_the_ticks_due_are_delivered_up_to_the_allowance_and_a_stall_skips_the_rest() -> None:
    assert ticks_to_deliver(now=0.995, next_tick=1.0, tick_seconds=0.01, allowed=3) == (0, 1.0)
    count, following = ticks_to_deliver(1.025, 1.0, 0.01, 3)
    assert count == 3 and abs(following - 1.03) < 1e-9
    count, following = ticks_to_deliver(1.5, 1.0, 0.01, 3)  # 51 due, 3 allowed: skip, do not burst
    assert count == 3 and abs(following - 1.51) < 1e-9
    count, following = ticks_to_deliver(1.295, 1.0, 0.01, 30)  # a planned 30-tick sleep
    assert count == 30 and abs(following - 1.3) < 1e-9


def _core(node_id: int, seed: int) -> RaftCore:
    return RaftCore(Config(id=node_id, rng=random.Random(seed), election_ticks=30, heartbeat_ticks=3),
                    ConfState((1, 2, 3)))


def _state(core: RaftCore) -> tuple[object, ...]:
    return (core.role, core.term, core.election_elapsed, core.heartbeat_elapsed, core.has_ready())


def test_sleeping_through_the_quiet_ticks_leaves_the_core_where_ticking_each_would() -> None:
    """Two identical cores: one ticked every interval, one woken only for the tick
    `ticks_until_due` names; after each wake they agree, up to the election."""
    every, sleeper = _core(1, 7), _core(1, 7)
    ticked = 0
    while every.role is Role.FOLLOWER and ticked < 200:
        due = ticks_until_due(sleeper.role is Role.LEADER, sleeper.election_elapsed, sleeper.heartbeat_elapsed,
                              sleeper.randomized_election_timeout, 3, 30)
        for _ in range(due - 1):  # the quiet ticks: nothing may happen in them
            every.tick()
            assert not every.has_ready() and every.role is Role.FOLLOWER
        every.tick()
        for _ in range(due):  # delivered at once on waking
            sleeper.tick()
        ticked += due
        assert _state(every) == _state(sleeper)
    assert every.role is not Role.FOLLOWER  # it campaigned, on the tick the sleeper woke for
