"""The replicated half of leases (etcd v3 semantics): which leases exist, their
granted TTL, and which keys are attached to each.

What is replicated and what is not
----------------------------------
A lease's existence, granted TTL, grant index and attached keys are state-machine
state: `LeaseGrant` and `LeaseRevoke` are log commands, and a key joins a lease
when a put names it (a put without a lease, or with another one, detaches it; a
delete detaches it). *Time* is not here: the state machine has no clock. The
leader's node decides when a lease expires (`node/lease_timers.py`) and proposes a
`LeaseExpire(id, granted_index)`, so every replica deletes the keys at the same
revision. Naming the grant index makes a late verdict harmless: it cannot revoke
a lease re-granted later under the same id.

Lease ids are int64 > 0. A grant with id 0 gets `splitmix64(index)` (the grant's
log index, scrambled so ids look like etcd's and rarely meet user-chosen ones);
if that id is taken, the next free one. Deterministic on every replica.

The table also keeps an outbox of grants and removals (`drain_events`) for the
node, which keeps each lease's deadline; the outbox is not state (not compared,
not in snapshots).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from cluster.kv.errors import LeaseExists, LimitExceeded

INT64_MAX = 2**63 - 1


class LeaseHook(Protocol):
    """What the key-value ops need of the lease table (see `txn`)."""

    def exists(self, lease: int) -> bool:
        """Whether `lease` (never 0) may be attached to a key now."""
        ...

    def attach(self, lease: int, key: bytes) -> None:
        """`key` was put with `lease` (never 0)."""
        ...

    def detach(self, lease: int, key: bytes) -> None:
        """`key`, attached to `lease`, was deleted or put with another lease."""
        ...


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int  # granted TTL, seconds
    granted_index: int  # log index of the grant: tells re-grants of one id apart
    keys: set[bytes] = field(default_factory=set)


#: Outbox events: ("grant", id, ttl, granted_index) and ("remove", id, 0, 0).
LeaseEvent = tuple[str, int, int, int]


def splitmix64(x: int) -> int:
    """A bijective 64-bit scramble (Steele et al.'s SplitMix64 finaliser)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class LeaseTable:
    """Leases by id. Implements `LeaseHook` for the key-value ops."""

    def __init__(self, max_leases: int) -> None:
        self._max = max_leases
        self._leases: dict[int, Lease] = {}
        self._events: list[LeaseEvent] = []

    # --- LeaseHook ------------------------------------------------------------------

    def exists(self, lease: int) -> bool:
        return lease in self._leases

    def attach(self, lease: int, key: bytes) -> None:
        self._leases[lease].keys.add(key)

    def detach(self, lease: int, key: bytes) -> None:
        found = self._leases.get(lease)
        if found is not None:  # a key restored with a lease unknown to the table
            found.keys.discard(key)

    # --- grants and removals -----------------------------------------------------------

    def grant(self, index: int, lease_id: int, ttl: int) -> Lease:
        """A new lease (id 0: pick one from `index`); raises LeaseExists or
        LimitExceeded."""
        if lease_id and lease_id in self._leases:
            raise LeaseExists(lease_id)
        if len(self._leases) >= self._max:
            raise LimitExceeded("max_leases", len(self._leases) + 1, self._max)
        if not lease_id:
            lease_id = splitmix64(index) & INT64_MAX or 1
            while lease_id in self._leases:
                lease_id = lease_id % INT64_MAX + 1
        lease = self._leases[lease_id] = Lease(lease_id, ttl, index)
        self._events.append(("grant", lease_id, ttl, index))
        return lease

    def get(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def remove(self, lease_id: int) -> Lease:
        lease = self._leases.pop(lease_id)
        self._events.append(("remove", lease_id, 0, 0))
        return lease

    def drain_events(self) -> list[LeaseEvent]:
        events, self._events = self._events, []
        return events

    # --- snapshots -------------------------------------------------------------------

    def load(self, lease_id: int, ttl: int, granted_index: int) -> None:
        """Restore one lease (keys are re-attached from the restored kvs)."""
        self._leases[lease_id] = Lease(lease_id, ttl, granted_index)

    def __iter__(self) -> Iterator[Lease]:
        """Ascending id: the order of snapshots and listings."""
        return iter([self._leases[i] for i in sorted(self._leases)])

    def __len__(self) -> int:
        return len(self._leases)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LeaseTable):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable
