"""Client requests a node is holding: writes waiting to be applied, reads waiting
for their ReadIndex and then for the state machine to catch up.

Pure bookkeeping (no sockets, no clock reads: `now` is passed in), so the rules
can be tested directly:

* a write proposed at (term, index) succeeded iff the entry applied at `index` has
  `term` (a different term there means a new leader overwrote it: it was never
  applied, and the client may retry safely with the same (client_id, seq));
* a read is safe once a ReadState for its context arrived and `applied >= index`
  (Raft thesis §6.4); every read a loop turn receives shares one context (one
  ReadIndex request for the batch, as etcd's server does);
* anything still waiting at its deadline is answered `timeout` (outcome unknown).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.kv.codec import Command


@dataclass(slots=True)
class Waiter:
    """Who to answer: the client's routing identity and its request id. A read
    with `then` is a barrier: once its read index is applied, `then` runs instead
    of a query (Authenticate checks the password against the state a
    linearizable read would see)."""

    identity: bytes
    request_id: int
    command: bytes
    deadline: float
    then: Callable[[], None] | None = None
    #: `command` decoded, when the router decoded exactly these bytes: the leader's
    #: apply and a read's query take it instead of decoding them again
    decoded: Command | None = None


@dataclass(slots=True)
class PendingWrite:
    waiter: Waiter
    term: int


@dataclass(slots=True)
class PendingRead:
    waiters: list[Waiter]
    index: int = -1  # -1 until the ReadState arrives


@dataclass(slots=True)
class PendingRequests:
    limit: int
    writes: dict[int, PendingWrite] = field(default_factory=dict)  # by log index
    reads: dict[bytes, PendingRead] = field(default_factory=dict)  # by ReadIndex ctx
    read_count: int = 0  # waiters in `reads`

    def __len__(self) -> int:
        return len(self.writes) + self.read_count

    def full(self) -> bool:
        return len(self) >= self.limit

    def add_write(self, index: int, term: int, waiter: Waiter) -> None:
        # A leader never proposes twice at one index in one incarnation; an old
        # waiter at this index belongs to a proposal of an earlier term that was
        # overwritten, and its reply is produced when that index is applied.
        self.writes[index] = PendingWrite(waiter, term)

    def add_read(self, ctx: bytes, waiter: Waiter) -> None:
        self.add_reads(ctx, [waiter])

    def add_reads(self, ctx: bytes, waiters: list[Waiter]) -> None:
        """Reads that share the ReadIndex request `ctx`."""
        pending = self.reads.get(ctx)
        if pending is None:
            self.reads[ctx] = PendingRead(list(waiters))
        else:
            pending.waiters.extend(waiters)
        self.read_count += len(waiters)

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
        return self._take_reads([ctx for ctx, p in self.reads.items() if 0 <= p.index <= applied])

    def reads_without_index(self) -> list[Waiter]:
        """Remove and return reads still waiting for a ReadState (their ReadIndex
        request died with a leadership change)."""
        return self._take_reads([ctx for ctx, p in self.reads.items() if p.index < 0])

    def _take_reads(self, contexts: list[bytes]) -> list[Waiter]:
        out: list[Waiter] = []
        for ctx in contexts:
            out += self.reads.pop(ctx).waiters
        self.read_count -= len(out)
        return out

    def writes_up_to(self, index: int) -> list[Waiter]:
        """Remove and return writes at or below `index` (a snapshot replaced them:
        their outcome is unknown here)."""
        gone = [i for i in self.writes if i <= index]
        return [self.writes.pop(i).waiter for i in gone]

    def expired(self, now: float) -> Iterator[Waiter]:
        for index in [i for i, p in self.writes.items() if p.waiter.deadline <= now]:
            yield self.writes.pop(index).waiter
        late: list[Waiter] = []
        for ctx, pending in list(self.reads.items()):
            if any(w.deadline <= now for w in pending.waiters):
                late += [w for w in pending.waiters if w.deadline <= now]
                pending.waiters = [w for w in pending.waiters if w.deadline > now]
                if not pending.waiters:
                    del self.reads[ctx]
        self.read_count -= len(late)
        yield from late

    def drain(self) -> Iterator[Waiter]:
        waiters = [p.waiter for p in self.writes.values()] + [w for p in self.reads.values() for w in p.waiters]
        yield from waiters
        self.writes.clear()
        self.reads.clear()
        self.read_count = 0
