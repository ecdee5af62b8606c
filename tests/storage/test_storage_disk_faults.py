"""Disk faults are fail-stop (docs/storage.md, "Disk faults"): a failed write or
fsync raises DiskFault naming the file and offset, the log refuses everything
after it, nothing it did not make durable is reported as appended, and recovery
(the restart after the fault) drops the torn tail and keeps every earlier append.

The faults are injected by replacing the os calls node/storage/durable.py makes
(no mounts: tests/storage/test_storage_disk_full.py fills a real tmpfs)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from node.raft.types import ConfState, Entry, HardState, SnapshotMeta
from node.storage import DataDir, DiskFault, StorageOptions
from node.storage import __main__ as storage_cli
from node.storage import durable

SMALL = StorageOptions(segment_bytes=4096)


def _entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, index, b"%d:" % index + b"x" * 40) for index in range(first, last + 1)]


def _open(path: Path) -> tuple[DataDir, list[Entry]]:
    storage, state = DataDir.open(path, "c", 1, SMALL)
    return storage, state.entries


def _half_then_fail(code: int):  # an os.write that writes part of the buffer, then fails
    real = os.write
    calls = {"n": 0}

    def write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1 and len(data) > 1:
            return real(fd, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))
    return write


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_wal_write_names_the_segment_and_offset_and_stops_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    storage, _ = _open(tmp_path)
    storage.append(_entries(1, 5), HardState(1, 1, 5))
    segment, size = storage.wal_end
    monkeypatch.setattr(durable.os, "write", _half_then_fail(code))
    with pytest.raises(DiskFault) as fault:
        storage.append(_entries(6, 8), None)
    message = str(fault.value)
    assert str(segment) in message and f"at byte {fault.value.offset}" in message
    assert fault.value.path == segment and fault.value.offset is not None and fault.value.offset > size
    assert errno.errorcode[code] in message and fault.value.errno == code
    monkeypatch.undo()
    # The log is poisoned: a later append (which would land after a partial
    # record) raises the same fault, and close does not fsync what failed.
    with pytest.raises(DiskFault):
        storage.append(_entries(6, 6), None)
    storage.close()

    storage, entries = _open(tmp_path)  # the restart: the torn tail is dropped
    storage.close()
    assert entries == _entries(1, 5)
    assert segment.stat().st_size == size
    assert storage_cli.main(["check", str(tmp_path), "--cluster-id", "c", "--node-id", "1"]) == 0


def test_a_failed_fsync_is_a_disk_fault_naming_the_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _ = _open(tmp_path)
    storage.append(_entries(1, 3), HardState(1, 1, 3))
    segment, _size = storage.wal_end

    def eio(_fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(durable, "_datasync", eio)
    with pytest.raises(DiskFault) as fault:
        storage.append(_entries(4, 4), None)
    assert fault.value.operation.startswith("fsync") and fault.value.path == segment
    assert "Input/output error (EIO)" in str(fault.value)
    # A retried fsync could "succeed" after the kernel dropped the pages: never retried.
    monkeypatch.undo()
    with pytest.raises(DiskFault):
        storage.append(_entries(4, 4), None)
    storage.close()
    storage, entries = _open(tmp_path)
    storage.close()
    assert entries[:3] == _entries(1, 3)  # what was acknowledged; entry 4 may or may not be there


def test_a_segment_that_cannot_be_created_is_a_disk_fault_and_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _ = _open(tmp_path)
    storage.append(_entries(1, 150), HardState(1, 1, 150))  # past segment_bytes: the next append rotates
    monkeypatch.setattr(durable.os, "write", _half_then_fail(errno.ENOSPC))
    with pytest.raises(DiskFault) as fault:
        storage.append(_entries(151, 151), None)
    assert fault.value.path.name.endswith(".wal.tmp")
    monkeypatch.undo()
    assert list(tmp_path.rglob("*.wal.tmp")) == []
    storage.close()
    storage, entries = _open(tmp_path)
    storage.close()
    assert entries == _entries(1, 150)


def test_a_snapshot_that_cannot_be_written_is_a_disk_fault_naming_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _ = _open(tmp_path)
    storage.append(_entries(1, 3), HardState(1, 1, 3))
    writer = storage.begin_snapshot(SnapshotMeta(3, 1, ConfState((1,))))
    writer.write(b"state" * 100)

    def eio(_fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, "fsync", eio)
    with pytest.raises(DiskFault) as fault:
        writer.commit()
    monkeypatch.undo()
    assert fault.value.path.name.endswith(".tmp") and "snap" in fault.value.path.name
    assert "flush and fsync of" in str(fault.value)
    writer.abort()
    storage.close()
    storage, entries = _open(tmp_path)
    storage.close()
    assert entries == _entries(1, 3) and storage.snapshot is None


def test_a_short_write_is_finished_and_a_failure_after_it_names_its_offset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write may write less than asked: write_all writes the rest; a failure in a
    later part names the offset that part starts at."""
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    real_write = os.write
    calls: list[int] = []

    def short(fd_: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd_, bytes(data)[:3])

    try:
        monkeypatch.setattr(durable.os, "write", short)
        durable.write_all(fd, b"0123456789", path, 100)
        assert calls == [10, 7, 4, 1] and path.read_bytes() == b"0123456789"

        def fails_later(fd_: int, data: bytes | memoryview) -> int:
            if len(data) < 10:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd_, bytes(data)[:4])

        monkeypatch.setattr(durable.os, "write", fails_later)
        with pytest.raises(DiskFault) as caught:
            durable.write_all(fd, b"abcdefghij", path, 10)
        assert caught.value.offset == 14 and "write of 6 bytes to" in str(caught.value)
    finally:
        os.close(fd)
