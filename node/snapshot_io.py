"""A local snapshot file's writes on their own thread.

The loop produces the snapshot's chunks (CPU: the state machine's stream) and
hands each to this thread, which writes it, hashes it and starts its writeback;
at the end it writes the trailer, fsyncs, renames and fsyncs the directory. Those
are the calls that block on the disk: with three members writing snapshots at
once, one POSIX_FADV_DONTNEED (the writeback start) took up to 162 ms and a
chunk write up to 80 ms of wall time on this VM with ~1 ms of CPU
(docs/performance.md) -- a loop turn in which a leader does not heartbeat. The
loop never waits here: it stops producing while MAX_QUEUED chunks wait
(`room`), and polls `result` for the committed file on later turns.

A failure on the thread (a DiskFault: ENOSPC, EIO) is fail-stop as before: the
next `result` or `write` raises it on the loop.
"""
from __future__ import annotations

import threading
from collections import deque

from node.storage import SnapshotRef
from node.storage.snapshot_file import SnapshotWriter

#: Chunks queued for the thread at most (8 x 256 KiB by default: 2 MiB of memory).
MAX_QUEUED = 8

_COMMIT = object()


class SnapshotFileWork:
    """`write` chunks and `commit` on the loop; the file work on one thread."""

    def __init__(self, writer: SnapshotWriter, max_queued: int = MAX_QUEUED) -> None:
        self._writer = writer
        self._max_queued = max_queued
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._jobs: deque[object] = deque()
        self._ref: SnapshotRef | None = None
        self._failure: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="snapshot-file", daemon=True)
        self._thread.start()

    @property
    def room(self) -> bool:
        """Whether the loop may hand over another chunk now."""
        return len(self._jobs) < self._max_queued

    def write(self, chunk: bytes) -> None:
        self._raise_failure()
        with self._lock:
            self._jobs.append(chunk)
            self._wanted.notify()

    def commit(self) -> None:
        """After the last chunk: trailer, fsync, rename, directory fsync (`result`)."""
        self._raise_failure()
        with self._lock:
            self._jobs.append(_COMMIT)
            self._wanted.notify()

    def result(self) -> SnapshotRef | None:
        """The committed file once the thread is done, else None (raises its fault)."""
        self._raise_failure()
        return self._ref

    def wait(self, timeout: float) -> SnapshotRef | None:
        """`result`, waiting up to `timeout` seconds for it (tests, shutdown)."""
        with self._lock:
            if self._ref is None and self._failure is None:
                self._wanted.wait_for(lambda: self._ref is not None or self._failure is not None, timeout)
        return self.result()

    def abort(self) -> None:
        """Stop after the job under way and remove the temporary file (not a
        committed one: the caller drops that through its own removal)."""
        with self._lock:
            self._stopping = True
            self._jobs.clear()
            self._wanted.notify_all()
        self._thread.join(30.0)
        if self._ref is None:
            self._writer.abort()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        writer, lock, wanted, jobs = self._writer, self._lock, self._wanted, self._jobs
        while True:
            with lock:
                while not jobs and not self._stopping:
                    wanted.wait()
                if self._stopping:
                    return
                job = jobs[0]
            try:
                if job is _COMMIT:
                    ref = writer.commit()
                else:
                    assert isinstance(job, bytes)
                    writer.write(job)
                    ref = None
            except BaseException as exc:  # a DiskFault: raised on the loop
                with lock:
                    self._failure = exc
                    wanted.notify_all()
                return
            with lock:
                if jobs and jobs[0] is job:
                    jobs.popleft()
                if ref is not None:
                    self._ref = ref
                    wanted.notify_all()
                    return
