"""A node's data directory: the WAL and the snapshot files, recovered together.

Layout::

    <data_dir>/LOCK        flock'ed while a process has the directory open
    <data_dir>/wal/        <seq>-<first_index>.wal segments
    <data_dir>/snap/       <index>-<term>.snap files

A snapshot is committed in two steps, in this order (node/ready_handler.py, step 3):
the file is made durable under its final name, *then* its marker is appended to the
WAL. Recovery trusts only the newest snapshot the WAL has a marker for; a newer file
without one is what a crash between the two steps leaves, and is set aside.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Iterable, Sequence

from node.raft.types import Entry, HardState, Snapshot, SnapshotMeta

from .dir_lock import lock_data_dir
from .durable import ensure_dir, sync_dir
from .errors import SegmentMissing, SnapshotCorrupt, SnapshotMissing
from .options import StorageOptions, SyncPolicy
from .reaper import Reaper, Removal
from .records import SnapshotMarker
from .segment import Identity, list_segments
from .snapshot_file import SnapshotReceiver, SnapshotRef, SnapshotStore, SnapshotWriter, verify_snapshot
from .wal import TornTailDropped, WalRecovery, WriteAheadLog

log = logging.getLogger(__name__)

ORPHAN_SUFFIX = ".orphan"


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """Everything a restarting node needs: persist-before-answer state, the newest
    committed snapshot (``data`` is a SnapshotRef to stream into the state machine),
    and the log entries after it, contiguous."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: list[Entry]
    torn_tail: TornTailDropped | None
    orphaned_snapshots: tuple[Path, ...]

    @property
    def snapshot_ref(self) -> SnapshotRef | None:
        """``snapshot.data``, typed: read it with ``iter_data`` to restore the state machine."""
        if self.snapshot is None:
            return None
        assert isinstance(self.snapshot.data, SnapshotRef)
        return self.snapshot.data

    @property
    def first_index(self) -> int:
        return (self.snapshot.meta.index if self.snapshot else 0) + 1

    @property
    def last_index(self) -> int:
        return self.first_index - 1 + len(self.entries)


class DataDir:
    """The open data directory of node ``node_id`` in cluster ``cluster_id``."""

    def __init__(self, path: Path, lock_fd: int, wal: WriteAheadLog, snapshots: SnapshotStore,
                 options: StorageOptions, committed: SnapshotRef | None) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._wal = wal
        self._snapshots = snapshots
        self._options = options
        self._committed = committed
        self.removal = Reaper(f"reaper {path.name}") if options.remove_in_background else Removal()

    @classmethod
    def open(cls, path: Path | str, cluster_id: str, node_id: int,
             options: StorageOptions = StorageOptions()) -> tuple[DataDir, RecoveredState]:
        """Lock, recover and open ``path`` for appending (creating it if new).

        Raises a CorruptionError subclass (naming file and offset) for anything a
        restart must not paper over; see docs/storage.md for each case."""
        path = Path(path)
        ensure_dir(path)
        lock_fd = lock_data_dir(path)
        try:
            return cls._recover(path, lock_fd, Identity(cluster_id, node_id), options)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _recover(cls, path: Path, lock_fd: int, identity: Identity,
                 options: StorageOptions) -> tuple[DataDir, RecoveredState]:
        snapshots = SnapshotStore(path / "snap", identity.cluster_id)
        snapshots.remove_temp_files()
        wal_dir = path / "wal"
        ensure_dir(wal_dir)
        if not list_segments(wal_dir) and snapshots.files():
            raise SegmentMissing(wal_dir, 0, "the WAL directory has no segments but snapshot files exist")
        wal, recovered = WriteAheadLog.open(wal_dir, identity, options)
        try:
            committed = _load_committed(snapshots, recovered)
            orphans = _set_aside_uncommitted(snapshots, committed)
        except BaseException:
            wal.close()
            raise
        snapshot = Snapshot(committed.meta, committed) if committed else None
        state = RecoveredState(recovered.hard_state, snapshot, recovered.entries, recovered.torn_tail, orphans)
        return cls(path, lock_fd, wal, snapshots, options, committed), state

    # -- the log -----------------------------------------------------------------------

    @property
    def sync_policy(self) -> SyncPolicy:
        return self._options.sync

    def append(self, entries: Sequence[Entry], hard_state: HardState | None = None, *, sync: bool = True) -> None:
        """Ready step 4 (node/ready_handler.py): entries (overwriting from entries[0].index) then the hard
        state, durable on return when ``sync`` (pass Ready.must_sync)."""
        self._wal.append(entries, hard_state, sync=sync)

    def sync(self) -> None:
        """Make every append so far durable (after appends with ``sync=False``)."""
        self._wal.sync()

    @property
    def wal_bytes(self) -> int:
        return self._wal.size_bytes

    @property
    def wal_end(self) -> tuple[Path, int]:
        """The active WAL segment and its size (the end of the log on disk)."""
        return self._wal.active_segment

    # -- snapshots ---------------------------------------------------------------------

    @property
    def snapshot(self) -> SnapshotRef | None:
        """The newest committed snapshot."""
        return self._committed

    def snapshot_file(self, index: int) -> Path | None:
        """The snapshot file at log index `index` still in ``snap/`` (the committed one
        or an older one kept by ``keep_snapshots``), if any: what an operator's
        ``snapshot save`` reads, chunk by chunk (node/snapshot_reads.py)."""
        committed = self._committed
        if committed is not None and committed.meta.index == index:
            return committed.path
        floor = committed.meta.index if committed else 0
        return next((path for i, _, path in self._snapshots.files() if i == index <= floor), None)

    def begin_snapshot(self, meta: SnapshotMeta) -> SnapshotWriter:
        """Start streaming a local snapshot; ``commit()`` the writer, then pass the
        result to ``commit_snapshot``."""
        return self._snapshots.create(meta)

    def receive_snapshot(self, expected: SnapshotMeta | None = None) -> SnapshotReceiver:
        """Accept a leader's snapshot file in chunks; ``finish()`` verifies it."""
        return self._snapshots.receive(expected)

    def save_snapshot(self, meta: SnapshotMeta, chunks: Iterable[bytes]) -> SnapshotRef:
        """Write a whole snapshot from ``chunks`` and commit it."""
        ref = self._snapshots.save(meta, chunks)
        self.commit_snapshot(ref)
        return ref

    def commit_snapshot(self, ref: SnapshotRef) -> None:
        """Append the snapshot's WAL marker (durably: this is the commit point), then
        prune old snapshot files down to ``keep_snapshots``."""
        self._wal.append_snapshot(SnapshotMarker(ref.meta, ref.checksum))
        self._committed = ref
        self._snapshots.prune(self._options.keep_snapshots, ref.meta.index, self.removal)

    def compact(self, index: int) -> list[Path]:
        """Delete WAL segments wholly covered by the committed snapshot (<= index);
        with `remove_in_background`, soon after (`removal.wait()` until then)."""
        return self._wal.compact(index, self.removal)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self.removal.close()
        self._wal.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _load_committed(snapshots: SnapshotStore, recovered: WalRecovery) -> SnapshotRef | None:
    """The snapshot the newest WAL marker commits, fully verified."""
    marker = recovered.marker
    if marker is None:
        return None
    path = snapshots.path_for(marker.meta)
    if not path.exists():
        raise SnapshotMissing(path, marker.meta.index, marker.meta.term)
    ref = snapshots.open(path)
    if ref.meta != marker.meta or ref.checksum != marker.checksum:
        raise SnapshotCorrupt(path, 0, f"file is {ref.meta} sha256={ref.checksum.hex()[:16]}…, its WAL marker "
                              f"says {marker.meta} sha256={marker.checksum.hex()[:16]}…")
    verify_snapshot(ref)
    return ref


def _set_aside_uncommitted(snapshots: SnapshotStore, committed: SnapshotRef | None) -> tuple[Path, ...]:
    """Rename snapshot files newer than the committed one (a crash came between the
    file and its marker) to ``*.orphan``: never used, never silently deleted."""
    floor = committed.meta.index if committed else 0
    moved = []
    for index, _, path in snapshots.files():
        if index > floor or (index == floor and committed is not None and path != committed.path):
            target = path.with_name(path.name + ORPHAN_SUFFIX)
            os.replace(path, target)
            log.warning("snapshot %s has no WAL marker (crash before commit): renamed to %s", path, target.name)
            moved.append(target)
    if moved:
        sync_dir(snapshots.directory)
    return tuple(moved)
