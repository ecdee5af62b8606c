"""What a member reports about itself: the status (`python -m cluster status`,
the supervisor's convergence checks) and the membership view (a MembersReply's
body). Read-only views over the core, the disk and the loop's collaborators."""
from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

from cluster.spec import ClusterSpec
from node.address_book import Membership
from node.dropped_frames import DroppedFrames
from node.raft import RaftCore, Role
from node.replica import Replica
from node.storage import DataDir
from node.transport import Transport


class MemberStatus:
    def __init__(self, spec: ClusterSpec, node_id: int, core: RaftCore, replica: Replica, storage: DataDir,
                 membership: Membership, transport: Transport, dropped: DroppedFrames,
                 clock: Callable[[], float], started: float, pending: Sized, leases: Sized, watches: Sized,
                 auth: Callable[[], dict[str, Any]]) -> None:
        """`started`: when the process started (the clock's reading). `pending`,
        `leases`, `watches`: the waiting client requests, the lease
        timers and the watches, reported by count. `auth`: whether auth is on, the
        tokens held and the refusals by kind (node/auth_gate.py)."""
        self.id = node_id
        self._spec = spec
        self._core = core
        self._replica = replica
        self._storage = storage
        self._membership = membership
        self._transport = transport
        self._dropped = dropped
        self._clock = clock
        self._started = started
        self._pending = pending
        self._leases = leases
        self._watches = watches
        self._auth = auth
        #: the loop's own figures (turn durations, collector passes: node/loop_stalls.py)
        self.loop: Callable[[], dict[str, Any]] | None = None

    def status(self) -> dict[str, Any]:
        st = self._core.status()
        sm = self._replica.sm
        snapshot = self._storage.snapshot
        transport = self._transport
        learner = self.id in st.learners
        out: dict[str, Any] = {
            "node_id": self.id, "cluster_id": self._spec.cluster_id,
            "role": "learner" if learner and st.role is Role.FOLLOWER else st.role.value,
            "voters": list(st.voters), "learners": list(st.learners),
            "term": st.term, "leader_id": st.lead, "commit_index": st.commit,
            "applied_index": sm.applied_index, "last_index": st.last_index,
            "snapshot_index": snapshot.meta.index if snapshot else 0, "wal_bytes": self._storage.wal_bytes,
            "uptime_s": round(self._clock() - self._started, 3), "revision": sm.revision,
            "compact_revision": sm.compact_revision, "db_size": sm.size_bytes,
            "alarms": [{"member_id": a.member_id, "alarm": a.alarm.name} for a in sm.alarms],
            "pending_requests": len(self._pending), "dropped": dict(self._dropped.counts),
            "dropping": {str(peer): {"direction": direction, "remaining_s": round(until - self._clock(), 3)}
                         for peer, (until, direction) in sorted(transport.blocked.items())},
            "fault_dropped_frames": transport.blocked_frames,
            "leases": len(self._leases),
            "watches": len(self._watches),
            "auth": self._auth(),
            **self._own_faces(),
        }
        if self.loop is not None:
            out.update(self.loop())
        if st.role is Role.LEADER:
            out["progress"] = {str(peer): text for peer, text in st.progress.items()}
        return out

    def _own_faces(self) -> dict[str, str]:
        """This member's etcd faces as the address book has them ("" = off or not
        known yet: a joining node learns its own entry from the log)."""
        own = self._membership.address(self.id)
        return {"grpc": own.grpc if own else "", "gateway": own.gateway if own else ""}

    def members(self) -> dict[str, Any]:
        """The membership in effect as this node sees it (a MembersReply's body)."""
        return self._membership.view(self._core.status())

    def was_member(self, node_id: int) -> bool:
        """Whether `node_id` is a former member this node knows of: one in the
        initial config or added by a conf change it saw, and not a member now. (A
        snapshot's members frame holds only the members of its time, so a node that
        recovered from one remembers fewer; the supervisor never reuses ids.)"""
        conf = self._core.conf
        current = conf.ids()
        return node_id not in current and (node_id in self._membership.applied or node_id in self._spec.ids)
