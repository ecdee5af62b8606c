"""The leader's side of leases: deadlines kept from what the state machine applies,
revokes proposed when they pass, and the lease queries answered from its clock
(docs/leases.md; the deadlines themselves are node/lease_timers.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.protocol import ErrorCode, Reply
from node.answers import Answers
from node.eventlog import EventLog
from node.lease_timers import LeaseTimers, answer_query
from node.raft import LeadershipTransferInProgress, NotLeader, RaftCore, Role, UncommittedBytesExceeded
from node.replica import Replica
from cluster.kv import LeaseExpire, encode_command

#: Lease expiries a leader proposes per sweep (every 50 ms): bounds the revoke rate.
EXPIRIES_PER_SWEEP = 100


class LeaseExpiry:
    def __init__(self, core: RaftCore, replica: Replica, answers: Answers, clock: Callable[[], float],
                 log: EventLog) -> None:
        self.timers = LeaseTimers()
        self._core = core
        self._replica = replica
        self._answers = answers
        self._clock = clock
        self._log = log
        #: revokes of expired leases proposed (etcd's lease_expired_total, /metrics)
        self.expired_total = 0

    def __len__(self) -> int:
        return len(self.timers)

    def reset(self) -> None:
        """Start over from the state machine's leases (at start, after a snapshot)."""
        now = self._clock()
        sm = self._replica.sm
        sm.drain_lease_events()
        self.timers.reset(((lease.id, lease.ttl, lease.granted_index) for lease in sm.leases()), now)
        if self._core.role is Role.LEADER:
            self.timers.promote(now)

    def promote(self) -> None:
        """This node became leader: never cut a TTL short (node/lease_timers.py)."""
        self.timers.promote(self._clock())

    def sync(self) -> None:
        """Follow the grants and revokes the state machine just applied."""
        events = self._replica.sm.drain_lease_events()
        if events:
            now = self._clock()
            timers = self.timers
            for kind, lease_id, ttl, granted_index in events:
                if kind == "grant":
                    timers.granted(lease_id, ttl, granted_index, now)
                else:
                    timers.removed(lease_id)

    def expire(self, now: float) -> None:
        """Propose the revoke of every lease whose deadline passed (leader only)."""
        if self._core.role is not Role.LEADER or not self.timers:
            return
        for lease_id, granted_index in self.timers.expired(now, EXPIRIES_PER_SWEEP):
            try:
                self._core.propose(encode_command(LeaseExpire(lease_id, granted_index)))
            except (NotLeader, LeadershipTransferInProgress, UncommittedBytesExceeded):
                self.timers.retry(lease_id, now)
                continue
            self.expired_total += 1
            self._log.rate_limited("lease-expired", f"lease {lease_id:x} expired: revoke proposed")

    def query(self, request_id: int, request: Any) -> Reply:
        """Keepalive, time-to-live, list: answered by the leader at once, from its
        clock and applied state, once it has applied everything committed before
        its term (so it knows every acknowledged grant). CheckQuorum bounds how
        long a deposed leader can go on answering (docs/leases.md)."""
        core = self._core
        if core.role is not Role.LEADER:
            return self._answers.redirect(request_id, core.lead)
        committed = core.log.committed
        sm = self._replica.sm
        if core.log.term_at(committed) != core.term or sm.applied_index < committed:
            return self._answers.error(request_id, ErrorCode.NO_LEADER_YET, "new leader still applying the log")
        return self._answers.result(request_id, answer_query(request, sm, self.timers, self._clock()))
