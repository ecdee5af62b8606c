"""The active WAL segment's preallocated space (node/storage/wal.py `_preallocate`):
writes go into zeroed space after the data, a crash leaves those zeros behind and
recovery takes them for what they are (not a torn record, nothing dropped or
reported), closed segments are cut to their data, and a disk that cannot give the
space fail-stops the log like a failed write while a file system that cannot
preallocate at all just goes without."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from node.raft.types import Entry, HardState
from node.storage import DiskFault, StorageOptions
from node.storage import wal as wal_module
from node.storage.framing import CleanEnd, scan_frames
from node.storage.records import RECORD_KINDS
from node.storage.segment import Identity
from node.storage.wal import PREALLOCATE_BYTES, WriteAheadLog

ID = Identity("c", 1)
BIG = StorageOptions(segment_bytes=64 * 1024 * 1024)
SMALL = StorageOptions(segment_bytes=8192)


def _entries(first: int, last: int, size: int = 60) -> list[Entry]:
    return [Entry(1, index, b"%d:" % index + b"x" * size) for index in range(first, last + 1)]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def _crash(log: WriteAheadLog) -> None:
    """The process dies: its descriptor goes, nothing is flushed, cut or synced."""
    os.close(log._fd)  # type: ignore[arg-type]
    log._fd = None


def _data_end(path: Path, is_last: bool = True) -> int:
    return scan_frames(path.read_bytes(), is_last=is_last, valid_kinds=RECORD_KINDS).valid_end


def test_appends_land_in_preallocated_space_and_a_crash_loses_nothing(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    wal.append(_entries(1, 50), HardState(1, 1, 50))
    [segment] = _segments(tmp_path)
    data_end = _data_end(segment)
    assert wal.size_bytes == data_end  # the log's size is its data, not the file's
    assert segment.stat().st_size == data_end + (PREALLOCATE_BYTES - (data_end - _preamble(tmp_path)))
    assert segment.read_bytes()[data_end:] == bytes(segment.stat().st_size - data_end)
    # A crash: the next start finds the zeros, reports no torn tail, and writes its
    # next record at the end of the data, not after the zeros.
    _crash(wal)
    again, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.torn_tail is None and recovered.entries == _entries(1, 50)
    assert again.size_bytes == data_end
    again.append(_entries(51, 60), HardState(1, 1, 60))
    _crash(again)
    third, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.entries == _entries(1, 60) and recovered.torn_tail is None
    third.close()


def _preamble(directory: Path) -> int:
    """Bytes of a fresh segment (header, hard state): what the first preallocation follows."""
    other = directory.parent / (directory.name + "-fresh")
    log, _ = WriteAheadLog.open(other, ID, BIG)
    log.close()
    return _segments(other)[0].stat().st_size


def test_close_cuts_the_file_to_its_data(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    wal.append(_entries(1, 5), HardState(1, 1, 5))
    wal.close()
    [segment] = _segments(tmp_path)
    assert segment.stat().st_size == _data_end(segment) == wal.size_bytes
    assert isinstance(scan_frames(segment.read_bytes(), is_last=False, valid_kinds=RECORD_KINDS).end, CleanEnd)


def test_a_segment_that_stops_being_the_last_is_cut_to_its_data(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, ID, SMALL)
    for first in range(1, 400, 10):
        wal.append(_entries(first, first + 9), HardState(1, 1, first + 9))
    segments = _segments(tmp_path)
    assert len(segments) > 3
    for closed in segments[:-1]:  # every byte a valid record, read as a middle segment must be
        assert isinstance(scan_frames(closed.read_bytes(), is_last=False, valid_kinds=RECORD_KINDS).end, CleanEnd)
    assert wal.size_bytes == sum(s.stat().st_size for s in segments[:-1]) + _data_end(segments[-1])
    _crash(wal)
    again, recovered = WriteAheadLog.open(tmp_path, ID, SMALL)
    assert recovered.entries == _entries(1, 400) and recovered.torn_tail is None
    again.close()


def test_a_torn_record_before_the_preallocated_zeros_is_still_a_torn_tail(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    wal.append(_entries(1, 10), HardState(1, 1, 10))
    [segment] = _segments(tmp_path)
    good_end = _data_end(segment)
    wal.append(_entries(11, 11), None)
    torn_at = _data_end(segment)
    with segment.open("r+b") as file:  # the last record half written: its second half never landed
        file.seek(good_end + (torn_at - good_end) // 2)
        file.write(bytes(torn_at - good_end))
    _crash(wal)
    again, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.entries == _entries(1, 10)
    assert recovered.torn_tail is not None and recovered.torn_tail.offset == good_end
    again.append(_entries(11, 12), HardState(1, 1, 12))
    again.close()
    third, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.entries == _entries(1, 12)
    third.close()


def test_no_space_for_the_preallocation_fail_stops_the_log_naming_segment_and_offset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    wal.append(_entries(1, 5), HardState(1, 1, 5))
    size = wal.size_bytes

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(wal_module.os, "posix_fallocate", full)
    with pytest.raises(DiskFault) as fault:
        wal.append(_entries(6, 6000, size=200), HardState(1, 1, 6000))  # past what was preallocated
    [segment] = _segments(tmp_path)
    assert "preallocation of" in str(fault.value) and str(segment) in str(fault.value)
    assert f"at byte {size}" in str(fault.value) and "ENOSPC" in str(fault.value)
    with pytest.raises(DiskFault):
        wal.append(_entries(6, 6), None)  # fail-stop: nothing more is taken
    assert wal.size_bytes == size
    monkeypatch.undo()
    wal.close()  # after a fault: closes, cuts and syncs nothing
    again, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.entries == _entries(1, 5) and recovered.torn_tail is None
    again.close()


def test_a_file_system_that_cannot_preallocate_is_written_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unsupported(fd: int, offset: int, length: int) -> None:
        calls.append(offset)
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(wal_module.os, "posix_fallocate", unsupported)
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    for first in range(1, 100, 10):
        wal.append(_entries(first, first + 9), HardState(1, 1, first + 9))
    [segment] = _segments(tmp_path)
    assert len(calls) == 1  # asked once, then never again
    assert segment.stat().st_size == _data_end(segment) == wal.size_bytes
    wal.close()
    again, recovered = WriteAheadLog.open(tmp_path, ID, BIG)
    assert recovered.entries == _entries(1, 100)
    again.close()


def test_zeros_left_by_a_run_with_larger_segments_are_cut_when_the_segment_closes(tmp_path: Path) -> None:
    """A restart with a smaller segment_bytes finds the active segment preallocated past
    it: the rotation must still leave the closed segment ending at its data."""
    wal, _ = WriteAheadLog.open(tmp_path, ID, BIG)
    wal.append(_entries(1, 5), HardState(1, 1, 5))  # preallocates 256 KiB
    _crash(wal)
    again, _ = WriteAheadLog.open(tmp_path, ID, SMALL)
    for first in range(6, 300, 10):
        again.append(_entries(first, first + 9), HardState(1, 1, first + 9))
    segments = _segments(tmp_path)
    assert len(segments) > 1
    for closed in segments[:-1]:
        assert isinstance(scan_frames(closed.read_bytes(), is_last=False, valid_kinds=RECORD_KINDS).end, CleanEnd)
    again.close()
    third, recovered = WriteAheadLog.open(tmp_path, ID, SMALL)
    assert recovered.entries == _entries(1, 305)
    third.close()
