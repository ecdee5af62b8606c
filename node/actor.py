"""The node's mailbox loop: one thread owns the Raft core, the disk and the state
machine.

Theory of operation
-------------------
Each turn of `run`:

1. poll the peer and client sockets until input arrives or the next tick is due
   (or not at all when background work is pending);
2. drain up to `max_batch` frames from each socket: decode (bad bytes are dropped
   and counted, never fatal), step the core with peer messages, turn client
   requests into proposals / ReadIndex requests / local reads;
3. tick the core for every tick interval that passed (at most a few at once: a
   stalled loop must not fire a burst of elections);
4. answer clients whose deadline passed, pump background work (a local snapshot
   being written, snapshot streams to followers) a few chunks at a time;
5. handle every Ready the core has, in `handle_ready`'s numbered order: everything
   stepped in this turn shares one WAL write and one fsync (group commit).

Storage and state-machine failures propagate out of `run`: the process exits
non-zero and recovery reads the disk (fail-stop). Nothing a peer or a client sends
can raise out of the loop.
"""
from __future__ import annotations

import gc
import os
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cluster.protocol import (
    MAX_BATCH, BadRequest, ClientRequest, ConfChangeRequest, DropTrafficRequest, ErrorCode, KvRequest,
    MembersReply, MembersRequest, ProtocolError, Reply, StatusReply, StatusRequest, TransferRequest,
    decode_requests, encode_replies, peek_request_id,
)
from cluster.protocol import WatchCancelRequest, WatchCreateRequest, WatchProgressRequest
from cluster.spec import ClusterSpec, MemberSpec
from node import address_book, answers
from node.eventlog import EventLog
from node.lease_timers import LeaseTimers, answer_query
from node.address_book import Address, Membership, split_members, with_members
from node.raft import (
    ConfState, Config, Entry, EntryKind, InstallSnapshot, InvalidRequest, LeadershipTransferInProgress,
    Message, NotLeader, ProposalDropped, RaftCore, Ready, Role, Snapshot, SnapshotMeta, UncommittedBytesExceeded,
)
from node.raft.errors import InvalidConfChange
from node.raft.types import ConfChangeKind
from node.requests import PendingRequests, Waiter
from node.watches import WatchHub
from node.snapshot_transfer import (
    LocalSnapshot, SnapshotIntake, SnapshotSender, remove_unused, unframe_chunks,
)
from cluster.kv import (
    LEASE_QUERIES, KvError, LeaseExpire, LeaseLeases, LeaseLeasesResponse, decode_command, encode_command,
    is_read_only,
)
from node.statemachine import StateMachine
from node.storage import (
    CompactionPolicy, DataDir, SnapshotRef, SnapshotTransferError, StorageOptions, SyncPolicy,
)
from node.storage import SnapshotCorrupt as SnapshotFileCorrupt
from node.transport import Transport, TransportOptions
from node import wire
from node.wire import SnapshotChunk, SnapshotChunkAck, WireError

#: Ticks the loop may catch up at once after a stall (see step 3 above).
MAX_CATCH_UP_TICKS = 3
#: Background chunks per loop turn: bounds how long a turn spends on snapshots.
CHUNKS_PER_TURN = 4
#: Lease expiries a leader proposes per sweep (every 50 ms): bounds the revoke rate.
EXPIRIES_PER_SWEEP = 100


class NodeActor:
    def __init__(self, spec: ClusterSpec, node_id: int, data_dir: Path,
                 clock: Callable[[], float] = time.monotonic, *, join: Address | None = None,
                 fetched: Mapping[int, Address] | None = None) -> None:
        """`join`: this node's addresses when it is not one of the config's initial
        members (`python -m node --join`); it boots with an empty membership and learns
        it from the leader. `fetched`: member addresses an existing member told it."""
        self.spec = spec
        self.id = node_id
        self.member = spec.member(node_id) if join is None else MemberSpec(node_id, join.peer, join.client)
        self.membership = Membership(node_id, {m.id: Address(m.peer, m.client) for m in spec.members},
                                     ConfState(spec.ids) if join is None else ConfState())
        self.membership.learn(fetched or {})
        self.clock = clock
        self.started = clock()
        self.stopping = False
        self.dropped: Counter[str] = Counter()
        self.log = EventLog(self._position, clock=clock)
        self.tick_seconds = spec.timing.tick_ms / 1000
        self.request_timeout = spec.timing.request_timeout_ms / 1000
        self.policy = CompactionPolicy(spec.snapshot.applied_entries, spec.snapshot.wal_bytes)
        self._wal_at_snapshot = 0  # WAL bytes right after the last compaction (see the policy)
        self.core: RaftCore | None = None
        self.storage, recovered = DataDir.open(data_dir, spec.cluster_id, node_id, StorageOptions(
            segment_bytes=spec.storage.segment_bytes, sync=SyncPolicy(spec.storage.fsync),
            keep_snapshots=spec.storage.keep_snapshots, snapshot_chunk_bytes=spec.snapshot.chunk_bytes))
        try:
            ref = recovered.snapshot_ref
            self.sm = self._restore(ref) if ref else StateMachine()
            self.core = RaftCore(self._raft_config(), self.membership.applied_conf,
                                 hard_state=recovered.hard_state, snapshot=recovered.snapshot,
                                 entries=recovered.entries)
            self.membership.on_appended(recovered.entries)
            self.transport = Transport(node_id, self.member.peer_bind_address, self.member.client_bind_address,
                                       {}, TransportOptions(spec.limits.max_message_bytes, spec.limits.send_hwm,
                                                            spec.limits.recv_hwm))
            self._connect_members()
        except BaseException:
            self.storage.close()
            raise
        self.requests = PendingRequests(spec.limits.max_pending_requests)
        self.watches = WatchHub(node_id, self.transport.send_client, self._refuse, self.log.rate_limited)
        self.local_snapshot: LocalSnapshot | None = None
        self.senders: dict[int, SnapshotSender] = {}
        self.intake: SnapshotIntake | None = None
        self.unused_snapshot: SnapshotRef | None = None
        self.unreachable: set[int] = set()
        # Replies wait here until the end of the Ready or loop turn that made them, so
        # a pipelining client gets one frame per turn (see cluster.protocol).
        self._outbox: dict[bytes, list[Reply]] = {}
        self._ctx_prefix = os.urandom(8)  # ReadIndex contexts unique across restarts
        self._ctx_counter = 0
        self._turn_reads: list[Waiter] = []  # linearizable reads of the drain in progress
        self._next_expiry_sweep = 0.0
        self.lease_timers = LeaseTimers()
        self._reset_lease_timers()
        self.log.info(f"started: data dir {data_dir}, recovered {len(recovered.entries)} entries after "
                      f"snapshot {recovered.snapshot.meta.index if recovered.snapshot else 0}, "
                      f"peer {self.member.peer_bind_address}, client {self.member.client_bind_address}")

    def _raft_config(self) -> Config:
        t, lim = self.spec.timing, self.spec.limits
        return Config(id=self.id, rng=random.Random(), election_ticks=t.election_ticks,
                      heartbeat_ticks=t.heartbeat_ticks, max_size_per_msg=lim.max_append_bytes,
                      max_inflight_msgs=lim.max_inflight_appends,
                      max_uncommitted_bytes=lim.max_uncommitted_bytes)

    def _restore(self, ref: SnapshotRef) -> StateMachine:
        """The state machine from a snapshot file, and the members frame that leads it
        (node/address_book.py) into the address book."""
        members, chunks = split_members(unframe_chunks(ref.iter_data(self.spec.snapshot.chunk_bytes)))
        if members is not None:
            self.membership.restore(*members)
        elif ref.meta.conf.voters or ref.meta.conf.learners:
            self.membership.restore(ref.meta.conf, {})
        return StateMachine.restore(chunks)

    def _peers(self) -> set[int]:
        """Who we talk to: the members of the configuration in effect, plus those of
        the last *applied* one and the leader we follow. A member being removed stays
        reachable until its removal commits: a leader removing itself still needs
        the followers' acknowledgements to commit that very change (thesis §4.2.2)."""
        conf, applied = self.raft.conf, self.membership.applied_conf
        return {*conf.voters, *conf.learners, *applied.voters, *applied.learners, self.raft.lead} - {self.id, 0}

    def _connect_members(self) -> None:
        """One DEALER per peer (`_peers`); none for anyone else. A member whose
        address is unknown is logged (messages to it are dropped and counted)."""
        members = self._peers()
        for peer in list(self.transport.dealers):
            if peer not in members:
                self.transport.remove_peer(peer)
                self.log.info(f"disconnected from node {peer}: no longer a member")
        for peer in sorted(members):
            address = self.membership.address(peer)
            if address is None:
                self.log.warning(f"node {peer} is a member but its address is unknown")
            elif self.transport.addresses.get(peer) != address.peer:
                self.transport.add_peer(peer, address.peer)
                self.log.info(f"connected to node {peer} at {address.peer}")

    def _position(self) -> str:
        core = self.core
        if core is None:
            return f"node={self.id}"
        return f"node={self.id} term={core.term} commit={core.log.committed} applied={self.sm.applied_index}"

    @property
    def raft(self) -> RaftCore:
        assert self.core is not None
        return self.core

    # ======================================================================
    # The loop
    # ======================================================================
    def run(self) -> None:
        next_tick = self.clock() + self.tick_seconds
        try:
            while not self.stopping:
                timeout_ms = (next_tick - self.clock()) * 1000
                if self.local_snapshot is not None or self.senders or self.watches.busy:
                    # Background chunks are pending: look at the sockets, but do not
                    # sleep a whole tick (nor spin: a blocked stream waits 1 ms).
                    timeout_ms = min(timeout_ms, 1.0)
                peer_ready, client_ready = self.transport.poll(timeout_ms)
                if peer_ready:
                    self._drain_peers()
                if client_ready:
                    self._drain_clients()
                next_tick = self._tick(next_tick)
                self._drain_ready()
                self._background()
                self._drain_ready()
                self.watches.pump(self.sm, self.clock())  # after apply: see node/watches.py
                self._flush_replies()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the loop to finish its turn and shut down (signal-handler safe)."""
        self.stopping = True

    def _tick(self, next_tick: float) -> float:
        now = self.clock()
        ticks = 0
        while now >= next_tick and ticks < MAX_CATCH_UP_TICKS:
            self.raft.tick()
            next_tick += self.tick_seconds
            ticks += 1
        if now >= next_tick:
            next_tick = now + self.tick_seconds  # fell behind: skip, do not burst
        if now >= self._next_expiry_sweep:
            self._next_expiry_sweep = now + 0.05
            if self.transport.blocked:
                self.transport.unblock_expired(now)
            if self.raft.role is Role.LEADER and self.lease_timers:
                self._expire_leases(now)
            for waiter in self.requests.expired(now):
                self._reply(waiter.identity, answers.error(
                    waiter.request_id, self.id, ErrorCode.TIMEOUT, "no outcome before the deadline: unknown"))
        return next_tick

    def _drain_ready(self) -> None:
        core = self.raft
        while core.has_ready():
            self.handle_ready(core.ready())
            self._after_advance()

    # ======================================================================
    # Ready handling: ARCHITECTURE.md's numbered order
    # ======================================================================
    def handle_ready(self, rd: Ready) -> None:
        core = self.raft
        if rd.soft_state is not None:
            self._on_soft_state(rd)
        # -1. membership: addresses from appended conf changes, then connect to every
        #     member of the configuration in effect (messages below may be addressed
        #     to a member this very Ready added).
        if rd.entries:
            self.membership.on_appended(rd.entries)
        if rd.conf is not None:
            self._on_conf(rd.conf)
        # 0. messages that do not depend on this Ready being durable: a leader's
        #    AppendEntries leave before its own fsync, so the followers' disks work
        #    in parallel with the leader's (thesis §10.2.1; the core counts the
        #    leader towards a quorum only after `advance`).
        for m in rd.messages:
            self._send(m)
        # 1. snapshot: its file is already complete and verified (SnapshotIntake);
        #    the WAL marker commits it, then the state machine takes its state.
        if rd.snapshot is not None:
            self._install_snapshot(rd.snapshot)
        # 2. entries + hard state in one WAL write; one fsync iff must_sync.
        if rd.entries or rd.hard_state is not None:
            self.storage.append(rd.entries, rd.hard_state, sync=rd.must_sync)
        # 3. the in-memory log view: the core holds it, and `advance` marks these
        #    entries stable (a leader counts itself towards a quorum only then).
        # 4. what promises durability (vote grants, append acknowledgements, and
        #    everything of a Ready that changes term or vote) may go only now.
        for m in rd.messages_after_persist:
            self._send(m)
        # 5. apply committed entries, answer their clients, then serve reads.
        for entry in rd.committed_entries:
            self._apply(entry)
        if rd.committed_entries:
            self._sync_lease_timers()
        for rs in rd.read_states:
            self.requests.read_index_known(rs.ctx, rs.index)
        self._serve_reads()
        self._flush_replies()
        # 6. maybe snapshot: start writing it (pumped by `_background`; compaction
        #    happens when it is committed, outside this Ready).
        self._maybe_start_snapshot()
        # 7.
        core.advance(rd)

    def _after_advance(self) -> None:
        """Feedback for the core, which may not be called between ready() and advance()."""
        core = self.raft
        for peer in self.unreachable:
            core.report_unreachable(peer)
        self.unreachable.clear()
        if self.unused_snapshot is not None:
            remove_unused(self.unused_snapshot)
            self.unused_snapshot = None

    def _on_soft_state(self, rd: Ready) -> None:
        ss = rd.soft_state
        assert ss is not None
        self.log.info(f"{ss.role.value}, leader {ss.lead or 'unknown'}")
        if ss.role is Role.LEADER:
            self.lease_timers.promote(self.clock())  # never cut a TTL short (node/lease_timers.py)
        # A ReadIndex request still waiting for its ReadState was lost with the old
        # leader: tell the client now (a read is always safe to retry).
        for waiter in self.requests.reads_without_index():
            self._reply(waiter.identity, self._redirect_reply(waiter.request_id, ss.lead))
        if ss.role is not Role.LEADER:
            for sender in self.senders.values():
                sender.close()
            self.senders.clear()

    def _on_conf(self, conf: ConfState) -> None:
        self.log.info(f"membership in effect: voters {list(conf.voters)}, learners {list(conf.learners)}")
        self._connect_members()

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        ref = snapshot.data
        assert isinstance(ref, SnapshotRef), "a snapshot to install must be a received file"
        if self.local_snapshot is not None:
            self.local_snapshot.abort()  # older than what we install now
            self.local_snapshot = None
        self.storage.commit_snapshot(ref)
        self.sm = self._restore(ref)
        self._connect_members()
        self._reset_lease_timers()
        if self.unused_snapshot is not None and self.unused_snapshot.path == ref.path:
            self.unused_snapshot = None
        for waiter in self.requests.writes_up_to(snapshot.meta.index):
            self._reply(waiter.identity, answers.error(
                waiter.request_id, self.id, ErrorCode.TIMEOUT, "replaced by a snapshot: outcome unknown"))
        self.log.info(f"installed snapshot {snapshot.meta.index}/{snapshot.meta.term}")

    def _apply(self, entry: Entry) -> None:
        if entry.kind is EntryKind.NORMAL:
            result = self.sm.apply(entry.index, entry.data)
        else:
            # NOOPs and membership changes are not commands: the state machine only
            # moves its applied index. A conf change's addresses go to the book.
            self.sm.apply_empty(entry.index)
            result = None
            if entry.kind is EntryKind.CONF_CHANGE:
                self._on_conf_applied(entry)
        found = self.requests.write_applied(entry.index, entry.term)
        if found is None:
            return
        waiter, ours = found
        if ours and entry.kind is EntryKind.CONF_CHANGE:
            self._reply(waiter.identity, MembersReply(waiter.request_id, self.id, self.members()))
        elif ours and result is not None:
            self._reply(waiter.identity, answers.result_reply(waiter.request_id, self.id, result))
        else:
            # Another leader's entry took this index: ours was never applied.
            self._reply(waiter.identity, self._redirect_reply(waiter.request_id, self.raft.lead))

    def _serve_reads(self) -> None:
        for waiter in self.requests.reads_ready(self.sm.applied_index):
            self._reply(waiter.identity, answers.result_reply(
                waiter.request_id, self.id, self.sm.query(waiter.command)))

    # ======================================================================
    # Leases: deadlines on this node's clock; only the leader acts on them
    # ======================================================================
    def _reset_lease_timers(self) -> None:
        now = self.clock()
        self.sm.drain_lease_events()
        self.lease_timers.reset(((lease.id, lease.ttl, lease.granted_index) for lease in self.sm.leases()), now)
        if self.core is not None and self.core.role is Role.LEADER:
            self.lease_timers.promote(now)

    def _sync_lease_timers(self) -> None:
        events = self.sm.drain_lease_events()
        if events:
            now = self.clock()
            for kind, lease_id, ttl, granted_index in events:
                if kind == "grant":
                    self.lease_timers.granted(lease_id, ttl, granted_index, now)
                else:
                    self.lease_timers.removed(lease_id)

    def _expire_leases(self, now: float) -> None:
        """Propose the revoke of every lease whose deadline passed (leader only)."""
        for lease_id, granted_index in self.lease_timers.expired(now, EXPIRIES_PER_SWEEP):
            try:
                self.raft.propose(encode_command(LeaseExpire(lease_id, granted_index)))
            except (NotLeader, LeadershipTransferInProgress, UncommittedBytesExceeded):
                self.lease_timers.retry(lease_id, now)
                continue
            self.log.rate_limited("lease-expired", f"lease {lease_id:x} expired: revoke proposed")

    def _lease_query(self, identity: bytes, request_id: int, request: Any) -> None:
        """Keepalive, time-to-live, list: answered by the leader at once, from its
        clock and applied state, once it has applied everything committed before
        its term (so it knows every acknowledged grant). CheckQuorum bounds how
        long a deposed leader can go on answering (docs/leases.md)."""
        core = self.raft
        if core.role is not Role.LEADER:
            self._reply(identity, self._redirect_reply(request_id, core.lead))
            return
        committed = core.log.committed
        if core.log.term_at(committed) != core.term or self.sm.applied_index < committed:
            self._reply(identity, answers.error(request_id, self.id, ErrorCode.NO_LEADER_YET,
                                                "new leader still applying the log"))
            return
        result = answer_query(request, self.sm, self.lease_timers, self.clock())
        self._reply(identity, answers.result_reply(request_id, self.id, result))

    # ======================================================================
    # Snapshots
    # ======================================================================
    def _maybe_start_snapshot(self) -> None:
        if self.local_snapshot is not None:
            return
        applied = self.sm.applied_index
        base = self.storage.snapshot.meta.index if self.storage.snapshot else 0
        last = self.storage.snapshot
        wal = self.storage.wal_bytes
        if applied <= base or not self.policy.should_snapshot(
                applied - base, wal, wal - self._wal_at_snapshot, last.file_size if last else 0):
            return
        conf = self.raft.conf_at(applied)
        meta = SnapshotMeta(applied, self.raft.log.term_at(applied), conf)
        chunks = with_members(self.membership.members_frame(conf), self.sm.snapshot(self.spec.snapshot.chunk_bytes))
        self.local_snapshot = LocalSnapshot(self.storage, meta, chunks)

    def _background(self) -> None:
        job = self.local_snapshot
        if job is not None:
            ref = job.pump(CHUNKS_PER_TURN)
            if ref is not None:
                self.local_snapshot = None
                self.raft.compact(Snapshot(ref.meta, ref))
                removed = self.storage.compact(ref.meta.index)
                gc.freeze()  # the state that lived this long: out of the collector's way
                self._wal_at_snapshot = self.storage.wal_bytes
                self.log.info(f"snapshot {ref.meta.index}/{ref.meta.term} saved, "
                              f"{len(removed)} WAL segments removed")
        for peer, sender in list(self.senders.items()):
            outcome = sender.pump(self._send_chunk, CHUNKS_PER_TURN)
            if outcome is None:
                continue
            sender.close()
            del self.senders[peer]
            self.raft.report_snapshot(peer, outcome)
            self.log.info(f"snapshot {sender.message.snapshot.meta.index} to node {peer}: "
                          f"{'sent' if outcome else 'abandoned'}")

    def _send_chunk(self, chunk: SnapshotChunk) -> bool:
        return self.transport.send_peer(chunk.dst, wire.encode(self.spec.cluster_id, chunk))

    def _on_chunk(self, chunk: SnapshotChunk) -> None:
        if chunk.offset == 0:
            if self.intake is not None:
                self.intake.abort()
            worth_keeping = chunk.meta.index > self.raft.log.committed
            self.intake = SnapshotIntake(chunk, self.storage.receive_snapshot(chunk.meta) if worth_keeping else None)
        intake = self.intake
        if intake is None or not intake.matches(chunk):
            self._drop("snapshot-chunk-out-of-order", f"chunk at {chunk.offset} from node {chunk.src}")
            return
        intake.write(chunk)
        if not chunk.done:
            self._ack_chunk(chunk, intake.received)
            return
        self.intake = None
        ref = intake.finish()  # raises storage's SnapshotCorrupt on a bad transfer
        self.unused_snapshot = ref
        self.raft.step(InstallSnapshot(chunk.src, self.id, chunk.term, Snapshot(chunk.meta, ref)))
        self._ack_chunk(chunk, intake.received)

    def _ack_chunk(self, chunk: SnapshotChunk, received: int) -> None:
        """Flow control for the leader's stream (node/snapshot_transfer.py): bytes written."""
        if chunk.src not in self.transport.dealers and not self._dial(chunk.src):
            return
        ack = SnapshotChunkAck(self.id, chunk.src, chunk.term, chunk.meta.index, received)
        self.transport.send_peer(chunk.src, wire.encode(self.spec.cluster_id, ack))

    # ======================================================================
    # Peers
    # ======================================================================
    def _send(self, m: Message) -> None:
        if isinstance(m, InstallSnapshot):
            old = self.senders.pop(m.dst, None)
            if old is not None:
                old.close()
            self.senders[m.dst] = SnapshotSender(m, self.spec.snapshot.chunk_bytes, self.clock)
            self.log.info(f"streaming snapshot {m.snapshot.meta.index} to node {m.dst}")
            return
        if m.dst not in self.transport.dealers and not self._dial(m.dst):
            self._drop("peer-no-address", f"{type(m).__name__} to node {m.dst}")
            return
        if not self.transport.send_peer(m.dst, wire.encode(self.spec.cluster_id, m)):
            self.unreachable.add(m.dst)

    def _dial(self, peer: int) -> bool:
        """Connect to a peer that is not (yet) a member of our configuration: a
        joining node answers the leader before its log says who the leader is."""
        address = self.membership.address(peer)
        if address is None or peer == self.id:
            return False
        self.transport.add_peer(peer, address.peer)
        return True

    def _drain_peers(self) -> None:
        for frames in self.transport.receive_batch(self.transport.peer_router, self.spec.limits.max_batch):
            self._on_peer_frames(frames)

    def _on_peer_frames(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self._drop("peer-frame-count", f"{len(frames)} frames")
            return
        identity, data = frames
        if not self.transport.accepts_from(identity):
            return  # an injected partition (drop-traffic request)
        try:
            message = wire.decode(data, self.spec.cluster_id, self.spec.limits.max_message_bytes)
        except WireError as error:
            self._drop(f"peer-{error.kind}", error.detail)
            return
        if message.dst != self.id or message.src == self.id or not self._accepts_src(message.src):
            self._drop("peer-misaddressed", f"{type(message).__name__} {message.src}->{message.dst}")
            return
        if identity != str(message.src).encode():
            self._drop("peer-identity", f"sender {message.src} on connection {identity[:16]!r}")
            return
        if isinstance(message, SnapshotChunk):
            self._on_chunk_safely(message)
        elif isinstance(message, SnapshotChunkAck):
            sender = self.senders.get(message.src)
            if sender is not None and (message.term, message.index) == (
                    sender.message.term, sender.message.snapshot.meta.index):
                sender.acknowledged(message.received)
        elif isinstance(message, InstallSnapshot):
            # Snapshots arrive only as SnapshotChunks: an InstallSnapshot on the wire
            # carries no data, and stepping it could make the core install nothing.
            self._drop("peer-install-snapshot", f"bare InstallSnapshot from node {message.src}")
        else:
            self.raft.step(message)

    def _accepts_src(self, src: int) -> bool:
        """Only peers (`_peers`: members, a member whose removal is not applied
        yet, the leader) may talk to us, so a removed node that keeps running cannot
        disturb the cluster -- unless we are not a member ourselves: a joining node
        hears from the leader before its log names anyone."""
        if src in self.transport.dealers or src in self._peers():
            return True
        conf = self.raft.conf
        return self.id not in conf.voters and self.id not in conf.learners

    def _on_chunk_safely(self, chunk: SnapshotChunk) -> None:
        try:
            self._on_chunk(chunk)
        except (SnapshotFileCorrupt, SnapshotTransferError) as error:
            # A bad transfer is the leader's or the network's fault, not our disk's:
            # drop it; the leader retries the snapshot later.
            if self.intake is not None:
                self.intake.abort()
            self.intake = None
            self._drop("snapshot-rejected", str(error))

    def _drop(self, kind: str, detail: str) -> None:
        self.dropped[kind] += 1
        self.log.rate_limited(kind, f"dropped frame ({kind}): {detail} [{self.dropped[kind]} so far]")

    # ======================================================================
    # Clients
    # ======================================================================
    def _drain_clients(self) -> None:
        for frames in self.transport.receive_batch(self.transport.client_router, self.spec.limits.max_batch):
            if len(frames) != 2:
                self._drop("client-frame-count", f"{len(frames)} frames")
                continue
            identity, data = frames
            try:
                requests = decode_requests(data, self.spec.limits.max_message_bytes)
            except ProtocolError as error:
                self._drop("client-malformed", str(error))
                request_id = peek_request_id(data, self.spec.limits.max_message_bytes)
                if request_id is not None:
                    self._reply(identity, answers.error(request_id, self.id, ErrorCode.INVALID_REQUEST, str(error)))
                continue
            for request in requests:
                if isinstance(request, BadRequest):
                    self._drop("client-malformed", request.reason)
                    if request.request_id is not None:
                        self._reply(identity, answers.error(request.request_id, self.id,
                                                            ErrorCode.INVALID_REQUEST, request.reason))
                else:
                    self._on_request(identity, request)
        self._register_reads()

    def _on_request(self, identity: bytes, request: ClientRequest) -> None:
        if isinstance(request, StatusRequest):
            self._reply(identity, StatusReply(request.request_id, self.id, self.status()))
            return
        if isinstance(request, DropTrafficRequest):
            self._drop_traffic(identity, request)
            return
        if isinstance(request, (MembersRequest, ConfChangeRequest, TransferRequest)):
            self._on_admin(identity, request)
            return
        if isinstance(request, (WatchCreateRequest, WatchCancelRequest, WatchProgressRequest)):
            self.watches.on_request(identity, request, self.sm, self.clock())
            return
        assert isinstance(request, KvRequest)
        rid = request.request_id
        try:
            command = decode_command(request.command)
        except KvError as error:
            self._reply(identity, answers.error(rid, self.id, ErrorCode.INVALID_REQUEST, str(error)))
            return
        if isinstance(command.request, LEASE_QUERIES):
            if request.serializable and isinstance(command.request, LeaseLeases):
                # This replica's lease ids, possibly stale (e.g. to compare replicas).
                listing = LeaseLeasesResponse(self.sm.revision, tuple(lease.id for lease in self.sm.leases()))
                self._reply(identity, answers.result_reply(rid, self.id, listing, serializable=True))
                return
            self._lease_query(identity, rid, command.request)
            return
        if isinstance(command.request, LeaseExpire):
            self._reply(identity, answers.error(rid, self.id, ErrorCode.INVALID_REQUEST,
                                                "LeaseExpire is proposed by the leader only"))
            return
        if is_read_only(command.request) and request.serializable:
            reply = answers.result_reply(rid, self.id, self.sm.query(request.command), serializable=True)
            self._reply(identity, reply)
            return
        if len(self.requests) + len(self._turn_reads) >= self.requests.limit:
            self._reply(identity, answers.error(rid, self.id, ErrorCode.TOO_MANY_REQUESTS,
                                                f"{len(self.requests)} requests already waiting"))
            return
        waiter = Waiter(identity, rid, request.command, self.clock() + self.request_timeout)
        if is_read_only(command.request):
            self._read_index(waiter)
        else:
            self._propose(waiter)

    def _read_index(self, waiter: Waiter) -> None:
        self._turn_reads.append(waiter)  # registered together at the end of the drain

    def _register_reads(self) -> None:
        """One ReadIndex request for every linearizable read of this drain (as etcd's
        server batches them): the core's per-read work is per batch."""
        waiters, self._turn_reads = self._turn_reads, []
        if not waiters:
            return
        self._ctx_counter += 1
        ctx = self._ctx_prefix + struct.pack(">Q", self._ctx_counter)
        try:
            self.raft.read_index(ctx)
        except NotLeader as error:
            for waiter in waiters:
                self._reply(waiter.identity, self._redirect_reply(waiter.request_id, error.leader_hint))
            return
        self.requests.add_reads(ctx, waiters)

    def _propose(self, waiter: Waiter) -> None:
        core = self.raft
        try:
            index = core.propose(waiter.command)
        except NotLeader as error:
            self._reply(waiter.identity, self._redirect_reply(waiter.request_id, error.leader_hint))
            return
        except LeadershipTransferInProgress as error:
            self._reply(waiter.identity, answers.error(waiter.request_id, self.id, ErrorCode.NO_LEADER_YET, str(error)))
            return
        except UncommittedBytesExceeded as error:
            self._reply(waiter.identity, answers.error(waiter.request_id, self.id, ErrorCode.TOO_MANY_REQUESTS,
                                                       str(error)))
            return
        self.requests.add_write(index, core.term, waiter)

    def _redirect_reply(self, request_id: int, leader: int) -> Reply:
        return answers.redirect(request_id, self.id, leader, self.membership.client_address(leader))

    def _reply(self, identity: bytes, reply: Reply) -> None:
        queued = self._outbox.get(identity)
        if queued is None:
            self._outbox[identity] = [reply]
        else:
            queued.append(reply)

    def _flush_replies(self) -> None:
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        for identity, replies in outbox.items():
            for start in range(0, len(replies), MAX_BATCH):
                if not self.transport.send_client(identity, encode_replies(replies[start:start + MAX_BATCH])):
                    self._drop("client-reply-dropped", "client queue full")

    # ======================================================================
    # Membership requests (docs/operations.md, "Changing membership")
    # ======================================================================
    def _on_admin(self, identity: bytes, request: MembersRequest | ConfChangeRequest | TransferRequest) -> None:
        rid = request.request_id
        core = self.raft
        leader = core.role is Role.LEADER
        if isinstance(request, MembersRequest):
            if request.leader_only and not leader:
                self._reply(identity, self._redirect_reply(rid, core.lead))
            else:
                self._reply(identity, MembersReply(rid, self.id, self.members()))
            return
        if self.requests.full():
            self._reply(identity, answers.error(rid, self.id, ErrorCode.TOO_MANY_REQUESTS,
                                                f"{len(self.requests)} requests already waiting"))
            return
        try:
            if isinstance(request, TransferRequest):
                core.transfer_leadership(request.to)
                self.log.info(f"leadership transfer to node {request.to} requested by a client")
                self._reply(identity, StatusReply(rid, self.id, self.status()))
                return
            if request.change == "add-learner" and self._was_member(request.node):
                raise InvalidConfChange(
                    f"node {request.node} was a member before: ids are never reused (a fresh node "
                    f"under a removed id could vote as its old incarnation); add it under a new id")
            index = core.propose_conf_change(address_book.conf_change_for(request))
        except NotLeader as error:
            self._reply(identity, self._redirect_reply(rid, error.leader_hint))
            return
        except (ProposalDropped, InvalidRequest) as error:
            self._reply(identity, answers.error(rid, self.id, address_book.refusal_code(error), str(error)))
            return
        self.log.info(f"proposed {request.change} of node {request.node} at index {index}")
        waiter = Waiter(identity, rid, b"", self.clock() + self.request_timeout)
        self.requests.add_write(index, core.term, waiter)

    def _was_member(self, node_id: int) -> bool:
        """Whether `node_id` is a former member this node knows of: one in the
        initial config or added by a conf change it saw, and not a member now. (A
        snapshot's members frame holds only the members of its time, so a node that
        recovered from one remembers fewer; the supervisor never reuses ids.)"""
        conf = self.raft.conf
        current = set(conf.voters) | set(conf.learners)
        return node_id not in current and (node_id in self.membership.applied or node_id in self.spec.ids)

    def _on_conf_applied(self, entry: Entry) -> None:
        cc = self.membership.on_applied(entry)
        if cc is None:
            self._drop("conf-change-undecodable", f"entry {entry.index}")
            return
        conf = cc.result
        self.log.info(f"membership change applied at {entry.index}: {cc.kind.name.lower()} node {cc.node_id}"
                      + (f"; voters {list(conf.voters)}, learners {list(conf.learners)}" if conf else ""))
        if cc.kind is ConfChangeKind.REMOVE and cc.node_id == self.id:
            self.log.warning("this node was removed from the cluster: it takes no further part (stop it)")
        self._connect_members()

    def members(self) -> dict[str, Any]:
        """The membership in effect as this node sees it (a MembersReply's body)."""
        return self.membership.view(self.raft.status())

    def _refuse(self, identity: bytes, request_id: int, code: ErrorCode, reason: str) -> None:
        self._reply(identity, answers.error(request_id, self.id, code, reason))

    def _drop_traffic(self, identity: bytes, request: DropTrafficRequest) -> None:
        """Fault injection for chaos runs (`supervisor chaos --drop`)."""
        unknown = [p for p in request.peers if p == self.id or p not in self.transport.dealers]
        if unknown:
            self._reply(identity, answers.error(request.request_id, self.id, ErrorCode.INVALID_REQUEST,
                                                f"not a peer of node {self.id}: {unknown}"))
            return
        self.transport.block(request.peers, self.clock() + request.seconds, request.direction)
        self.transport.unblock_expired(self.clock())
        self.log.warning(f"fault injected: dropping traffic {request.direction} with peers "
                         f"{list(request.peers)} for {request.seconds:g} s")
        self._reply(identity, StatusReply(request.request_id, self.id, self.status()))

    def status(self) -> dict[str, Any]:
        st = self.raft.status()
        snapshot = self.storage.snapshot
        learner = self.id in st.learners
        out: dict[str, Any] = {
            "node_id": self.id, "cluster_id": self.spec.cluster_id,
            "role": "learner" if learner and st.role is Role.FOLLOWER else st.role.value,
            "voters": list(st.voters), "learners": list(st.learners),
            "term": st.term, "leader_id": st.lead, "commit_index": st.commit,
            "applied_index": self.sm.applied_index, "last_index": st.last_index,
            "snapshot_index": snapshot.meta.index if snapshot else 0, "wal_bytes": self.storage.wal_bytes,
            "uptime_s": round(self.clock() - self.started, 3), "revision": self.sm.revision,
            "pending_requests": len(self.requests), "dropped": dict(self.dropped),
            "dropping": {str(peer): {"direction": direction, "remaining_s": round(until - self.clock(), 3)}
                         for peer, (until, direction) in sorted(self.transport.blocked.items())},
            "fault_dropped_frames": self.transport.blocked_frames,
            "leases": len(self.lease_timers),
            "watches": len(self.watches),
        }
        if st.role is Role.LEADER:
            out["progress"] = {str(peer): text for peer, text in st.progress.items()}
        return out

    # ======================================================================
    # Shutdown
    # ======================================================================
    def _shutdown(self) -> None:
        self.log.info("shutting down")
        for waiter in self.requests.drain():
            self._reply(waiter.identity, answers.error(
                waiter.request_id, self.id, ErrorCode.TIMEOUT, "node shutting down: outcome unknown"))
        self.watches.close(self.sm)
        if self.local_snapshot is not None:
            self.local_snapshot.abort()
        if self.intake is not None:
            self.intake.abort()
        for sender in self.senders.values():
            sender.close()
        self._flush_replies()
        self.transport.close()
        self.storage.close()
