"""A follower's install of a leader's snapshot, built a bounded step per loop turn.

Restoring a snapshot is proportional to the data set: 300,000 keys are ~1.1 s of
CPU, 1,000,000 keys several seconds. Done in one call in Ready step 3, that is
one loop turn in which the follower answers no heartbeat and no client, far past
a third of the election timeout (issue 20; docs/performance.md, "Millions of
keys"). So the state machine is built *before* the core learns that the
snapshot arrived:

1. the last chunk completes the file and storage verifies it (SnapshotIntake);
2. a `StateBuild` restores the file into a new `StateMachine`, a few `step`s per
   loop turn (`pump`: at most `TURN_BUDGET_SECONDS`, each step at most
   `STEP_RECORDS` records or one chunk's bytes: see
   node/statemachine/snapshot_stream.py's `load_snapshot_steps`). It reads the
   file through `SnapshotRef.iter_data`, which checks the sha256 again;
3. once built, the state machine waits in `Replica.prepared` and the core is
   stepped with the InstallSnapshot (node/local_disk.py); the Ready that follows
   installs it in the order node/ready_handler.py defines, and step 3 only
   swaps the prepared machine in (node/applying.py);
4. the state machine it replaced is emptied over the next turns (`tear_down`):
   freed at once, 300,000 keys are ~70 ms of CPU in one turn.

While 2 runs, the loop settles the collector every turn instead of every 2 s
(node/collector_policy.py): the build allocates the store's worth of objects,
and a settle examines what survived since the last one, so one turn's worth
(~1 ms) instead of two seconds' worth (52 ms of CPU at 300,000 keys).

The core is stepped only in step 3's preconditions, so the Ready order -- and
the simulator's proof of it, which restores at once through its own ports -- is
unchanged: only *when* the core hears of the snapshot moves. The leader keeps
its stream open meanwhile: the follower acknowledges the last chunk only when
the core has been stepped, and until then repeats its previous acknowledgement
every `KEEPALIVE_SECONDS`, which the leader's stream counts as life
(node/snapshot_transfer.py, STALL_SECONDS).

A newer transfer (a new leader, a newer snapshot), a newer term, a corrupt stream or shutdown
drops the partial build (`PendingInstall.abort`): nothing was shared with the
live state machine, which served reads and answered the leader all along.

Memory: until the swap, the old and the new state machine are both in memory
(twice the store, briefly), as with the one-shot restore, whose new machine was
built while the old one was still referenced.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from cluster.kv.limits import Limits
from node.address_book import split_members
from node.replica import PreparedState
from node.snapshot_transfer import unframe_chunks
from node.statemachine import StateMachine
from node.storage import SnapshotRef
from node.wire import SnapshotChunk

#: Records (or keys, or change-index slots) per step: ~4-8 ms of CPU on the
#: reference machine, or one chunk's decoding (`chunk_bytes`, 256 KiB).
STEP_RECORDS = 1000
#: Steps run in one loop turn until this much time has passed (the turn is then
#: bounded by it plus one step).
TURN_BUDGET_SECONDS = 0.010
#: How often the follower repeats its last acknowledgement while it builds.
KEEPALIVE_SECONDS = 1.0


class StateBuild:
    """The state machine of a complete snapshot file, built a step at a time."""

    def __init__(self, ref: SnapshotRef, chunk_bytes: int, limits: Limits,
                 step_records: int = STEP_RECORDS) -> None:
        self.ref = ref
        self.members, chunks = split_members(unframe_chunks(ref.iter_data(chunk_bytes)))
        self._steps = StateMachine.restore_steps(chunks, limits, step_records)
        #: steps done so far
        self.steps = 0
        self.machine: StateMachine | None = None

    def step(self) -> bool:
        """One bounded piece of the work; True once the machine is built. Raises
        cluster.kv's or storage's SnapshotCorrupt on a bad stream."""
        if self.machine is None:
            self.steps += 1
            try:
                next(self._steps)
            except StopIteration as done:
                self.machine = done.value
        return self.machine is not None

    def run(self, budget_s: float, clock: Callable[[], float] = time.perf_counter) -> bool:
        """Steps until built or `budget_s` has passed; True once built."""
        deadline = clock() + budget_s
        while not self.step():
            if clock() >= deadline:
                return False
        return True

    def prepared(self) -> PreparedState:
        assert self.machine is not None, "the build is not finished"
        return PreparedState(self.ref.path, self.machine, self.members)

    def close(self) -> None:
        """Drop the partial state (and close the file)."""
        self._steps.close()


def tear_down(retired: list[Iterator[None]], budget_s: float,
              clock: Callable[[], float] = time.perf_counter) -> None:
    """Steps of emptying replaced state machines (StateMachine.teardown_steps)
    until `budget_s` has passed; a finished one leaves `retired`."""
    deadline = clock() + budget_s
    while retired:
        for _ in retired[0]:
            if clock() >= deadline:
                return
        retired.pop(0)


class PendingInstall:
    """A verified snapshot from the leader whose state machine is being built;
    `last` is its final chunk (whose acknowledgement waits for the core)."""

    def __init__(self, last: SnapshotChunk, build: StateBuild, acked: int, now: float) -> None:
        self.last = last
        self.build = build
        #: what the follower acknowledged before the last chunk: repeated as a keep-alive
        self.acked = acked
        self.started = now
        self._next_keepalive = now + KEEPALIVE_SECONDS
        self.turns = 0
        #: the longest share of one turn, in CPU seconds of the loop thread
        self.turn_cpu_max_s = 0.0

    @property
    def ref(self) -> SnapshotRef:
        return self.build.ref

    def pump(self, budget_s: float) -> bool:
        """One turn's share of the build; True once built."""
        self.turns += 1
        cpu_from = time.thread_time()
        try:
            return self.build.run(budget_s)
        finally:
            self.turn_cpu_max_s = max(self.turn_cpu_max_s, time.thread_time() - cpu_from)

    def keepalive_due(self, now: float) -> bool:
        if now < self._next_keepalive:
            return False
        self._next_keepalive = now + KEEPALIVE_SECONDS
        return True

    def abort(self) -> None:
        self.build.close()


class InstallStats:
    """Counts for the member status: how installs were built."""

    def __init__(self) -> None:
        self.prepared = 0  # installs whose state machine was built in steps
        self.aborted = 0  # builds dropped (newer transfer, corrupt stream, shutdown)
        self.last_steps = 0  # steps and loop turns of the last finished build
        self.last_turns = 0
        self.last_seconds = 0.0  # from the verified file to the built machine
        self.last_turn_cpu_max_s = 0.0  # the longest share of one turn (loop thread CPU)
        # the longest whole loop turns since the last install began (wall, CPU)
        self.turn_max_s = 0.0
        self.turn_cpu_max_s = 0.0

    def began(self) -> None:
        self.turn_max_s = self.turn_cpu_max_s = 0.0

    def observe_turn(self, wall_s: float, cpu_s: float) -> None:
        """A loop turn that built, swapped in or tore down an install's state."""
        self.turn_max_s = max(self.turn_max_s, wall_s)
        self.turn_cpu_max_s = max(self.turn_cpu_max_s, cpu_s)

    def finished(self, pending: PendingInstall, now: float) -> None:
        self.prepared += 1
        self.last_steps = pending.build.steps
        self.last_turns = pending.turns
        self.last_seconds = now - pending.started
        self.last_turn_cpu_max_s = pending.turn_cpu_max_s

    def status(self) -> dict[str, Any]:
        return {"snapshot_installs_prepared": self.prepared, "snapshot_installs_aborted": self.aborted,
                "snapshot_install_steps": self.last_steps, "snapshot_install_turns": self.last_turns,
                "snapshot_install_s": round(self.last_seconds, 3),
                "snapshot_install_build_cpu_max_ms": round(self.last_turn_cpu_max_s * 1000, 3),
                "snapshot_install_turn_max_ms": round(self.turn_max_s * 1000, 3),
                "snapshot_install_turn_cpu_max_ms": round(self.turn_cpu_max_s * 1000, 3)}
