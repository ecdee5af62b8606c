"""What applying the log means on this member: `handle_ready`'s apply port and
soft-state hook (node/ready_handler.py, steps 1, 3 and 6).

Applying an entry moves the state machine; a conf change also moves the address
book and the peer connections; the client that proposed the entry gets its answer;
after the batch, the lease deadlines follow the grants and revokes just applied,
reads whose index is applied are served, and the replies leave. A new role or
leader promotes the lease timers, fails the reads that died with the old leader
and ends a deposed leader's snapshot streams.
"""
from __future__ import annotations

import time

from node.address_book import Membership
from node.client_routing import ClientRouter
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.lease_expiry import LeaseExpiry
from node.outbox import Outbox
from node.peer_link import PeerLink
from node.raft import ConfChangeKind, Entry, EntryKind, ReadState, Role, Snapshot, SoftState
from node.replica import Replica, restore_members, restore_state
from node.snapshot_install import STEP_RECORDS
from node.storage import SnapshotRef
from node.telemetry import SLOW_APPLY_SECONDS


class Applier:
    def __init__(self, node_id: int, replica: Replica, membership: Membership, router: ClientRouter,
                 leases: LeaseExpiry, peers: PeerLink, outbox: Outbox, chunk_bytes: int,
                 dropped: DroppedFrames, log: EventLog) -> None:
        self.id = node_id
        #: applies that took over SLOW_APPLY_SECONDS (etcd's slow_apply_total, /metrics)
        self.slow_applies = 0
        self._replica = replica
        self._membership = membership
        self._router = router
        self._answer_write = router.answer_write
        self._requests = router.requests
        self._leases = leases
        self._peers = peers
        self._outbox = outbox
        self._chunk_bytes = chunk_bytes
        self._dropped = dropped
        self._log = log

    def on_soft_state(self, ss: SoftState) -> None:
        """Ready step 1: this node's role or leader changed."""
        self._log.info(f"{ss.role.value}, leader {ss.lead or 'unknown'}")
        if ss.role is Role.LEADER:
            self._leases.promote()
        self._router.reads_lost(ss.lead)
        if ss.role is not Role.LEADER:
            self._peers.senders.close()

    def restore(self, snapshot: Snapshot) -> None:
        """Ready step 3, after the disk committed the snapshot: take its state."""
        ref = snapshot.data
        assert isinstance(ref, SnapshotRef), "a snapshot to install must be a received file"
        # Built over earlier loop turns (node/snapshot_install.py): only swapped in here.
        replica = self._replica
        prepared = replica.take_prepared(ref)
        if prepared is not None:
            restore_members(ref, prepared.members, self._membership)
            replica.replace(prepared.machine, STEP_RECORDS)
        else:  # not prepared (not a snapshot the disk built): restore it at once
            replica.replace(restore_state(ref, self._chunk_bytes, self._membership, replica.sm.limits), STEP_RECORDS)
        self._peers.connect_members()
        self._leases.reset()
        self._router.writes_replaced(snapshot.meta.index)
        self._log.info(f"installed snapshot {snapshot.meta.index}/{snapshot.meta.term}")

    def apply(self, entry: Entry) -> None:
        """Ready step 6: one committed entry."""
        sm = self._replica.sm
        if entry.kind is EntryKind.NORMAL:
            started = time.perf_counter()
            data = entry.data
            pending = self._requests.writes.get(entry.index)
            # The leader's own proposal, still this very entry: its router decoded it.
            decoded = pending.waiter.decoded if pending is not None and pending.waiter.command is data else None
            result = sm.apply(entry.index, data, decoded)
            took = time.perf_counter() - started
            if took > SLOW_APPLY_SECONDS:
                self.slow_applies += 1
                self._log.rate_limited("slow-apply", f"apply of entry {entry.index} took {took * 1000:.0f} ms "
                                       f"(over {SLOW_APPLY_SECONDS * 1000:.0f} ms) [{self.slow_applies} so far]")
        else:
            # NOOPs and membership changes are not commands: the state machine only
            # moves its applied index. A conf change's addresses go to the book.
            sm.apply_empty(entry.index)
            result = None
            if entry.kind is EntryKind.CONF_CHANGE:
                self._conf_applied(entry)
        if self._requests.writes:
            self._answer_write(entry, result)

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        """Ready step 6, after the batch: lease deadlines, reads, replies."""
        if committed:
            self._leases.sync()
        router = self._router
        if read_states:
            requests = self._requests
            for rs in read_states:
                requests.read_index_known(rs.ctx, rs.index)
        router.serve_reads()
        self._outbox.flush()

    def _conf_applied(self, entry: Entry) -> None:
        cc = self._membership.on_applied(entry)
        if cc is None:
            self._dropped.drop("conf-change-undecodable", f"entry {entry.index}")
            return
        conf = cc.result
        self._log.info(f"membership change applied at {entry.index}: {cc.kind.name.lower()} node {cc.node_id}"
                       + (f"; voters {list(conf.voters)}, learners {list(conf.learners)}" if conf else ""))
        if cc.kind is ConfChangeKind.REMOVE and cc.node_id == self.id:
            self._log.warning("this node was removed from the cluster: it takes no further part (stop it)")
        self._peers.connect_members()
