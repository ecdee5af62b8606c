"""Client requests a node is holding: writes waiting to be applied, reads waiting
for their ReadIndex and then for the state machine to catch up.

Pure bookkeeping (no sockets, no clock reads: `now` is passed in), so the rules
can be tested directly:

* a write proposed at (term, index) succeeded iff the entry applied at `index` has
  `term` (a different term there means a new leader overwrote it: it was never
  applied, and the client may retry safely with the same (client_id, seq));
* a read is safe once a ReadState for its context arrived and `applied >= index`
  (Raft thesis §6.4);
* anything still waiting at its deadline is answered `timeout` (outcome unknown).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class Waiter:
    """Who to answer: the client's routing identity and its request id."""

    identity: bytes
    request_id: int
    command: bytes
    deadline: float


@dataclass(slots=True)
class PendingWrite:
    waiter: Waiter
    term: int


@dataclass(slots=True)
class PendingRead:
    waiter: Waiter
    index: int = -1  # -1 until the ReadState arrives


@dataclass(slots=True)
class PendingRequests:
    limit: int
    writes: dict[int, PendingWrite] = field(default_factory=dict)  # by log index
    reads: dict[bytes, PendingRead] = field(default_factory=dict)  # by ReadIndex ctx

    def __len__(self) -> int:
        return len(self.writes) + len(self.reads)

    def full(self) -> bool:
        return len(self) >= self.limit

    def add_write(self, index: int, term: int, waiter: Waiter) -> None:
        # A leader never proposes twice at one index in one incarnation; an old
        # waiter at this index belongs to a proposal of an earlier term that was
        # overwritten, and its reply is produced when that index is applied.
        self.writes[index] = PendingWrite(waiter, term)

    def add_read(self, ctx: bytes, waiter: Waiter) -> None:
        self.reads[ctx] = PendingRead(waiter)

    def write_applied(self, index: int, term: int) -> tuple[Waiter, bool] | None:
        """The waiter for the entry applied at `index`, and whether it is the entry
        its client proposed."""
        pending = self.writes.pop(index, None)
        if pending is None:
            return None
        return pending.waiter, pending.term == term

    def read_index_known(self, ctx: bytes, index: int) -> None:
        pending = self.reads.get(ctx)
        if pending is not None:
            pending.index = index

    def reads_ready(self, applied: int) -> list[Waiter]:
        """Remove and return the reads whose read index is applied."""
        ready = [ctx for ctx, p in self.reads.items() if 0 <= p.index <= applied]
        return [self.reads.pop(ctx).waiter for ctx in ready]

    def reads_without_index(self) -> list[Waiter]:
        """Remove and return reads still waiting for a ReadState (their ReadIndex
        request died with a leadership change)."""
        lost = [ctx for ctx, p in self.reads.items() if p.index < 0]
        return [self.reads.pop(ctx).waiter for ctx in lost]

    def writes_up_to(self, index: int) -> list[Waiter]:
        """Remove and return writes at or below `index` (a snapshot replaced them:
        their outcome is unknown here)."""
        gone = [i for i in self.writes if i <= index]
        return [self.writes.pop(i).waiter for i in gone]

    def expired(self, now: float) -> Iterator[Waiter]:
        for index in [i for i, p in self.writes.items() if p.waiter.deadline <= now]:
            yield self.writes.pop(index).waiter
        for ctx in [c for c, p in self.reads.items() if p.waiter.deadline <= now]:
            yield self.reads.pop(ctx).waiter

    def drain(self) -> Iterator[Waiter]:
        waiters = [p.waiter for p in self.writes.values()] + [p.waiter for p in self.reads.values()]
        yield from waiters
        self.writes.clear()
        self.reads.clear()
