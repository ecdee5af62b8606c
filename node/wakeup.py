"""When the node's loop must wake up next if no input comes: the next Raft tick
that can do something, not every tick.

The Raft core keeps logical time by count (`RaftCore.tick`, node/raft/core.py): a
leader heartbeats every `heartbeat_ticks` and checks its quorum (and abandons a
leadership transfer) every `election_ticks`; anyone else campaigns once
`election_elapsed` reaches its randomized timeout. Every other tick only adds one
to a counter. So a quiet node may sleep through those ticks and deliver them all
when it wakes: the counters end where they would have, and the tick that acts runs
at its own time -- heartbeats stay on time while an idle member wakes a few dozen
times a second instead of 100 (issue 17: an idle cluster burned 0.24 cores).

The loop delivers the ticks that passed *before* it steps the input that woke it
(node/actor.py), so a heartbeat arriving mid-sleep resets an election counter that
already holds the ticks before it, exactly as if each tick had been delivered on
time.

Erring early is always safe (the loop wakes, delivers the ticks due, finds nothing
to do); erring late is not, so anything not known to be quiet counts as acting.
"""
from __future__ import annotations

import math


def ticks_until_due(leader: bool, election_elapsed: int, heartbeat_elapsed: int, randomized_election_timeout: int,
                    heartbeat_ticks: int, election_ticks: int, commit_linger: int = 0) -> int:
    """How many ticks from now the first one that may act is (>= 1): the loop can
    deliver this many ticks at once, all but the last doing nothing but count.
    `commit_linger`: a leader's ticks left before its commit-only AppendEntries
    (RaftCore.commit_linger; 0 = none due).

    A non-leader is taken as promotable (it may campaign when its timeout is
    reached): for a learner that only means an early, harmless wake-up."""
    if leader:
        due = min(heartbeat_ticks - heartbeat_elapsed, election_ticks - election_elapsed)
        if commit_linger:
            due = min(due, commit_linger)
    else:
        due = randomized_election_timeout - election_elapsed
    return max(1, due)


def wake_in_ms(now: float, next_tick: float, tick_seconds: float, quiet_ticks: int, other_deadline: float) -> int:
    """The poll timeout in whole milliseconds until the acting tick (`quiet_ticks`
    ticks from `next_tick`, the first of them) or `other_deadline` (the next sweep),
    whichever is first. Rounded *up*: a timeout rounded down wakes a fraction of a
    millisecond early, and the loop then spins on zero-timeout polls until the tick
    is due (that was most of the idle CPU)."""
    wake_at = min(next_tick + (quiet_ticks - 1) * tick_seconds, other_deadline)
    return max(0, math.ceil((wake_at - now) * 1000 - 1e-6))  # less a hair of float noise


def ticks_to_deliver(now: float, next_tick: float, tick_seconds: float, allowed: int) -> tuple[int, float]:
    """(ticks to deliver now, the next tick's time): every tick whose time has come,
    up to `allowed`. A loop further behind than that (a stall, not a planned sleep)
    skips the rest instead of bursting (a burst of ticks fires elections), and its
    next tick is a whole interval from `now`."""
    if now < next_tick:
        return 0, next_tick
    due = int((now - next_tick) // tick_seconds) + 1
    if due <= allowed:
        return due, next_tick + due * tick_seconds
    return allowed, now + tick_seconds
