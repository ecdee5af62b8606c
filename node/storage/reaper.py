"""Removing the files the store no longer needs (snapshots pruned, WAL segments a
committed snapshot covers), in the caller's thread or in a thread of their own.

Why a thread: unlink(2) of a file whose pages are cached frees every page before
it returns. On this machine a cached 1 GiB file took 348 ms wall (45 ms system
CPU) to unlink; at 5,000,000 keys the snapshot pruned at each commit is 2 GiB,
so the node's loop turn that committed a snapshot lasted up to 257 ms -- most of
an election timeout. A node (`StorageOptions.remove_in_background`) hands the
removals to a `Reaper` thread instead; os.unlink and fsync release the GIL, so
the loop goes on meanwhile.

Crash safety is unchanged: one thread removes the files in the order they were
handed over, each WAL segment's unlink made durable (directory fsync) before the
next, so the surviving segments are always a suffix (node/storage/wal.py
`compact`). A file a crash leaves behind is covered by the committed snapshot:
replay skips what it holds, and the next compaction or prune removes it.
A removal that fails (other than the file being gone already) is logged and left:
the file is garbage, never data the store still needs. After a failed in-order
removal no later in-order one runs in that directory (it would leave a gap in the
segments); the next start's first compaction removes them all.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

from .durable import sync_dir

log = logging.getLogger(__name__)


def remove_files(paths: Sequence[Path], in_order: bool) -> None:
    """Unlink `paths` (all in one directory) and make that durable: with `in_order`
    each unlink before the next one starts, otherwise with one directory fsync."""
    for path in paths:
        path.unlink(missing_ok=True)
        if in_order:
            sync_dir(path.parent)
    if paths and not in_order:
        sync_dir(paths[0].parent)


class Removal:
    """Removes at once, in the caller's thread (tools, tests, the default)."""

    def remove(self, paths: Sequence[Path], in_order: bool = False) -> None:
        remove_files(paths, in_order)

    def wait(self) -> None:
        """Until every removal handed over is done (nothing to wait for here)."""

    def close(self) -> None:
        pass


class Reaper(Removal):
    """Removes in a thread of its own (started at the first removal), first handed
    over first done. `wait` and `close` block until the queue is empty."""

    def __init__(self, name: str = "reaper") -> None:
        self._name = name
        self._queue: queue.Queue[tuple[tuple[Path, ...], bool] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.failures = 0  # removals that failed (logged), for tests and status
        #: directories where an in-order removal failed: no later one runs there
        self._stuck: set[Path] = set()

    def remove(self, paths: Sequence[Path], in_order: bool = False) -> None:
        if not paths:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._queue.put((tuple(paths), in_order))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                paths, in_order = job
                directory = paths[0].parent
                if in_order and directory in self._stuck:
                    continue  # an older file there is still in place: removing newer ones would leave a gap
                try:
                    remove_files(paths, in_order)
                except OSError as error:  # garbage stays; a restart's next compaction or prune tries again
                    self.failures += 1
                    if in_order:
                        self._stuck.add(directory)
                    log.warning("could not remove %s: %s", ", ".join(str(path) for path in paths), error)
            finally:
                self._queue.task_done()

    def wait(self) -> None:
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join()
        self._thread = None
