"""Where a long turn of the node's loop went: time per phase, logged when a turn
goes over a budget.

`LoopStalls` (node/loop_stalls.py) says *that* a turn was long; this says *why*.
The loop marks the end of each of its phases (ticks, peer input, client input,
each step of every Ready it handles, snapshot chunks, snapshot commit, watches,
the collector's settle...) with one `perf_counter()` read and an add; the
breakdown is formatted only for a turn whose CPU time exceeded the budget or
whose wall time exceeded the wall budget (the stall bound: a turn that waited,
in an fsync or for a core, without working), and logged only if it is the
longest of its `window_s` window so far in that measure (a few lines per window
at most, and never hiding the worst turn behind a lesser one), e.g.

    long turn: 71.8 ms CPU, 80.2 ms wall: ready.apply 52.1 ms, snapshot.chunks 20.3 ms, ...

Phases are wall time (a vDSO clock read, ~50 ns; the thread's CPU clock is a
system call): on a quiet machine they add up to the CPU time, on a loaded one
they also hold the time the thread waited for a core, and an fsync shows as
wall time without CPU. Cycle-collector passes run inside whatever phase
allocated the object that triggered them; the line names their total apart.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from node.eventlog import EventLog
from node.ready_handler import Step

#: The Ready steps' phase names, by step (handle_ready's `between` hook).
_STEP_PHASES = {step: f"ready.{step.name.lower()}" for step in Step}
#: Phases shown in a long turn's line: the largest first, this many at most.
_SHOWN = 6


class TurnPhases:
    """The current turn's time per phase, and the long-turn log line."""

    __slots__ = ("budget_s", "wall_budget_s", "_log", "_clock", "gc_total", "_marks", "record", "_gc_at_start",
                 "long_turns", "_window_s", "_window_end", "_window_worst", "_window_worst_wall", "_unlogged")

    def __init__(self, log: EventLog, budget_s: float, gc_total: Callable[[], float] = lambda: 0.0,
                 clock: Callable[[], float] = time.perf_counter, window_s: float = 10.0,
                 wall_budget_s: float = float("inf")) -> None:
        """`budget_s`: a turn using more CPU than this is logged, and so is one taking
        more wall time than `wall_budget_s`; `gc_total`: the collector's pause total
        so far (CollectorPauses), to name its share."""
        self.budget_s = budget_s
        self.wall_budget_s = wall_budget_s
        self._window_worst_wall = 0.0
        self._log = log
        self._clock = clock
        self._window_s = window_s
        self._window_end = 0.0
        self._window_worst = 0.0
        self._unlogged = 0  # long turns not logged since the last line (a longer one was)
        self.gc_total = gc_total
        # The turn's marks: (phase name or Step, when it ended), after the turn's start
        # (None, when it started). Only a long turn's are ever summed (`finish`), so a
        # mark is one append: the loop marks ~20 times a turn.
        self._marks: list[tuple[str | Step | None, float]] = []
        #: `mark` without a Python call, for the loop (whose clock is perf_counter):
        #: record((phase, time.perf_counter()))
        self.record = self._marks.append
        self._gc_at_start = 0.0
        self.long_turns = 0

    def start(self) -> None:
        self._marks.clear()
        self._gc_at_start = self.gc_total()
        self._marks.append((None, self._clock()))

    def mark(self, phase: str) -> None:
        """The phase `phase` ended now (it began at the previous mark)."""
        self._marks.append((phase, self._clock()))

    def ready_step(self, step: Step) -> None:
        """handle_ready's `between` hook: one phase per Ready step."""
        self._marks.append((step, self._clock()))

    def _phases(self) -> dict[str, float]:
        """Time per phase name this turn (repeats summed)."""
        phases: dict[str, float] = {}
        marks = self._marks
        for (_, started), (phase, ended) in zip(marks, marks[1:]):
            name = _STEP_PHASES[phase] if isinstance(phase, Step) else str(phase)
            phases[name] = phases.get(name, 0.0) + ended - started
        return phases

    def finish(self, wall_s: float, cpu_s: float) -> str | None:
        """The turn ended; returns (and logs) its breakdown if its CPU time exceeded
        the budget, or its wall time the wall budget, and no turn longer in that
        measure was logged in the current window."""
        long_cpu, long_wall = cpu_s > self.budget_s, wall_s > self.wall_budget_s
        if not long_cpu and not long_wall:
            return None
        self.long_turns += 1
        now = self._marks[-1][1] if self._marks else self._clock()
        if now >= self._window_end:
            self._window_end, self._window_worst, self._window_worst_wall = now + self._window_s, 0.0, 0.0
        if not ((long_cpu and cpu_s > self._window_worst) or (long_wall and wall_s > self._window_worst_wall)):
            self._unlogged += 1
            return None
        self._window_worst = max(self._window_worst, cpu_s)
        if long_wall:
            self._window_worst_wall = max(self._window_worst_wall, wall_s)
        ranked = sorted(self._phases().items(), key=lambda item: -item[1])[:_SHOWN]
        parts = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in ranked)
        collector = self.gc_total() - self._gc_at_start
        line = (f"long turn: {cpu_s * 1000:.1f} ms CPU, {wall_s * 1000:.1f} ms wall: {parts}"
                + (f"; collector passes {collector * 1000:.1f} ms of it" if collector else ""))
        unlogged, self._unlogged = self._unlogged, 0
        self._log.warning(line + (f" ({unlogged} shorter long turns not logged)" if unlogged else ""))
        return line
