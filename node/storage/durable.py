"""The few filesystem operations durability rests on, in one place.

POSIX makes a write durable with fsync of the file; a create, rename or unlink is only
durable once the *directory* is fsynced too. Every function here says which it does.
"""
from __future__ import annotations

import os
from pathlib import Path

#: fdatasync skips flushing metadata such as mtime, but still flushes a size change,
#: which is all an appended log needs. Not every platform has it.
_datasync = getattr(os, "fdatasync", os.fsync)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write may write less than asked (signals, quotas): loop until done."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def sync_data(fd: int) -> None:
    _datasync(fd)


def sync_dir(path: Path) -> None:
    """Make creates, renames and unlinks inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """Atomically move a fully written and fsynced ``tmp`` into place, then make the
    rename itself durable. After a crash either the old name set or the new one is
    visible, never a half-written ``final``."""
    os.replace(tmp, final)
    sync_dir(final.parent)


def unlink_durably(path: Path) -> None:
    """Remove ``path`` and fsync its directory, so removals done one after another
    become durable in that order (a crash never resurrects an earlier one alone)."""
    path.unlink()
    sync_dir(path.parent)


def truncate_durably(path: Path, size: int) -> None:
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
