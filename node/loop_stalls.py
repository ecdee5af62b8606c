"""How long the node's loop goes without looking at its sockets, and why.

One thread runs the Raft core, the disk and the state machine (node/actor.py),
so a turn of its loop that takes longer than the election timeout silences the
member: a leader stops heartbeating and a follower takes over. The longest turns
are what to watch as the data set grows (docs/performance.md, "Millions of
keys"): a pause proportional to the number of keys is a latent election.

`LoopStalls` keeps, for the member status, the longest turn since start and in
the recent window, a fixed-bucket histogram of turn durations and how many
turns exceeded the stall bound: a third of the minimum election timeout, the
budget a turn may take without risking an election when a follower's timer was
already two thirds through. `CollectorPauses` records CPython's own cycle-
collector passes (through `gc.callbacks`), by generation, since a collection runs
inside whatever turn allocated the object that triggered it and is otherwise
invisible. Both observe on the loop's thread only and cost a few adds per turn.
"""
from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Callable
from typing import Any

#: Upper bounds (ms) of the turn histogram's buckets; the last bucket is unbounded.
TURN_BOUNDS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)
#: Length of the window the recent maximum covers (the current and the previous one).
WINDOW_SECONDS = 10.0


class LoopStalls:
    """Turn durations: the longest ever and recently, a histogram, the stalls."""

    __slots__ = ("bound_s", "_counts", "turns", "stalls", "max_s", "cpu_max_s", "_window_max", "_previous_max",
                 "_window_end", "_window_s", "_window_cpu_max", "_previous_cpu_max")

    def __init__(self, bound_s: float, window_s: float = WINDOW_SECONDS) -> None:
        """`bound_s`: a turn longer than this is a stall (a third of the minimum
        election timeout: `stall_bound`)."""
        self.bound_s = bound_s
        self._counts = [0] * (len(TURN_BOUNDS_MS) + 1)
        self.turns = 0
        self.stalls = 0
        self.max_s = 0.0
        self.cpu_max_s = 0.0
        self._window_cpu_max = 0.0
        self._previous_cpu_max = 0.0
        self._window_s = window_s
        self._window_end = 0.0
        self._window_max = 0.0
        self._previous_max = 0.0

    def observe(self, seconds: float, now: float, cpu_seconds: float = 0.0) -> None:
        """One turn took `seconds` of busy (wall) time, `cpu_seconds` of the loop
        thread's CPU; `now` is the loop clock's reading. Wall time is what a peer
        waits; CPU time is the turn's own work: on a machine short of cores the two
        differ by the time the thread waited to be scheduled."""
        if now >= self._window_end:
            ended_long_ago = now >= self._window_end + self._window_s
            self._previous_max = 0.0 if ended_long_ago else self._window_max
            self._previous_cpu_max = 0.0 if ended_long_ago else self._window_cpu_max
            self._window_max = self._window_cpu_max = 0.0
            self._window_end = now + self._window_s
        if cpu_seconds > self._window_cpu_max:
            self._window_cpu_max = cpu_seconds
            if cpu_seconds > self.cpu_max_s:
                self.cpu_max_s = cpu_seconds
        self._counts[bisect.bisect_left(TURN_BOUNDS_MS, seconds * 1000)] += 1
        self.turns += 1
        if seconds > self._window_max:
            self._window_max = seconds
            if seconds > self.max_s:
                self.max_s = seconds
        if seconds > self.bound_s:
            self.stalls += 1

    @property
    def recent_max_s(self) -> float:
        """The longest turn of the current and the previous window (10-20 s)."""
        return max(self._window_max, self._previous_max)

    @property
    def recent_cpu_max_s(self) -> float:
        return max(self._window_cpu_max, self._previous_cpu_max)

    def histogram(self) -> dict[str, int]:
        """Turns per bucket, by upper bound in ms ("+Inf" for the rest); not cumulative."""
        labels = [str(b) for b in TURN_BOUNDS_MS] + ["+Inf"]
        return dict(zip(labels, self._counts))

    def status(self) -> dict[str, Any]:
        """The member status keys (node/member_status.py)."""
        return {"loop_turn_max_ms": round(self.max_s * 1000, 3),
                "loop_turn_recent_max_ms": round(self.recent_max_s * 1000, 3),
                "loop_turn_cpu_max_ms": round(self.cpu_max_s * 1000, 3),
                "loop_turn_recent_cpu_max_ms": round(self.recent_cpu_max_s * 1000, 3),
                "loop_turns": self.turns, "loop_stalls": self.stalls,
                "loop_stall_bound_ms": round(self.bound_s * 1000, 3),
                "loop_turn_histogram_ms": self.histogram()}


def stall_bound(tick_ms: int, election_ticks: int) -> float:
    """A third of the minimum election timeout, in seconds (100 ms at 10 ms x 30)."""
    return tick_ms * election_ticks / 1000 / 3


class CollectorPauses:
    """CPython's cycle-collector passes, by generation: count, longest, total.

    Registered in `gc.callbacks` by `attach` (once per process: the collector is
    process-wide) and removed by `detach`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        """`clock`: wall time; `cpu_clock`: the collecting thread's CPU time (a pass runs
        on the thread whose allocation triggered it). On a loaded machine the two
        differ by the time the thread waited for a core."""
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._started = self._cpu_started = 0.0
        self.count = [0, 0, 0]
        self.max_s = [0.0, 0.0, 0.0]
        self.cpu_max_s = [0.0, 0.0, 0.0]
        self.total_s = [0.0, 0.0, 0.0]

    def on_collect(self, phase: str, info: dict[str, int]) -> None:
        """The `gc.callbacks` signature: "start" then "stop" around each pass."""
        if phase == "start":
            self._started, self._cpu_started = self._clock(), self._cpu_clock()
            return
        took = self._clock() - self._started
        generation = info["generation"]
        cpu = self._cpu_clock() - self._cpu_started
        if cpu > self.cpu_max_s[generation]:
            self.cpu_max_s[generation] = cpu
        self.count[generation] += 1
        self.total_s[generation] += took
        if took > self.max_s[generation]:
            self.max_s[generation] = took

    def attach(self) -> None:
        gc.callbacks.append(self.on_collect)

    def detach(self) -> None:
        if self.on_collect in gc.callbacks:
            gc.callbacks.remove(self.on_collect)

    def status(self) -> dict[str, Any]:
        return {"gc_collections": list(self.count),
                "gc_pause_max_ms": [round(s * 1000, 3) for s in self.max_s],
                "gc_pause_cpu_max_ms": [round(s * 1000, 3) for s in self.cpu_max_s],
                "gc_pause_total_ms": [round(s * 1000, 1) for s in self.total_s]}
