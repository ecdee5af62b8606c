"""The node's mailbox loop: one thread owns the Raft core, the disk and the state
machine.

Theory of operation
-------------------
Each turn of `run`:

1. poll the peer and client sockets until input arrives or the next tick that
   can act is due (node/wakeup.py: ticks that only count are slept through), or
   the next sweep (or not at all when background work is pending); then tick the
   core for every tick interval that passed, before the input is stepped (at most
   a few at once beyond those planned: a stalled loop must not fire a burst of
   elections);
2. drain up to `max_batch` frames from each socket: peer frames are vetted and
   decoded by the `PeerLink` (bad bytes are dropped and counted, never fatal) and
   step the core (snapshot chunks go to the `LocalDisk`, their acks to the
   snapshot streams); client requests go to the `ClientRouter`, which turns them
   into proposals / one batched ReadIndex request / local reads;
3. every 50 ms (up to 50 ms later on a loop nothing else wakes), answer clients
   whose deadline passed, propose the revoke of expired leases, auto-compaction
   and the NOSPACE alarm (leader only: node/auto_compaction.py,
   node/space_quota.py) and end injected faults whose time is up;
4. pump background work (a local snapshot being written, snapshot streams to
   followers, a received snapshot's state being built: node/snapshot_install.py)
   a few chunks or steps at a time;
5. hand every Ready the core has to `handle_ready` (node/ready_handler.py, the
   one place the persistence order is written): everything stepped in this turn
   shares one WAL write and one fsync (group commit). Its ports are the
   collaborators above: `PeerLink` (peers), `LocalDisk` (disk, snapshot hook),
   `Applier` (apply, soft-state hook). The core hands out committed entries in
   batches of at most `limits.max_apply_bytes`: a turn applies one batch, and
   while more wait the next poll does not sleep (a backlog is applied between
   looks at the sockets, not in one stall). A turn over a third of the stall
   bound in CPU is logged with its time per phase (node/turn_phases.py).

Each collaborator gets only what it needs (the core, the transport, the outbox,
the clock...) and none of them knows the actor. Storage and state-machine
failures propagate out of `run`: the process exits non-zero and recovery reads
the disk (fail-stop). Nothing a peer or a client sends can raise out of the loop.
"""
from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from cluster.curve_keys import curve_client_for, load_member_keys
from cluster.kv.passwords import hash_password, verify_password
from cluster.protocol import ErrorCode
from cluster.spec import ClusterSpec, MemberSpec
from node.address_book import Address, Membership
from node.answers import Answers
from node.applying import Applier
from node.auto_compaction import AutoCompaction
from node.auth_gate import AuthGate, AuthRefusals
from node.auth_tokens import TokenTable
from node.client_routing import ClientRouter
from node.corruption_check import CorruptionCheck
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.fault_injection import FaultInjection
from node.lease_expiry import LeaseExpiry
from node.local_disk import LocalDisk
from node.loop_stalls import LoopStalls, stall_bound
from node.member_status import MemberStatus
from node.outbox import Outbox
from node.password_requests import PasswordRequests
from node.password_work import PasswordWork
from node.peer_link import PeerLink
from node.raft import Config, ConfState, InstallSnapshot, RaftCore, Role, SoftState
from node.ready_handler import ReadyPorts, handle_ready
from node.replica import Replica, restore_state, state_machine_limits
from node.requests import PendingRequests
from node.space_quota import SpaceQuota
from node.statemachine import StateMachine
from node.storage import CompactionPolicy, DataDir, StorageOptions, SyncPolicy
from node.telemetry import Telemetry
from node.transport import Transport, TransportOptions
from node.turn_phases import TurnPhases
from node.wakeup import ticks_to_deliver, ticks_until_due, wake_in_ms
from node.watches import WatchHub
from node.wire import AlarmReport, HashKVRequest, HashKVResponse, SnapshotChunk, SnapshotChunkAck

if TYPE_CHECKING:
    from node.collector_policy import CollectorPolicy
    from node.etcd.face import EtcdFace
    from node.metrics_face import MetricsFace

#: Ticks the loop may catch up at once after a stall (see step 3 above).
MAX_CATCH_UP_TICKS = 3
#: Background chunks per loop turn: bounds how long a turn spends on snapshots.
CHUNKS_PER_TURN = 4
#: ... and the time a turn spends writing the local snapshot (at least one chunk):
#: a 256 KiB chunk is 2-9 ms of CPU, four were 15-37 ms (docs/performance.md §7).
SNAPSHOT_SECONDS_PER_TURN = 0.008
#: How long a turn waits in all for its queued WAL writes to end before it moves on
#: (node/wal_writer.py): a fast fdatasync (well under 1 ms here) is acknowledged in the
#: turn that queued it; a slow one costs the turn this much, never more.
WRITE_WAIT_SECONDS = 0.004
#: Ticks a leader's commit-only AppendEntries waits for an AppendEntries that would
#: carry its new commit index anyway (the next proposal's): Config.commit_linger_ticks.
#: At one request in flight that saves each follower a loop turn, a frame each way and
#: a WAL write per put (docs/performance.md §10); a follower learns an idle leader's
#: last commit one tick (10 ms) later.
COMMIT_LINGER_TICKS = 1
#: Seconds between sweeps for timed-out requests, expired leases and faults.
SWEEP_SECONDS = 0.05
#: How late a sweep may run when nothing else wakes the loop (a quiet loop does not
#: wake 20 times a second for sweeps that mostly find nothing).
SWEEP_SLACK_SECONDS = 0.05


class NodeActor:
    def __init__(self, spec: ClusterSpec, node_id: int, data_dir: Path,
                 clock: Callable[[], float] = time.monotonic, *, join: Address | None = None,
                 fetched: Mapping[int, Address] | None = None) -> None:
        """`join`: this node's addresses when it is not one of the config's initial
        members (`python -m node --join`); it boots with an empty membership and learns
        it from the leader. `fetched`: member addresses an existing member told it."""
        self.spec = spec
        self.id = node_id
        self.member = spec.member(node_id) if join is None else \
            MemberSpec(node_id, join.peer, join.client, grpc=join.grpc, gateway=join.gateway)
        self.membership = Membership(node_id, {m.id: Address(m.peer, m.client, m.grpc, m.gateway)
                                               for m in spec.members},
                                     ConfState(spec.ids) if join is None else ConfState())
        self.membership.learn(fetched or {})
        self.clock = clock
        started = clock()
        self.stopping = False
        self.core: RaftCore | None = None
        self.replica: Replica | None = None
        self.log = EventLog(self._position, clock=clock)
        self.dropped = DroppedFrames(self.log)
        self.tick_seconds = spec.timing.tick_ms / 1000
        self.telemetry = Telemetry()  # what /metrics reads besides the status (node/telemetry.py)
        chunk_bytes = spec.snapshot.chunk_bytes
        self.storage, recovered = DataDir.open(data_dir, spec.cluster_id, node_id, StorageOptions(
            segment_bytes=spec.storage.segment_bytes, sync=SyncPolicy(spec.storage.fsync),
            keep_snapshots=spec.storage.keep_snapshots, snapshot_chunk_bytes=chunk_bytes,
            remove_in_background=True))
        try:
            ref = recovered.snapshot_ref
            limits = state_machine_limits(spec.limits)
            replica = Replica(restore_state(ref, chunk_bytes, self.membership, limits) if ref
                              else StateMachine(limits))
            core = RaftCore(self._raft_config(), self.membership.applied_conf,
                            hard_state=recovered.hard_state, snapshot=recovered.snapshot,
                            entries=recovered.entries)
            self.replica, self.core = replica, core
            self.membership.on_appended(recovered.entries)
            self.transport = Transport(node_id, self.member.peer_bind_address, self.member.client_bind_address,
                                       {}, TransportOptions(spec.limits.max_message_bytes, spec.limits.send_hwm,
                                                            spec.limits.recv_hwm),
                                       load_member_keys(spec, node_id) if spec.curve.enabled else None,
                                       self.dropped.drop)
            self.peers = PeerLink(node_id, self.transport, self.membership, core, spec.cluster_id,
                                  spec.limits.max_message_bytes, chunk_bytes, clock, self.dropped, self.log)
            self.peers.connect_members()
        except BaseException:
            self.storage.close()
            raise
        self.disk = LocalDisk(node_id, self.storage, core, replica, self.membership,
                              CompactionPolicy(spec.snapshot.applied_entries, spec.snapshot.wal_bytes),
                              chunk_bytes, self.peers, self.dropped, self.log,
                              self.telemetry if self.member.metrics else None)
        self.outbox = Outbox(self.transport.send_client, self.dropped)
        answers = Answers(node_id, self.membership.client_address)
        requests = PendingRequests(spec.limits.max_pending_requests)
        self.watches = WatchHub(node_id, self.transport.send_client, self._refuse, self.log.rate_limited)
        self.leases = LeaseExpiry(core, replica, answers, clock, self.log)
        # Space (docs/operations.md, "Space"): auto-compaction and the quota, the leader's acts.
        self.auto_compaction = AutoCompaction(spec.maintenance, core, replica, clock, self.log)
        self.quota = SpaceQuota(node_id, spec.maintenance, core, replica, clock, self.log)
        # Auth (cluster/kv/auth.py): tokens, refusal counters, the password worker.
        # The face's secret lets the etcd face vouch for a TLS client certificate's CN.
        face_secret = secrets.token_hex(32)
        refusals = AuthRefusals(self.log)
        answers.on_auth_error = lambda error: refusals.count_error(error, "refused by the state machine")
        tokens = TokenTable.from_spec(spec.auth, spec.config_path(spec.auth.jwt_key, node_id)
                                      if spec.auth.token == "jwt" else None)
        self.gate = AuthGate(replica, tokens, refusals, face_secret)
        self.password_work = PasswordWork()
        self.views = MemberStatus(spec, node_id, core, replica, self.storage, self.membership, self.transport,
                                  self.dropped, clock, started, requests, self.leases, self.watches,
                                  self.gate.status)
        self._apply_backlog = False  # this turn applied a bounded batch and more wait (_drain_ready)
        # How long each loop turn takes (node/loop_stalls.py); the collector policy is the
        # process's (node/__main__.py sets it; None in a test process: CPython's defaults).
        self.stalls = LoopStalls(stall_bound(spec.timing.tick_ms, spec.timing.election_ticks))
        # Why a turn was long (node/turn_phases.py): a line for any turn over a third of the stall bound in CPU ...
        # ... or whose wall time passed the stall bound (it waited: an fsync, the CPU).
        self.phases = TurnPhases(self.log, self.stalls.bound_s / 3, wall_budget_s=self.stalls.bound_s)
        self.disk.mark = self.phases.mark  # the commit turn's steps, by name
        self.collector: CollectorPolicy | None = None
        self.views.loop = self._loop_status
        self.faults = FaultInjection(node_id, self.transport, answers, self.views.status, clock, self.log)

        def passwords(router: ClientRouter) -> PasswordRequests:
            return PasswordRequests(self.gate, replica, self.password_work, answers, self.outbox.reply,
                                    router.propose_command, router.refuse_auth, spec.auth.password_iterations,
                                    hash_password, verify_password)

        self.router = ClientRouter(spec, node_id, core, replica, requests, self.outbox, answers, self.leases,
                                   self.views, self.faults, self.watches, self.transport, self.dropped, clock,
                                   self.log, self.disk, self.gate, passwords, self.quota)
        self._answers = answers
        self.consistency = CorruptionCheck(node_id, spec.maintenance, spec.timing.request_timeout_ms / 1000, core,
                                           replica, self.peers.peers, self.peers.send_check, answers,
                                           self.router.refuse_kv, clock, self.log)
        applier = Applier(node_id, replica, self.membership, self.router, self.leases, self.peers, self.outbox,
                          chunk_bytes, self.dropped, self.log)
        self.applier = applier
        # Ready step 4 on a writer thread (node/wal_writer.py): the loop keeps turning
        # through a slow fdatasync; its wake fd joins the sockets in the poll.
        self.writer = (self.disk.start_writer(always=spec.storage.wal_writes == "thread")
                       if spec.storage.wal_writes != "loop" else None)
        if self.writer is not None:
            self.transport.poller.register(self.writer.wake_fd, zmq.POLLIN)
        self.ports = ReadyPorts(self._on_soft_state, peers=self.peers, disk=self.disk, apply=applier,
                                snapshots=self.disk, writes=self.writer)
        self._next_sweep = 0.0
        self.leases.reset()
        # etcd's v3 API (node/etcd): its own thread, reaching this loop as a client.
        self.face: EtcdFace | None = None
        if self.member.grpc or self.member.gateway:
            # Imported only for a member with a face: grpcio, protobuf and the generated
            # modules cost ~0.25 s at every node start (measured with -X importtime).
            from node.etcd.face import EtcdFace, FaceTls  # noqa: PLC0415
            from node.etcd.lease import min_lease_ttl  # noqa: PLC0415
            from node.etcd.limits import FaceLimits  # noqa: PLC0415
            self.face = EtcdFace(spec.cluster_id, self.member, self.transport.ctx,
                                 spec.timing.request_timeout_ms / 1000, min_lease_ttl(spec.timing),
                                 face_secret=face_secret, tls=FaceTls.of(spec, self.member.id),
                                 curve=curve_client_for(spec.members) if spec.curve.enabled else None,
                                 limits=FaceLimits(spec.limits.max_request_bytes, spec.limits.max_txn_ops))
            try:
                self.face.start()
            except BaseException:
                self.face.stop()
                self.transport.close()
                self.storage.close()
                raise
        # The metrics and health endpoint (node/metrics_face.py): its own threads.
        self.metrics: MetricsFace | None = None
        if self.member.metrics:
            # Imported only when on: prometheus_client is not needed otherwise.
            from node.metrics_face import MetricsFace  # noqa: PLC0415
            self.metrics = MetricsFace(spec, self.member, self.telemetry, self.status, self._counters,
                                       self._alarms, clock)
            try:
                self.metrics.start()
            except BaseException:
                if self.face is not None:
                    self.face.stop()
                self.transport.close()
                self.storage.close()
                raise
        self.log.info(f"started: data dir {data_dir}, recovered {len(recovered.entries)} entries after "
                      f"snapshot {recovered.snapshot.meta.index if recovered.snapshot else 0}, "
                      f"peer {self.member.peer_bind_address}, client {self.member.client_bind_address}"
                      + (f", metrics {self.member.metrics}" if self.member.metrics else ""))

    def _raft_config(self) -> Config:
        t, lim = self.spec.timing, self.spec.limits
        return Config(id=self.id, rng=random.Random(), election_ticks=t.election_ticks,
                      heartbeat_ticks=t.heartbeat_ticks, max_size_per_msg=lim.max_append_bytes,
                      max_inflight_msgs=lim.max_inflight_appends,
                      max_uncommitted_bytes=lim.max_uncommitted_bytes,
                      max_committed_size_per_ready=lim.max_apply_bytes,
                      commit_linger_ticks=min(COMMIT_LINGER_TICKS, t.heartbeat_ticks))

    def _position(self) -> str:
        core, replica = self.core, self.replica
        if core is None or replica is None:
            return f"node={self.id}"
        return f"node={self.id} term={core.term} commit={core.log.committed} applied={replica.sm.applied_index}"

    @property
    def raft(self) -> RaftCore:
        assert self.core is not None
        return self.core

    @property
    def sm(self) -> StateMachine:
        assert self.replica is not None
        return self.replica.sm

    def status(self) -> dict[str, Any]:
        return self.views.status()

    def members(self) -> dict[str, Any]:
        return self.views.members()

    def _counters(self) -> dict[str, float]:
        """What /metrics needs beyond the status (read on this thread at publish)."""
        telemetry = self.telemetry
        return {"leader_changes": telemetry.leader_changes, "slow_applies": self.applier.slow_applies,
                "proposals_failed": self.router.proposals_failed, "lease_expired": self.leases.expired_total,
                # The store's accounted size, the quota's (MvccStore.size_bytes).
                "db_bytes": self.sm.size_bytes,
                "keys": self.sm.key_count, "compact_revision": self.sm.compact_revision,
                "auth_tokens": len(self.gate.tokens)}

    def _loop_status(self) -> dict[str, Any]:
        writer = self.writer
        return {**self.stalls.status(), "loop_long_turns": self.phases.long_turns,
                **(self.collector.status() if self.collector else {}), **self.disk.installs.status(),
                # Ready writes done on the loop (a quiet disk) and by the writer thread, and its fsyncs.
                **({"wal_writes_inline": writer.inline_writes, "wal_writes_threaded": writer.writes,
                    "wal_writer_batches": writer.batches} if writer is not None else {})}

    def _alarms(self) -> Any:
        return self.sm.alarms

    def _on_soft_state(self, ss: SoftState) -> None:
        self.applier.on_soft_state(ss)
        self.telemetry.leader_seen(ss.lead)

    # ======================================================================
    # The loop
    # ======================================================================
    def run(self) -> None:
        next_tick = self.clock() + self.tick_seconds
        transport, watches, passwords = self.transport, self.watches, self.password_work
        metrics, turn = self.metrics, self.telemetry.loop_turn
        stalls, collector, phases = self.stalls, self.collector, self.phases
        # A phase's end: one append (TurnPhases.record; the phases' clock is perf_counter).
        record = phases.record
        if collector is not None:
            pauses = collector.pauses
            phases.gc_total = lambda: sum(pauses.total_s)
        perf_counter, thread_time = time.perf_counter, time.thread_time
        writer = self.writer
        try:
            while not self.stopping:
                # Sleep until the next tick that can act (node/wakeup.py) or a late sweep:
                # a sweep due rides on the next wake-up (a heartbeat's, every few ticks, in
                # a healthy cluster) and forces one only SWEEP_SLACK_SECONDS after it is due.
                quiet = self._quiet_ticks()
                timeout_ms = wake_in_ms(self.clock(), next_tick, self.tick_seconds, quiet,
                                        self._next_sweep + SWEEP_SLACK_SECONDS)
                if self._apply_backlog or self.raft.has_ready():
                    # Committed entries wait (one bounded batch per turn): look at the
                    # sockets, then apply the next batch at once.
                    timeout_ms, self._apply_backlog = 0, False
                elif self.disk.busy or self.disk.installing or self.peers.senders or watches.busy:
                    # Background chunks are pending: look at the sockets, but do not
                    # sleep a whole tick (nor spin: a blocked stream waits 1 ms).
                    timeout_ms = min(timeout_ms, 1)
                peer_ready, client_ready = transport.poll(timeout_ms)
                busy_from, cpu_from = perf_counter(), thread_time()
                installing = self.disk.installing
                phases.start()
                # The ticks slept through first: the input below happened after them.
                next_tick = self._tick(next_tick, max(quiet, MAX_CATCH_UP_TICKS))
                record(("ticks", perf_counter()))
                if writer is not None and writer.due(transport.polled):
                    writer.finish()  # step 5 of the writes that ended: acknowledgements, `persisted`
                    record(("wal.ended", perf_counter()))
                if peer_ready:
                    self._drain_peers()
                    record(("peers", perf_counter()))
                if client_ready:
                    self.router.drain()
                    record(("clients", perf_counter()))
                if passwords.done:  # password checks and hashes finished on the worker
                    passwords.finish()
                self._sweep()
                record(("sweep", perf_counter()))
                self._drain_ready()
                self._background()
                self._drain_ready()
                self.gate.sync()  # the auth events just applied, before the next requests
                if self.router.deferred:  # barriers (Authenticate) whose read index is applied
                    self.router.run_deferred()
                    self._drain_ready()
                record(("auth", perf_counter()))
                watches.pump(self.sm, self.clock())  # after apply: see node/watches.py
                record(("watches", perf_counter()))
                self.outbox.flush()
                record(("replies", perf_counter()))
                if collector is not None:
                    # While a snapshot's state is built, every turn (node/snapshot_install.py).
                    collector.maybe_settle(busy_from, every_turn=self.disk.installing)
                    record(("collector.settle", perf_counter()))
                busy, cpu = perf_counter() - busy_from, thread_time() - cpu_from
                stalls.observe(busy, busy_from, cpu)
                phases.finish(busy, cpu)
                if installing or self.disk.installing:  # a snapshot install's turns (node/snapshot_install.py)
                    self.disk.installs.observe_turn(busy, cpu)
                if metrics is not None:
                    turn.observe(busy)
                    metrics.maybe_publish(self.clock())
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the loop to finish its turn and shut down (signal-handler safe)."""
        self.stopping = True

    def _quiet_ticks(self) -> int:
        """Ticks from the next one to the first that may act (node/wakeup.py)."""
        core = self.raft
        cfg = core.cfg
        return ticks_until_due(core.role is Role.LEADER, core.election_elapsed, core.heartbeat_elapsed,
                               core.randomized_election_timeout, cfg.heartbeat_ticks, cfg.election_ticks,
                               core.commit_linger)

    def _tick(self, next_tick: float, allowed: int) -> float:
        """Tick the core for every tick interval that passed, up to `allowed` (the
        ticks the loop planned to sleep through, or MAX_CATCH_UP_TICKS after a stall:
        further behind, skip rather than burst)."""
        ticks, next_tick = ticks_to_deliver(self.clock(), next_tick, self.tick_seconds, allowed)
        tick = self.raft.tick
        for _ in range(ticks):
            tick()
        return next_tick

    def _sweep(self) -> None:
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self.faults.sweep(now)
            self.gate.sweep()
            self.leases.expire(now)
            self.router.expire(now)
            self.consistency.sweep(now)
            self.auto_compaction.sweep(now)
            self.quota.sweep()

    def _drain_ready(self) -> None:
        """Every Ready the core has, each handled in node/ready_handler.py's numbered
        order (the one place that order is written). With asynchronous writes, wait
        up to WRITE_WAIT_SECONDS in all for the writes queued to end, then run their
        step 5 and handle what that made ready: a fast fdatasync is acknowledged in
        this turn, a slow one after it (node/wal_writer.py)."""
        self._handle_readies()
        writer = self.writer
        if writer is None or not writer.in_flight:
            return
        waited_until = time.perf_counter() + WRITE_WAIT_SECONDS
        while writer.in_flight:
            left = waited_until - time.perf_counter()
            if left <= 0 or not writer.wait(left):
                return
            writer.finish()
            self.phases.mark("wal.wait")
            self._handle_readies()

    def _handle_readies(self) -> None:
        core, ports = self.raft, self.ports
        if self._apply_backlog:
            return  # this turn applied its batch: the rest waits for the next turn
        while core.has_ready():
            rd = core.ready()
            handle_ready(core, rd, ports, self.phases.ready_step)
            # Feedback for the core, which may not be called between ready() and advance().
            self.peers.report_unreachable()
            self.disk.remove_unused()
            self.phases.mark("ready.advance")
            if rd.committed_entries and core.log.has_next_committed_entries():
                # The core bounds the committed entries of a Ready (limits.max_apply_bytes):
                # a backlog (a follower catching up, a restart replaying its log) is
                # applied one batch per turn, and the loop answers its peers in between
                # instead of stalling past an election timeout (issue 20).
                self._apply_backlog = True
                return

    def _background(self) -> None:
        """A few chunks of the local snapshot and of every stream to a follower."""
        disk, mark = self.disk, self.phases.mark
        writing = disk.local_snapshot is not None
        disk.pump(CHUNKS_PER_TURN, SNAPSHOT_SECONDS_PER_TURN)
        mark("snapshot.commit" if writing and disk.local_snapshot is None else "snapshot.chunks")
        disk.build_install()  # a received snapshot's state machine (node/snapshot_install.py)
        mark("snapshot.install")
        self.peers.senders.pump(self.raft.report_snapshot, CHUNKS_PER_TURN)
        mark("snapshot.send")

    # ======================================================================
    # Peers
    # ======================================================================
    def _drain_peers(self) -> None:
        transport, peers, core = self.transport, self.peers, self.raft
        for frames in transport.receive_batch(transport.peer_router, self.spec.limits.max_batch):
            message = peers.receive(frames)
            if message is None:
                continue
            if isinstance(message, SnapshotChunk):
                self.disk.receive_chunk(message)
            elif isinstance(message, SnapshotChunkAck):
                peers.senders.acknowledged(message)
            elif isinstance(message, (HashKVRequest, HashKVResponse, AlarmReport)):
                self.consistency.on_message(message)
            elif isinstance(message, InstallSnapshot):
                # Snapshots arrive only as SnapshotChunks: an InstallSnapshot on the wire
                # carries no data, and stepping it could make the core install nothing.
                self.dropped.drop("peer-install-snapshot", f"bare InstallSnapshot from node {message.src}")
            else:
                core.step(message)

    def _refuse(self, identity: bytes, request_id: int, code: ErrorCode, reason: str) -> None:
        self.outbox.reply(identity, self._answers.error(request_id, code, reason))

    # ======================================================================
    # Shutdown
    # ======================================================================
    def _shutdown(self) -> None:
        self.log.info("shutting down")
        if self.metrics is not None:
            self.metrics.stop()
        if self.face is not None:
            self.face.stop()  # first: its sockets must close before the transport's context ends
        self.router.shutdown()
        self.password_work.close()
        self.watches.close(self.sm)
        self.disk.close()
        self.peers.senders.close()
        self.outbox.flush()
        self.transport.close()
        self.storage.close()
