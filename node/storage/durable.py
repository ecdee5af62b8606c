"""The few filesystem operations durability rests on, in one place.

POSIX makes a write durable with fsync of the file; a create, rename or unlink is only
durable once the *directory* is fsynced too. Every function here says which it does.

Disk faults: an OSError from write() or fsync() on an fd names no file, so every
function here that takes an fd also takes the path (and the offset written at) and
raises DiskFault naming them (docs/storage.md: such faults are fail-stop).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFault

#: fdatasync skips flushing metadata such as mtime, but still flushes a size change,
#: which is all an appended log needs. Not every platform has it.
_datasync = getattr(os, "fdatasync", os.fsync)


@contextmanager
def disk_fault(operation: str, path: Path, offset: int | None = None) -> Iterator[None]:
    """Turn an OSError of `operation` on `path` into a DiskFault naming both."""
    try:
        yield
    except DiskFault:
        raise
    except OSError as error:
        raise DiskFault(operation, path, offset, error) from error


def write_all(fd: int, data: bytes | memoryview, path: Path, offset: int) -> None:
    """os.write may write less than asked (signals, quotas): loop until done.
    `path` and `offset` (where `data` starts in the file) name a failure.
    (try/except, not `disk_fault`: this is every WAL write's path.)"""
    view = data
    done = 0
    while True:
        try:
            written = os.write(fd, view)
        except OSError as error:
            raise DiskFault(f"write of {len(view)} bytes to", path, offset + done, error) from error
        if written == len(view):
            return
        view = memoryview(view)[written:]
        done += written


def sync_data(fd: int, path: Path) -> None:
    try:
        _datasync(fd)
    except OSError as error:
        raise DiskFault("fsync of", path, None, error) from error


def sync_dir(path: Path) -> None:
    """Make creates, renames and unlinks inside ``path`` durable."""
    with disk_fault("fsync of the directory", path):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """Atomically move a fully written and fsynced ``tmp`` into place, then make the
    rename itself durable. After a crash either the old name set or the new one is
    visible, never a half-written ``final``."""
    with disk_fault(f"rename of {tmp} to", final):
        os.replace(tmp, final)
    sync_dir(final.parent)


def truncate_durably(path: Path, size: int) -> None:
    with disk_fault(f"truncation to {size} bytes of", path):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make its entry in the parent durable."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    sync_dir(path.parent)
