"""Durable storage for one node: a segmented write-ahead log, snapshot files, and
crash recovery. The imperative shell's disk; node/raft never imports it.

Start at ``DataDir.open``; docs/storage.md explains the formats, the durability
argument and what each kind of corruption does.
"""
from .datadir import DataDir, RecoveredState
from .errors import (
    CompactionBeyondSnapshot,
    CorruptionError,
    DataDirLocked,
    DiskFault,
    ForeignSegment,
    InvalidAppend,
    RecordCorrupt,
    SegmentMissing,
    SnapshotCorrupt,
    SnapshotMissing,
    SnapshotTransferError,
    StorageError,
)
from .options import CompactionPolicy, StorageOptions, SyncPolicy
from .repair import RepairReport, repair
from .snapshot_file import SnapshotReceiver, SnapshotRef, SnapshotWriter
from .wal import TornTailDropped

__all__ = [
    "CompactionBeyondSnapshot",
    "CompactionPolicy",
    "CorruptionError",
    "DataDir",
    "DataDirLocked",
    "DiskFault",
    "ForeignSegment",
    "InvalidAppend",
    "RecordCorrupt",
    "RecoveredState",
    "RepairReport",
    "SegmentMissing",
    "SnapshotCorrupt",
    "SnapshotMissing",
    "SnapshotReceiver",
    "SnapshotRef",
    "SnapshotTransferError",
    "SnapshotWriter",
    "StorageError",
    "StorageOptions",
    "SyncPolicy",
    "TornTailDropped",
    "repair",
]
