"""The data directory's LOCK file: one process at a time may open a data directory.

Both the node (`DataDir.open`) and the operator's `repair` take it, so a repair
can never cut the WAL under a running node. An `flock` dies with its process, so
a SIGKILLed node leaves no stale lock behind.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import DataDirLocked


def lock_data_dir(path: Path) -> int:
    """Take `path`/LOCK without waiting; returns the file descriptor that holds it
    (close it to release). Raises DataDirLocked if another process holds it."""
    fd = os.open(path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(path) from None
    return fd
