"""What can go wrong with the files under a node's data directory.

Every corruption error names the file and the byte offset where reading stopped, so
an operator can look at the bytes (``python -m node.storage inspect``) before deciding
whether to run ``repair``. These are fail-stop errors for the node: it must not start
on a log it cannot trust (never silently drop acknowledged data).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class StorageError(Exception):
    """Base of everything node.storage raises on purpose."""


class CorruptionError(StorageError):
    """The bytes on disk are not what we wrote. ``path`` and ``offset`` say where."""

    kind = "corrupt data"

    def __init__(self, path: Path | str, offset: int, detail: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.detail = detail
        super().__init__(f"{self.kind}: {self.path} at byte {offset}: {detail}")


class RecordCorrupt(CorruptionError):
    """A CRC mismatch or garbage before the tail of the log (not a torn final write)."""

    kind = "corrupt WAL record"


class SegmentMissing(CorruptionError):
    """A WAL segment is missing from the sequence, or the log has a gap in indexes."""

    kind = "missing WAL segment"


class ForeignSegment(CorruptionError):
    """A segment's header names another cluster, node, format version or position."""

    kind = "foreign WAL segment"


class SnapshotCorrupt(CorruptionError):
    """A snapshot file fails its checksum or its framing, or does not match its marker."""

    kind = "corrupt snapshot"


class SnapshotMissing(StorageError):
    """The WAL commits a snapshot whose file is not in the snapshot directory."""

    def __init__(self, path: Path | str, index: int, term: int) -> None:
        self.path = Path(path)
        super().__init__(
            f"missing snapshot: the WAL commits snapshot index={index} term={term} "
            f"but {self.path} does not exist"
        )


class DiskFault(StorageError):
    """A write, fsync, create or rename that durability rests on failed (ENOSPC,
    EIO, EDQUOT, EROFS, ...). Always fail-stop (docs/storage.md, "Disk faults"):
    the node must not acknowledge what it could not make durable, and after a
    failed fsync the kernel may already have dropped the dirty pages, so retrying
    would report success for data that is gone. write() and fsync() on an fd carry
    no file name: this error adds the path and byte offset."""

    def __init__(self, operation: str, path: Path | str, offset: int | None, error: OSError) -> None:
        self.operation = operation
        self.path = Path(path)
        self.offset = offset
        self.errno = error.errno
        name = errno.errorcode.get(error.errno or 0, "?")
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(
            f"disk fault: {operation} {self.path}{where} failed: {os.strerror(error.errno or 0)} ({name}). "
            "Fail-stop: nothing that was not durable was acknowledged; free space or replace the disk, "
            "then restart the node (recovery drops a torn WAL tail)")


class SnapshotTransferError(StorageError):
    """A received snapshot chunk arrived out of order or the transfer was misused."""


class DataDirLocked(StorageError):
    """Another process holds the data directory open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(f"data directory is in use by another process: {self.path}")


class InvalidAppend(StorageError):
    """The caller asked for something the log cannot represent (a bug in the caller)."""


class CompactionBeyondSnapshot(StorageError):
    """compact(index) was asked to drop entries no committed snapshot covers."""

    def __init__(self, index: int, snapshot_index: int) -> None:
        super().__init__(
            f"cannot compact the WAL through index {index}: the newest committed "
            f"snapshot only covers index {snapshot_index}"
        )
