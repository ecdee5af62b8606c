"""This member's disk as the Ready handling and the loop see it: the WAL, the
snapshot being written (a few chunks per loop turn), and the snapshot being
received from the leader.

It is `handle_ready`'s disk port and snapshot hook (node/ready_handler.py): step 3
commits a received snapshot, step 4 appends entries and hard state, step 7 maybe
starts a local snapshot; the loop then pumps that snapshot (`pump`) and, once it
is committed, compacts the core's log and the WAL -- after `advance`, as the core
requires. Storage failures propagate (fail-stop); a bad *transfer* is the
leader's or the network's fault and is dropped.
"""
from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence

from cluster.kv.errors import SnapshotCorrupt as SnapshotStreamCorrupt
from node.address_book import Membership, with_members
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.peer_link import PeerLink
from node.raft import Entry, HardState, InstallSnapshot, RaftCore, Snapshot, SnapshotMeta
from node.replica import Replica
from node.snapshot_install import TURN_BUDGET_SECONDS, InstallStats, PendingInstall, StateBuild, tear_down
from node.snapshot_transfer import LocalSnapshot, SnapshotIntake, remove_unused
from node.storage import CompactionPolicy, DataDir, SnapshotRef, SnapshotTransferError
from node.storage import SnapshotCorrupt as SnapshotFileCorrupt
from node.telemetry import Telemetry
from node.wal_writer import WalWriter
from node.wire import SnapshotChunk


#: Compacted log entries freed per loop turn (a few ms of CPU).
RELEASE_PER_TURN = 10_000


class LocalDisk:
    def __init__(self, node_id: int, storage: DataDir, core: RaftCore, replica: Replica, membership: Membership,
                 policy: CompactionPolicy, chunk_bytes: int, peers: PeerLink, dropped: DroppedFrames,
                 log: EventLog, telemetry: Telemetry | None = None) -> None:
        """`telemetry`: where the WAL write and snapshot commit times go (/metrics)."""
        self.id = node_id
        self.storage = storage
        self._telemetry = telemetry
        self._core = core
        self._replica = replica
        self._membership = membership
        self._policy = policy
        self._chunk_bytes = chunk_bytes
        self._peers = peers
        self._dropped = dropped
        self._log = log
        self.local_snapshot: LocalSnapshot | None = None
        self.intake: SnapshotIntake | None = None
        self.unused_snapshot: SnapshotRef | None = None
        #: a received snapshot whose state machine is being built (node/snapshot_install.py)
        self.pending_install: PendingInstall | None = None
        self.installs = InstallStats()
        self._wal_at_snapshot = 0  # WAL bytes right after the last compaction (see the policy)
        # Entry lists compactions handed back (RaftLog.compact: the log's previous
        # list), freed RELEASE_PER_TURN entries at a time (`pump`), newest list first;
        # never merged (extending one list with another touches every entry).
        self._released: list[list[Entry]] = []
        #: names the commit turn's steps (the actor's TurnPhases.mark: the long-turn log)
        self.mark: Callable[[str], None] = lambda phase: None
        #: asynchronous writes (node/wal_writer.py), or None: `append` writes in the loop
        self.writer: WalWriter | None = None

    def start_writer(self, always: bool = False) -> WalWriter:
        """Hand Ready step 4 to a writer thread from now on, while the disk is busy
        or, with `always`, every time (the actor registers its wake fd and passes it
        as `ReadyPorts.writes`)."""
        storage = self.storage
        self.writer = WalWriter(lambda entries, hard_state: storage.append(entries, hard_state, sync=False),
                                storage.sync, self._observe_write if self._telemetry is not None else None,
                                disk_busy=(lambda: True) if always else self._disk_busy)
        return self.writer

    def _disk_busy(self) -> bool:
        """A snapshot file is being written or received: its writeback can hold up
        an fdatasync for tens of ms, so the WAL writes go to the writer thread."""
        return self.local_snapshot is not None or self.intake is not None

    def drain_writes(self) -> None:
        """Every queued write durable and its step 5 run: before anything else writes
        the WAL (a snapshot's marker, an install, a compaction)."""
        if self.writer is not None:
            self.writer.drain()

    @property
    def busy(self) -> bool:
        """Whether `pump` has work: a snapshot to write, or compacted entries to free."""
        return self.local_snapshot is not None or bool(self._released)

    # -- the disk port -------------------------------------------------------------------

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Ready step 3: the file is already complete and verified (SnapshotIntake);
        its WAL marker commits it."""
        ref = snapshot.data
        assert isinstance(ref, SnapshotRef), "a snapshot to install must be a received file"
        if self.local_snapshot is not None:
            self.local_snapshot.abort()  # older than what we install now
            self.local_snapshot = None
        self.drain_writes()
        self.storage.commit_snapshot(ref)
        if self.unused_snapshot is not None and self.unused_snapshot.path == ref.path:
            self.unused_snapshot = None

    def append(self, entries: Sequence[Entry], hard_state: HardState | None, sync: bool) -> None:
        """Ready step 4: one WAL write; one fsync iff `sync` (group commit)."""
        if self._telemetry is None or not sync:
            self.storage.append(entries, hard_state, sync=sync)
            return
        started = time.perf_counter()
        self.storage.append(entries, hard_state, sync=sync)
        self._observe_write(time.perf_counter() - started, len(entries))

    def _observe_write(self, seconds: float, entries: int) -> None:
        """One synced WAL write's time and entry count (the /metrics histograms)."""
        assert self._telemetry is not None
        self._telemetry.wal_fsync.observe(seconds)
        self._telemetry.append_batch.observe(entries)

    # -- local snapshots -----------------------------------------------------------------

    def maybe_start(self) -> None:
        """Ready step 7: start writing a snapshot if the compaction policy says so
        (`pump` writes it; compaction happens when it is committed)."""
        if self.local_snapshot is not None:
            return
        applied = self._replica.sm.applied_index
        last = self.storage.snapshot
        base = last.meta.index if last else 0
        wal = self.storage.wal_bytes
        if applied <= base or not self._policy.should_snapshot(
                applied - base, wal, wal - self._wal_at_snapshot, last.file_size if last else 0):
            return
        self._start(applied)

    def snapshot_covering(self, index: int) -> SnapshotRef | None:
        """The newest committed snapshot if it covers `index` (etcd's Maintenance.
        Snapshot streams it); otherwise None, and a snapshot of the applied state is
        started now if none is being written (whatever the compaction policy), so a
        later call finds one."""
        last = self.storage.snapshot
        if last is not None and last.meta.index >= index:
            return last
        applied = self._replica.sm.applied_index
        if self.local_snapshot is None and applied > (last.meta.index if last else 0):
            self._start(applied)
        return None

    def _start(self, applied: int) -> None:
        sm = self._replica.sm
        core = self._core
        conf = core.conf_at(applied)
        meta = SnapshotMeta(applied, core.log.term_at(applied), conf)
        chunks = with_members(self._membership.members_frame(conf), sm.snapshot(self._chunk_bytes))
        self.local_snapshot = LocalSnapshot(self.storage, meta, chunks, before_commit=self.drain_writes)

    def pump(self, budget: int, seconds: float = math.inf) -> None:
        """Write up to `budget` chunks of the local snapshot, stopping once `seconds`
        have passed (at least one chunk: a turn of a loaded machine writes fewer, and
        the snapshot takes more turns instead of longer ones); once it is committed,
        compact the core's log and the WAL (outside any Ready)."""
        released = self._released
        if released:
            # Freeing is a few hundred ns per entry: 200,000 entries were 24-50 ms in one turn.
            del released[-1][-RELEASE_PER_TURN:]
            if not released[-1]:
                released.pop()
        job = self.local_snapshot
        if job is None:
            return
        started = time.perf_counter()
        ref = None
        mark = self.mark
        for _ in range(budget):
            ref = job.pump(1, mark)
            if ref is not None or time.perf_counter() - started >= seconds:
                break
        if ref is None:
            return
        if self._telemetry is not None:  # the pump that wrote the WAL marker (the file's fsync: its thread)
            self._telemetry.snapshot_commit.observe(time.perf_counter() - started)
        self.local_snapshot = None
        previous = self._core.compact(Snapshot(ref.meta, ref))
        if previous:
            self._released.append(previous)
        mark("snapshot.commit.log")  # the core's log prefix dropped (freed in later turns)
        removed = self.storage.compact(ref.meta.index)
        mark("snapshot.commit.wal")  # the covered segments handed to the reaper
        gc.freeze()  # the state that lived this long: out of the collector's way
        self._wal_at_snapshot = self.storage.wal_bytes
        self._log.info(f"snapshot {ref.meta.index}/{ref.meta.term} saved, "
                       f"{len(removed)} WAL segments removed")

    # -- a snapshot from the leader ------------------------------------------------------

    def receive_chunk(self, chunk: SnapshotChunk) -> None:
        try:
            self._on_chunk(chunk)
        except (SnapshotFileCorrupt, SnapshotTransferError) as error:
            # A bad transfer is the leader's or the network's fault, not our disk's:
            # drop it; the leader retries the snapshot later.
            if self.intake is not None:
                self.intake.abort()
            self.intake = None
            self._dropped.drop("snapshot-rejected", str(error))

    def _on_chunk(self, chunk: SnapshotChunk) -> None:
        core = self._core
        if chunk.offset == 0:
            if self.intake is not None:
                self.intake.abort()
            self._drop_pending_install(f"a new transfer from node {chunk.src}")
            worth_keeping = chunk.meta.index > core.log.committed
            self.intake = SnapshotIntake(chunk, self.storage.receive_snapshot(chunk.meta) if worth_keeping else None)
        intake = self.intake
        if intake is None or not intake.matches(chunk):
            self._dropped.drop("snapshot-chunk-out-of-order", f"chunk at {chunk.offset} from node {chunk.src}")
            return
        acked = intake.received
        intake.write(chunk)
        if not chunk.done:
            self._peers.acknowledge_chunk(chunk, intake.received)
            return
        self.intake = None
        ref = intake.finish()  # raises storage's SnapshotCorrupt on a bad transfer
        if ref is None:  # not worth keeping: the core answers the leader at once
            core.step(InstallSnapshot(chunk.src, self.id, chunk.term, Snapshot(chunk.meta, ref)))
            self._peers.acknowledge_chunk(chunk, intake.received)
            return
        # Build its state machine over the next turns (`build_install`) before the
        # core hears of it; the last acknowledgement waits until then.
        try:
            build = StateBuild(ref, self._chunk_bytes, self._replica.sm.limits)
        except BaseException:
            remove_unused(ref, self.storage.removal)
            raise
        self.pending_install = PendingInstall(chunk, build, acked, time.monotonic())
        self.installs.began()
        self._log.info(f"snapshot {chunk.meta.index}/{chunk.meta.term} from node {chunk.src} received "
                       f"({intake.received} bytes): building its state machine")

    @property
    def installing(self) -> bool:
        """Whether a received snapshot is being built, or a replaced state torn down."""
        return self.pending_install is not None or bool(self._replica.retired)

    def build_install(self) -> None:
        """A loop turn's share of building a received snapshot's state machine
        (node/snapshot_install.py); once built, it waits in `Replica.prepared`, the
        core is stepped with the InstallSnapshot and the last chunk acknowledged.
        Then the state it replaced is torn down, also a share per turn."""
        if self._replica.retired:
            tear_down(self._replica.retired, TURN_BUDGET_SECONDS)
        pending = self.pending_install
        if pending is None:
            return
        if pending.last.term < self._core.term:
            # A newer term: the core would refuse this InstallSnapshot; stop building it.
            self._drop_pending_install(f"term {self._core.term} began")
            return
        try:
            built = pending.pump(TURN_BUDGET_SECONDS)
        except (SnapshotStreamCorrupt, SnapshotFileCorrupt) as error:
            # The leader's stream is bad (or the file changed under us): drop it,
            # the leader retries later.
            self._drop_pending_install(str(error))
            self._dropped.drop("snapshot-rejected", str(error))
            return
        now = time.monotonic()
        chunk = pending.last
        if not built:
            if pending.keepalive_due(now):
                self._peers.acknowledge_chunk(chunk, pending.acked)
            return
        self.pending_install = None
        self.installs.finished(pending, now)
        self._replica.prepared = pending.build.prepared()
        self.unused_snapshot = pending.ref  # until the core installs it (`remove_unused`)
        self._core.step(InstallSnapshot(chunk.src, self.id, chunk.term, Snapshot(chunk.meta, pending.ref)))
        self._peers.acknowledge_chunk(chunk, chunk.offset + len(chunk.data))
        self._log.info(f"snapshot {chunk.meta.index}/{chunk.meta.term} built in {pending.build.steps} steps "
                       f"over {pending.turns} loop turns ({now - pending.started:.2f} s)")

    def _drop_pending_install(self, reason: str) -> None:
        pending = self.pending_install
        if pending is None:
            return
        self.pending_install = None
        pending.abort()
        remove_unused(pending.ref, self.storage.removal)
        self.installs.aborted += 1
        self._log.info(f"snapshot {pending.last.meta.index} from node {pending.last.src}: build dropped ({reason})")

    def remove_unused(self) -> None:
        """After `advance`: a received snapshot the core did not install must not
        linger, or the next recovery would set it aside as an orphan."""
        if self.unused_snapshot is not None:
            remove_unused(self.unused_snapshot, self.storage.removal)
            self.unused_snapshot = None
        self._replica.prepared = None  # a prepared state the core did not install

    def close(self) -> None:
        """Shutdown: stop the writer (after the batch it is writing: what is still
        queued was never acknowledged), abandon the snapshot being written or received."""
        if self.writer is not None:
            self.writer.close()
        if self.local_snapshot is not None:
            self.local_snapshot.abort()
        if self.intake is not None:
            self.intake.abort()
        self._drop_pending_install("shutting down")
