"""When CPython's cycle collector may run in a node process: never a full pass
on the loop, young passes bounded by what one interval allocates.

A full collection walks every tracked object, and a member's state grows with
the data set: before the MVCC layout change (node/statemachine/mvcc.py) 5
tracked objects per key, a 320 ms pass at 600,000 keys, longer than a third of
the election timeout (docs/performance.md, "Millions of keys"). What lives that
long is the store, which never forms reference cycles, so the policy is:

1. while recovery builds the state (snapshot load): no collection at all
   (`pause_for_recovery`: it only allocates what it keeps; 300,000 keys restore
   in 1.68 s of CPU instead of 2.09 s); then `gc.freeze()` of all of it
   (frozen objects are never examined again; freeing them by reference count
   still works), with no collection first: a full pass over a 1,000,000-key
   recovery found 5 unreachable objects in 0.21 s of CPU, a delay of every
   restart for nothing (docs/performance.md, "Restart");
2. automatic collections only of the young generations (gen0 every
   `YOUNG_THRESHOLD` net allocations, gen1 every `MIDDLE_THRESHOLD` gen0
   passes); the oldest generation's threshold is set out of reach, so CPython
   never starts a full pass by itself;
3. every `SETTLE_SECONDS`, from the loop (`maybe_settle`): one collection of the
   young generations and of the unfrozen part of the oldest, which holds only
   what survived since the last settle, then `gc.freeze()` of the survivors. Its
   cost follows the write rate over one interval, not the data set.

The price: a reference cycle that becomes garbage after it was frozen is never
collected (it would take a full pass, the stall this avoids). The loop's own
cycles (exceptions with tracebacks, short-lived requests) die within a turn,
before a settle; `gc_frozen_objects` in the member status counts what was
frozen, which should follow the store's size.

The count is kept here, not asked of CPython: `gc.get_freeze_count()` walks the
whole frozen list (~60-140 ns per object, a cache miss each), and the status is
read for /metrics every 0.1 s (while scraped: node/telemetry.py) -- at 76,000 frozen objects (a started node) that
was ~10% of a core per member, idle or not, and ~100 ms per read at a million
keys. `gc.get_objects(2)` right after a collection lists only that interval's
survivors (the frozen ones are not in it), so counting them costs what the
collection did (the one count of the whole set is taken at install, before
the loop). Frozen objects freed since are not subtracted.
"""
from __future__ import annotations

import gc
from typing import Any

from node.loop_stalls import CollectorPauses

#: gen0 collection every this many net allocations of tracked objects (CPython: 700):
#: the hot path allocates a few per entry, and each pass has a fixed cost.
YOUNG_THRESHOLD = 50_000
#: gen1 collection every this many gen0 passes (CPython: 10).
MIDDLE_THRESHOLD = 20
#: The oldest generation's threshold: out of reach, so no automatic full pass.
NEVER = 1 << 30
#: How often the loop collects what survived the last interval and freezes it.
SETTLE_SECONDS = 2.0


class CollectorPolicy:
    """The process's collector settings and the loop's periodic settle."""

    def __init__(self, settle_s: float = SETTLE_SECONDS,
                 gc_module: Any = gc, pauses: CollectorPauses | None = None) -> None:
        """`gc_module`: the collector (a fake in tests)."""
        self._gc = gc_module
        self._settle_s = settle_s
        self._next = 0.0
        self.settles = 0
        #: objects moved into the frozen set since start (freed ones not subtracted)
        self.frozen = 0
        self.pauses = pauses if pauses is not None else CollectorPauses()

    def pause_for_recovery(self) -> None:
        """Before recovery: no collections until `install`."""
        self._gc.disable()

    def install(self) -> None:
        """Once, after recovery and before the loop: freeze, set thresholds."""
        self._gc.freeze()
        self.frozen = self._gc.get_freeze_count()  # one walk, before the loop (~7-100 ms at 1M objects)
        self._gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NEVER)
        self._gc.enable()
        self.pauses.attach()

    def uninstall(self) -> None:
        self.pauses.detach()

    def maybe_settle(self, now: float, every_turn: bool = False) -> bool:
        """Collect what survived since the last settle, then freeze it; at most once
        per `settle_s`, or now if `every_turn` (a snapshot install builds a whole
        store over a few seconds: settled each turn, a pass sees one turn's
        allocations). Return whether it ran."""
        if now < self._next and not every_turn:
            return False
        self._next = now + self._settle_s
        self._gc.collect(2)  # the frozen set is not examined: only this interval's survivors
        self._freeze()
        self.settles += 1
        return True

    def _freeze(self) -> None:
        """Freeze what the collection just before left (all of it in the oldest
        generation), counting it first."""
        self.frozen += len(self._gc.get_objects(2))
        self._gc.freeze()

    def status(self) -> dict[str, Any]:
        return {**self.pauses.status(), "gc_frozen_objects": self.frozen, "gc_settles": self.settles}

