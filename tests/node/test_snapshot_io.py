"""A local snapshot's file work on its own thread (node/snapshot_io.py): the loop
never waits for the disk, a slow disk only slows the stream (at most MAX_QUEUED
chunks wait), the committed file is the same as a synchronous write's, and a
disk fault reaches the loop."""
from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from node.raft import ConfState, SnapshotMeta
from node.snapshot_io import SnapshotFileWork
from node.snapshot_transfer import LocalSnapshot, unframe_chunks
from node.storage import DataDir, DiskFault, StorageOptions
from node.storage.snapshot_file import SnapshotWriter

pytestmark = pytest.mark.timeout(60)

META = SnapshotMeta(7, 1, ConfState((1,)))
CHUNKS = [bytes([k]) * 1000 for k in range(40)]


def pump_until_committed(job: LocalSnapshot, turns: int = 10_000) -> tuple[object, int]:
    for turn in range(turns):
        ref = job.pump(4)
        if ref is not None:
            return ref, turn
        time.sleep(0.001)
    raise AssertionError("the snapshot was never committed")


def test_the_file_written_on_the_thread_is_committed_whole(tmp_path: Path) -> None:
    storage, _ = DataDir.open(tmp_path, "c1", 1, StorageOptions())
    with storage:
        drained: list[bool] = []
        job = LocalSnapshot(storage, META, iter(CHUNKS), before_commit=lambda: drained.append(True))
        ref, _ = pump_until_committed(job)
        assert drained == [True], "the WAL writes were not drained before the marker"
        assert storage.snapshot is not None and storage.snapshot.meta == META
        with storage.snapshot.path.open("rb") as f:
            f.seek(storage.snapshot.data_offset)
            data = f.read(storage.snapshot.data_length)
        assert list(unframe_chunks([data])) == CHUNKS


def test_a_slow_disk_holds_at_most_max_queued_chunks_and_never_the_loop(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_write = SnapshotWriter.write

    def stuck_write(self: SnapshotWriter, chunk: bytes) -> None:
        assert gate.wait(30)
        real_write(self, chunk)

    monkeypatch.setattr(SnapshotWriter, "write", stuck_write)
    storage, _ = DataDir.open(tmp_path, "c1", 1, StorageOptions())
    with storage:
        produced = iter(CHUNKS)
        taken: list[int] = []

        def counting() -> object:
            for chunk in produced:
                taken.append(len(chunk))
                yield chunk

        job = LocalSnapshot(storage, META, counting())
        for _ in range(20):  # the disk hangs: turns stay short, the queue stays bounded
            started = time.perf_counter()
            assert job.pump(4) is None
            assert time.perf_counter() - started < 0.5
        assert len(taken) <= 8 + 2, f"{len(taken)} chunks taken from the stream while the disk hung"
        gate.set()
        pump_until_committed(job)
        assert storage.snapshot is not None and storage.snapshot.meta == META


def test_a_disk_fault_on_the_thread_is_raised_on_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: SnapshotWriter, chunk: bytes) -> None:
        raise DiskFault("write of", tmp_path / "x.snap.tmp", 0, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(SnapshotWriter, "write", full)
    storage, _ = DataDir.open(tmp_path, "c1", 1, StorageOptions())
    with storage:
        job = LocalSnapshot(storage, META, iter(CHUNKS))
        with pytest.raises(DiskFault, match="No space left"):
            for _ in range(1000):
                job.pump(4)
                time.sleep(0.001)
        job.abort()
        assert storage.snapshot is None
        assert not list(storage.path.rglob("*.tmp")), "the aborted snapshot's temporary file was left behind"


def test_abort_stops_the_thread_and_removes_the_temporary_file(tmp_path: Path) -> None:
    storage, _ = DataDir.open(tmp_path, "c1", 1, StorageOptions())
    with storage:
        work = SnapshotFileWork(storage.begin_snapshot(META))
        work.write(b"x" * 100)
        work.abort()
        assert not list(storage.path.rglob("*.tmp"))
        assert work.result() is None
