"""Ready step 4 on a thread when the disk is slow: the WAL write and its
fdatasync off the node's loop.

With synchronous writes the loop waits in every fdatasync, and a slow one (the
disk busy writing back a snapshot: 45-118 ms measured beside a 500 MiB snapshot
write, docs/performance.md) is a turn in which a leader does not heartbeat. Here
the loop queues each Ready's write (`submit`, node/ready_handler.py's
`ReadyPorts.writes`) and goes on turning -- ticks, heartbeats, new proposals,
acknowledgements -- while one writer thread takes every write queued so far,
appends them in order and makes them durable with ONE fdatasync (group commit
across Readies), then hands them back. The loop runs each write's step 5 (the
messages that promise durability, the core's `persisted`) in `finish`, in
submission order, woken by a byte on a pipe its poller watches (and waits a few
ms for them first: node/actor.py's WRITE_WAIT_SECONDS).

Handing a write over and back costs two thread wake-ups (~50-100 us here), which
at one request in flight cost a third of the throughput. So while the disk is
quiet -- no snapshot being written or received, no slow fdatasync lately -- a
write with none in flight is done in `submit` itself, on the loop, exactly as a
synchronous write; the thread takes over while the disk is busy, when an
fdatasync could stall the loop.

`os.write` and `os.fdatasync` release the GIL, so the loop's Python runs while
the disk works. Writes end in the order they were queued, and nothing else
touches the WAL while any is queued: the disk calls `drain` first (a snapshot
install or commit, closing). A disk fault on the writer is fail-stop as before:
`finish` raises it on the loop, and the process exits with it.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Sequence

from node.raft import Entry, HardState, Ready

#: An fdatasync slower than this sends the writes to the thread ...
#: (10 ms at first: on this VM a few fdatasyncs in 15 s pass 10 ms even with a quiet
#: disk, which kept a third of the writes on the thread and cost 12-17% of put-16 and
#: put-64 throughput; beside another member's snapshot write they take 54-118 ms.
#: One under this bound, on the loop, keeps its turn well under the 100 ms stall bound.)
SLOW_FSYNC_SECONDS = 0.040
#: ... for this long (then a quiet disk gets inline writes again).
SLOW_HOLD_SECONDS = 2.0

#: append(entries, hard_state, sync=False) then sync(): the storage's two calls.
Append = Callable[[Sequence[Entry], HardState | None], None]


class WalWriter:
    """One writer thread; `submit` and `finish` on the loop's thread."""

    def __init__(self, append: Append, sync: Callable[[], None],
                 observe: Callable[[float, int], None] | None = None,
                 disk_busy: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`append` writes one Ready's entries and hard state without syncing; `sync`
        makes every write so far durable; `observe(seconds, entries)` gets each
        batch's write-and-sync time and entry count (the WAL metrics).

        `disk_busy()` says whether the disk has other writes under way (a snapshot
        being written or received): then, and for SLOW_HOLD_SECONDS after an
        fdatasync (on either thread) that took over SLOW_FSYNC_SECONDS, writes go to
        the thread; else
        a write with none in flight is done in `submit` itself. Handing a write to a
        thread and back costs ~50-100 us of wake-ups on this VM, which at one
        request in flight was 30% of put throughput."""
        self._append, self._sync, self._observe = append, sync, observe
        self._disk_busy, self._clock = disk_busy, clock
        self._slow_until = 0.0  # writes go to the thread until then
        self.inline_writes = 0  # writes done in `submit` (the disk was quiet)
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._queued: list[tuple[Ready, Callable[[], None]]] = []  # not yet taken by the writer
        self._ended: deque[Callable[[], None]] = deque()  # durable; step 5 not yet run
        self._in_flight = 0  # submitted, step 5 not yet run
        self._failure: BaseException | None = None
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.batches = 0  # fdatasyncs (or unsynced batches) done: for status and tests
        self.writes = 0  # Ready writes done
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    @property
    def wake_fd(self) -> int:
        """Readable when writes have ended: register it with the loop's poller."""
        return self._wake_r

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def due(self, polled: Container[object]) -> bool:
        """Whether the loop must call `finish` this turn: writes are in flight, or the
        wake fd is among what its poll found ready (`polled`). The thread wakes the
        loop after a write ended, so that byte may come after the `finish` that ran
        the write's step 5; left unread with nothing in flight, it kept the fd
        readable and the loop spun on it (a whole core) until the next write went
        through the thread."""
        return self._in_flight > 0 or self._wake_r in polled

    def submit(self, rd: Ready, done: Callable[[], None]) -> None:
        """Queue `rd`'s write; `done()` runs in `finish` once it is durable -- or
        write it now and run `done()` before returning, when nothing is in flight
        and the disk is quiet (see `__init__`)."""
        if not self._in_flight and self._failure is None and not self._closing and not self._disk_busy():
            now = self._clock()
            if now >= self._slow_until:
                self._write([rd])
                self.inline_writes += 1
                done()
                return
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise RuntimeError("the WAL writer is closed")
            self._queued.append((rd, done))
            self._in_flight += 1
            if len(self._queued) == 1:
                self._wanted.notify()

    def finish(self) -> int:
        """Run step 5 of every write that ended, in order; raise the writer's disk
        fault if it had one. Returns how many ended."""
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        ended = self._ended
        count = 0
        while ended:
            done = ended.popleft()
            self._in_flight -= 1
            count += 1
            done()
        if self._failure is not None:
            raise self._failure
        return count

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queued write to end (their step 5
        is `finish`'s); True if they all did. The loop waits a few ms for a fast
        fdatasync, so that a lone write is acknowledged in the turn that queued it,
        as with synchronous writes, and moves on when the disk is slow."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._ended) < self._in_flight and self._failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wanted.wait(left)
        return True

    def drain(self) -> None:
        """Wait until every queued write ended, and run their step 5: before anything
        else touches the WAL."""
        while self._in_flight:
            with self._lock:
                while not self._ended and self._failure is None:
                    self._wanted.wait(0.5)
            self.finish()

    def close(self) -> None:
        """Stop the thread after the batch it is writing; what is still queued is
        dropped (shutdown: never acknowledged, so nothing is lost that was promised)."""
        with self._lock:
            self._closing = True
            self._wanted.notify_all()
        self._thread.join(10.0)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _write(self, readies: list[Ready]) -> None:
        """Append each Ready's entries and hard state, then one fdatasync if any must
        sync (on the loop for one Ready, on the thread for a batch). A slow one keeps
        the next writes on the thread for SLOW_HOLD_SECONDS."""
        started = self._clock()
        sync = False
        entries = 0
        for rd in readies:
            if rd.entries or rd.hard_state is not None:
                self._append(rd.entries, rd.hard_state)
                entries += len(rd.entries)
            sync = sync or rd.must_sync
        if sync:
            self._sync()
            took = self._clock() - started
            if took > SLOW_FSYNC_SECONDS:
                self._slow_until = self._clock() + SLOW_HOLD_SECONDS
            if self._observe is not None:
                self._observe(took, entries)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        lock, wanted = self._lock, self._wanted
        while True:
            with lock:
                while not self._queued and not self._closing:
                    wanted.wait()
                if self._closing:
                    return
                batch, self._queued = self._queued, []
            try:
                self._write([rd for rd, _ in batch])
            except BaseException as exc:  # a DiskFault: fail-stop, on the loop
                with lock:
                    self._failure = exc
                    self._closing = True
                    wanted.notify_all()
                self._wake()
                return
            with lock:
                self._ended.extend(done for _, done in batch)
                self.batches += 1
                self.writes += len(batch)
                wanted.notify_all()
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the loop is already due to wake
