"""The WAL writer thread (node/wal_writer.py): writes end in order, the loop never
waits for a slow fdatasync, writes queued meanwhile share one, a disk fault reaches
the loop, and `drain` leaves nothing in flight."""
from __future__ import annotations

import errno
import select
import threading
from collections.abc import Sequence

import pytest

from node.raft import Entry, HardState, Ready
from node.storage import DiskFault
from node.wal_writer import WalWriter

pytestmark = pytest.mark.timeout(30)


class SlowDisk:
    """Records appends and syncs; a sync waits for `release` while `hold` is set."""

    def __init__(self) -> None:
        self.appended: list[int] = []
        self.synced_at: list[int] = []  # len(appended) at each sync
        self.hold = threading.Event()
        self.release = threading.Event()
        self.in_sync = threading.Event()
        self.fail: BaseException | None = None

    def append(self, entries: Sequence[Entry], hard_state: HardState | None) -> None:
        if self.fail is not None:
            raise self.fail
        self.appended.extend(e.index for e in entries)

    def sync(self) -> None:
        if self.hold.is_set():
            self.in_sync.set()
            assert self.release.wait(10)
        self.synced_at.append(len(self.appended))


def ready(*indexes: int) -> Ready:
    return Ready(entries=[Entry(1, i) for i in indexes], must_sync=True)


def wait_readable(fd: int) -> None:
    readable, _, _ = select.select([fd], [], [], 10)
    assert readable, "the writer never woke the loop"


def test_the_loop_goes_on_while_a_sync_is_slow_and_the_writes_queued_meanwhile_share_one() -> None:
    disk = SlowDisk()
    writer = WalWriter(disk.append, disk.sync)
    ended: list[int] = []
    try:
        disk.hold.set()
        writer.submit(ready(1), lambda: ended.append(1))
        assert disk.in_sync.wait(10)
        for i in (2, 3, 4):  # the loop keeps submitting while the first fdatasync hangs
            writer.submit(ready(i), lambda i=i: ended.append(i))
        assert writer.finish() == 0 and ended == [] and writer.in_flight == 4
        disk.hold.clear()
        disk.release.set()
        writer.drain()
        assert ended == [1, 2, 3, 4], "step 5 ran out of submission order"
        assert disk.synced_at == [1, 4], "the three writes queued during the slow sync did not share one"
        assert writer.in_flight == 0 and writer.batches == 2 and writer.writes == 4
    finally:
        writer.close()


def test_an_ended_write_wakes_the_loop_and_finish_runs_its_step_5() -> None:
    disk = SlowDisk()
    writer = WalWriter(disk.append, disk.sync)
    ended: list[str] = []
    try:
        writer.submit(Ready(hard_state=HardState(2, 1, 0), must_sync=True), lambda: ended.append("hs"))
        wait_readable(writer.wake_fd)
        assert writer.finish() == 1 and ended == ["hs"]
        # An acknowledgement-only Ready writes nothing and needs no sync, but still queues.
        writer.submit(Ready(), lambda: ended.append("ack"))
        wait_readable(writer.wake_fd)
        assert writer.finish() == 1 and ended == ["hs", "ack"]
        assert disk.synced_at == [0]
    finally:
        writer.close()


def test_a_wake_up_that_comes_after_its_write_was_finished_is_still_read() -> None:
    """The thread ends a write, then wakes the loop; the loop may already have run
    that write's step 5 (`wait` saw it end). The late byte must still be read, or
    the loop's poll returns at once forever: `due` says so from what the poll found."""
    disk = SlowDisk()
    writer = WalWriter(disk.append, disk.sync)
    go = threading.Event()
    wake = writer._wake
    writer._wake = lambda: (go.wait(10), wake())[1]  # type: ignore[method-assign]
    ended: list[int] = []
    try:
        writer.submit(ready(1), lambda: ended.append(1))
        assert writer.wait(10)
        assert writer.finish() == 1 and ended == [1] and writer.in_flight == 0
        assert not writer.due({})
        go.set()  # now the byte
        wait_readable(writer.wake_fd)
        assert writer.due({writer.wake_fd: select.POLLIN})
        assert writer.finish() == 0
        readable, _, _ = select.select([writer.wake_fd], [], [], 0)
        assert not readable, "the wake-up byte was left in the pipe"
    finally:
        go.set()
        writer.close()


def test_a_disk_fault_on_the_writer_is_raised_on_the_loop_and_nothing_is_acknowledged() -> None:
    disk = SlowDisk()
    disk.fail = DiskFault("write of 10 bytes to", "wal/0001.seg", 4096, OSError(errno.ENOSPC, "No space left on device"))
    writer = WalWriter(disk.append, disk.sync)
    ended: list[int] = []
    try:
        writer.submit(ready(1), lambda: ended.append(1))
        with pytest.raises(DiskFault, match="No space left"):
            writer.drain()
        assert ended == []
        with pytest.raises(DiskFault):
            writer.submit(ready(2), lambda: ended.append(2))
    finally:
        writer.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_disk_is_written_inline_and_a_slow_fdatasync_sends_writes_to_the_thread() -> None:
    """No write in flight and nothing else on the disk: `submit` writes and runs
    step 5 itself (no thread hand-off). A busy disk, or an fdatasync over
    SLOW_FSYNC_SECONDS, sends the writes to the thread for SLOW_HOLD_SECONDS."""
    from node import wal_writer
    disk, clock = SlowDisk(), Clock()
    busy = [False]
    slow = [0.0]

    def sync() -> None:
        clock.now += slow[0]
        disk.sync()

    writer = WalWriter(disk.append, sync, disk_busy=lambda: busy[0], clock=clock)
    ended: list[int] = []
    try:
        writer.submit(ready(1), lambda: ended.append(1))
        assert ended == [1] and writer.inline_writes == 1 and writer.in_flight == 0
        busy[0] = True  # a snapshot is being written: the thread takes the write
        writer.submit(ready(2), lambda: ended.append(2))
        writer.drain()
        assert ended == [1, 2] and writer.inline_writes == 1 and writer.writes == 1
        busy[0] = False
        slow[0] = wal_writer.SLOW_FSYNC_SECONDS * 2  # this inline fdatasync is slow
        writer.submit(ready(3), lambda: ended.append(3))
        assert ended == [1, 2, 3] and writer.inline_writes == 2
        slow[0] = 0.0
        writer.submit(ready(4), lambda: ended.append(4))
        writer.drain()
        assert ended == [1, 2, 3, 4] and writer.inline_writes == 2 and writer.writes == 2
        clock.now += wal_writer.SLOW_HOLD_SECONDS
        writer.submit(ready(5), lambda: ended.append(5))
        assert ended == [1, 2, 3, 4, 5] and writer.inline_writes == 3
        assert disk.appended == [1, 2, 3, 4, 5]
    finally:
        writer.close()


def test_a_slow_fdatasync_on_the_thread_keeps_the_writes_there() -> None:
    """The disk stopped being busy, but the thread's last fdatasync was slow: the
    next write still goes to the thread (the hold), not onto the loop."""
    import time as real_time

    from node import wal_writer
    disk = SlowDisk()
    busy = [True]

    def slow_sync() -> None:
        real_time.sleep(wal_writer.SLOW_FSYNC_SECONDS * 2)
        disk.sync()

    writer = WalWriter(disk.append, slow_sync, disk_busy=lambda: busy[0])
    ended: list[int] = []
    try:
        writer.submit(ready(1), lambda: ended.append(1))
        writer.drain()
        busy[0] = False
        writer.submit(ready(2), lambda: ended.append(2))
        assert ended == [1] and writer.in_flight == 1, "a write went onto the loop right after a slow fdatasync"
        writer.drain()
        assert ended == [1, 2] and writer.inline_writes == 0
    finally:
        writer.close()
