"""Lease deadlines: the half of leases that needs a clock (see docs/leases.md).

The state machine knows which leases exist and which keys they hold; it has no
clock. This object keeps a deadline per lease on the node's monotonic clock.
Only the leader's deadlines matter: the leader answers keepalives (a deadline
moves to now + TTL, nothing goes through the log, as in etcd) and, when a deadline
passes, the actor proposes a `LeaseExpire`, so every replica deletes the keys at
the same revision. Followers keep deadlines too but never act on them.

The rules:

* a lease learned by applying its grant (or from a snapshot) gets now + TTL;
* **promotion**: a node that becomes leader sets every deadline to now + TTL.
  It cannot know how much of a TTL was left at the old leader (keepalives are
  not logged), so it never cuts one short: the election's duration is added to
  every lease, as etcd's `Promote` does. No checkpoint of remaining TTLs is
  kept: a lease whose leader keeps changing faster than its TTL lives on
  (etcd's behaviour without `--experimental-enable-lease-checkpoint`);
* an expiry is proposed once: the lease is marked `revoking` and keepalives for
  it fail (`None`) until the revoke is applied. If the proposal fails, `retry`
  puts it back; a new leader starts over with a fresh promotion.

Pure bookkeeping: `now` is passed in, so tests need no sleeping.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from cluster.kv import (
    LeaseKeepAlive, LeaseKeepAliveResponse, LeaseLeases, LeaseLeasesResponse, LeaseNotFound, LeaseTimeToLive,
    LeaseTimeToLiveResponse, Result,
)
from node.statemachine import StateMachine


class LeaseTimers:
    def __init__(self) -> None:
        self._ttl: dict[int, int] = {}
        self._deadline: dict[int, float] = {}
        self._granted_index: dict[int, int] = {}
        self._heap: list[tuple[float, int]] = []  # (deadline, id); stale entries skipped
        self._revoking: set[int] = set()

    def __len__(self) -> int:
        return len(self._ttl)

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._ttl

    # --- what the state machine applied ------------------------------------------------

    def reset(self, leases: Iterable[tuple[int, int, int]], now: float) -> None:
        """Start over from (id, ttl, granted_index) triples (a restored snapshot)."""
        self.__init__()  # type: ignore[misc]
        for lease_id, ttl, granted_index in leases:
            self.granted(lease_id, ttl, granted_index, now)

    def granted(self, lease_id: int, ttl: int, granted_index: int, now: float) -> None:
        self._ttl[lease_id] = ttl
        self._granted_index[lease_id] = granted_index
        self._set(lease_id, now + ttl)

    def removed(self, lease_id: int) -> None:
        self._ttl.pop(lease_id, None)
        self._deadline.pop(lease_id, None)
        self._granted_index.pop(lease_id, None)
        self._revoking.discard(lease_id)

    # --- the leader's clock ---------------------------------------------------------

    def promote(self, now: float) -> None:
        """This node became leader: every lease gets its full TTL from now."""
        self._revoking.clear()
        self._deadline = {lease_id: now + ttl for lease_id, ttl in self._ttl.items()}
        self._heap = [(deadline, lease_id) for lease_id, deadline in self._deadline.items()]
        heapq.heapify(self._heap)

    def keepalive(self, lease_id: int, now: float) -> int | None:
        """Renew; the TTL granted, or None if the lease is unknown or expiring."""
        ttl = self._ttl.get(lease_id)
        if ttl is None or lease_id in self._revoking:
            return None
        self._set(lease_id, now + ttl)
        return ttl

    def remaining(self, lease_id: int, now: float) -> int | None:
        """Whole seconds left (rounded up, at least 0); None if unknown or expiring."""
        deadline = self._deadline.get(lease_id)
        if deadline is None or lease_id in self._revoking:
            return None
        return max(0, math.ceil(deadline - now))

    def expired(self, now: float, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` leases whose deadline passed, as (id, granted_index);
        each is marked revoking (reported once)."""
        out: list[tuple[int, int]] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(out) < limit:
            deadline, lease_id = heapq.heappop(heap)
            if self._deadline.get(lease_id) != deadline or lease_id in self._revoking:
                continue  # renewed since, removed, or already being revoked
            self._revoking.add(lease_id)
            out.append((lease_id, self._granted_index[lease_id]))
        return out

    def retry(self, lease_id: int, now: float) -> None:
        """An expiry could not be proposed: report it again at the next sweep."""
        if lease_id in self._revoking:
            self._revoking.discard(lease_id)
            self._set(lease_id, now)

    def _set(self, lease_id: int, deadline: float) -> None:
        self._deadline[lease_id] = deadline
        heapq.heappush(self._heap, (deadline, lease_id))
        if len(self._heap) > 4 * len(self._deadline) + 64:  # keepalives leave stale entries
            self._heap = [(d, i) for i, d in self._deadline.items()]
            heapq.heapify(self._heap)


def answer_query(request: LeaseKeepAlive | LeaseTimeToLive | LeaseLeases, sm: StateMachine,
                 timers: LeaseTimers, now: float) -> Result:
    """The leader's answer to a lease query, from the applied state and its clock."""
    if isinstance(request, LeaseLeases):
        return LeaseLeasesResponse(sm.revision, tuple(lease.id for lease in sm.leases()))
    lease = sm.lease(request.id)
    if lease is None:
        return LeaseNotFound(request.id)
    if isinstance(request, LeaseKeepAlive):
        ttl = timers.keepalive(request.id, now)
        if ttl is None:
            return LeaseNotFound(request.id)
        return LeaseKeepAliveResponse(sm.revision, request.id, ttl)
    remaining = timers.remaining(request.id, now)
    if remaining is None:
        return LeaseNotFound(request.id)
    keys = tuple(sorted(lease.keys)) if request.keys else ()
    return LeaseTimeToLiveResponse(sm.revision, request.id, lease.ttl, remaining, keys)
