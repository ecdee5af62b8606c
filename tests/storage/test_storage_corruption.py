"""Damaged data directories: each kind of damage has one documented outcome
(docs/storage.md, "What recovery does with damage"), and every error names the file
and the byte offset."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from node.raft.types import Entry, HardState, SnapshotMeta
from node.storage import (
    DataDir,
    ForeignSegment,
    RecordCorrupt,
    SegmentMissing,
    SnapshotCorrupt,
    SnapshotMissing,
    StorageOptions,
    repair,
)
from node.storage.framing import scan_frames
from node.storage.records import RECORD_KINDS

OPTIONS = StorageOptions(segment_bytes=4096)
LAST = 200


def _entry(index: int) -> Entry:
    return Entry(1, index, b"entry %d " % index + b"x" * 60)


def _populate(path: Path, cluster: str = "c", node: int = 1) -> list[Path]:
    storage, _ = DataDir.open(path, cluster, node, OPTIONS)
    with storage:
        for index in range(1, LAST + 1):
            storage.append([_entry(index)], HardState(1, 1, index - 1))
    return sorted((path / "wal").glob("*.wal"))


def _open(path: Path, cluster: str = "c", node: int = 1):
    storage, state = DataDir.open(path, cluster, node, OPTIONS)
    storage.close()
    return state


def _record_offsets(segment: Path) -> list[int]:
    return [frame.offset for frame in scan_frames(segment.read_bytes(), is_last=False, valid_kinds=RECORD_KINDS).frames]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["middle segment", "last segment"])
def test_a_flipped_byte_mid_log_stops_recovery_naming_file_and_offset(tmp_path: Path, which: str) -> None:
    segments = _populate(tmp_path)
    victim = segments[1] if which == "middle segment" else segments[-1]
    offsets = _record_offsets(victim)
    _flip(victim, offsets[2] + 14)  # inside the third record's payload; records follow it
    with pytest.raises(RecordCorrupt) as caught:
        _open(tmp_path)
    assert caught.value.path == victim and caught.value.offset == offsets[2]
    assert f"{victim} at byte {offsets[2]}: crc mismatch" in str(caught.value)


def test_a_torn_final_record_is_dropped_with_a_warning_and_nothing_else_is(tmp_path: Path, caplog) -> None:
    last = _populate(tmp_path)[-1]
    offsets = _record_offsets(last)
    size = last.stat().st_size
    with last.open("r+b") as file:
        file.truncate(size - 5)  # the final HARD_STATE record loses its last 5 bytes
    with caplog.at_level(logging.WARNING):
        state = _open(tmp_path)
    dropped = size - 5 - offsets[-1]
    assert state.torn_tail is not None
    assert (state.torn_tail.path, state.torn_tail.offset, state.torn_tail.dropped) == (last, offsets[-1], dropped)
    assert f"dropped {dropped} bytes" in caplog.text and str(last) in caplog.text
    assert state.entries == [_entry(i) for i in range(1, LAST + 1)]
    assert state.hard_state == HardState(1, 1, LAST - 2)  # the torn one said LAST - 1
    assert last.stat().st_size == offsets[-1]
    assert _open(tmp_path).torn_tail is None


def test_a_truncated_segment_that_is_not_the_last_is_corruption(tmp_path: Path) -> None:
    victim = _populate(tmp_path)[1]
    final_record = _record_offsets(victim)[-1]
    with victim.open("r+b") as file:
        file.truncate(victim.stat().st_size - 5)
    with pytest.raises(RecordCorrupt, match=f"{victim} at byte {final_record}: "):
        _open(tmp_path)


def test_a_deleted_middle_segment_stops_recovery(tmp_path: Path) -> None:
    segments = _populate(tmp_path)
    segments[2].unlink()
    with pytest.raises(SegmentMissing, match=f"{segments[3]} at byte 0: segment seq 2 .* is missing"):
        _open(tmp_path)


def test_a_deleted_first_segment_is_a_gap_no_snapshot_covers(tmp_path: Path) -> None:
    segments = _populate(tmp_path)
    segments[0].unlink()
    with pytest.raises(SegmentMissing, match=f"{segments[1]} at byte \\d+: entries 1..\\d+ are missing"):
        _open(tmp_path)


@pytest.mark.parametrize(("cluster", "node", "says"), [("c", 2, "cluster='c' node=2"), ("other", 1, "cluster='other'")])
def test_a_segment_from_another_node_or_cluster_is_refused(tmp_path: Path, cluster: str, node: int, says: str) -> None:
    ours = _populate(tmp_path / "ours")
    theirs = _populate(tmp_path / "theirs", cluster, node)
    shutil.copyfile(theirs[1], ours[1])
    with pytest.raises(ForeignSegment, match=f"{ours[1]} at byte 0: header says {says}"):
        _open(tmp_path / "ours")


def test_a_segment_renamed_out_of_place_is_refused(tmp_path: Path) -> None:
    segments = _populate(tmp_path)
    wrong = segments[-1].with_name(f"{len(segments) - 1:016x}-{999:016x}.wal")
    segments[-1].rename(wrong)
    with pytest.raises(ForeignSegment, match="seq=.* expected"):
        _open(tmp_path)


def test_a_corrupt_committed_snapshot_stops_recovery(tmp_path: Path) -> None:
    storage, _ = DataDir.open(tmp_path, "c", 1, OPTIONS)
    with storage:
        storage.append([_entry(i) for i in range(1, 11)])
        ref = storage.save_snapshot(SnapshotMeta(10, 1), [b"the state machine" * 100])
    _flip(ref.path, ref.data_offset + 100)
    with pytest.raises(SnapshotCorrupt, match=f"{ref.path} at byte {ref.data_offset}: sha256"):
        _open(tmp_path)
    ref.path.unlink()
    with pytest.raises(SnapshotMissing, match=str(ref.path)):
        _open(tmp_path)


def test_an_emptied_wal_directory_with_snapshots_present_is_refused(tmp_path: Path) -> None:
    storage, _ = DataDir.open(tmp_path, "c", 1, OPTIONS)
    with storage:
        storage.append([_entry(1)])
        storage.save_snapshot(SnapshotMeta(1, 1), [b"x"])
    for segment in (tmp_path / "wal").glob("*.wal"):
        segment.unlink()
    with pytest.raises(SegmentMissing, match="no segments but snapshot files exist"):
        _open(tmp_path)


def test_repair_cuts_at_the_first_bad_record_and_keeps_the_rest_aside(tmp_path: Path) -> None:
    segments = _populate(tmp_path)
    offsets = _record_offsets(segments[1])
    _flip(segments[1], offsets[3] + 13)
    report = repair(tmp_path, "c", 1)
    assert report.truncated == segments[1] and report.offset == offsets[3]
    assert len(report.set_aside) == len(segments) - 2
    assert Path(str(segments[1]) + ".broken").exists()
    state = _open(tmp_path)
    assert state.entries == [_entry(i) for i in range(1, len(state.entries) + 1)]
    assert 0 < len(state.entries) < LAST
    assert repair(tmp_path, "c", 1).problem is None


def test_repair_sets_aside_everything_from_a_missing_segment_on(tmp_path: Path) -> None:
    segments = _populate(tmp_path)
    segments[2].unlink()
    report = repair(tmp_path, "c", 1)
    assert report.truncated is None and report.set_aside[0] == Path(str(segments[3]) + ".broken")
    assert _open(tmp_path).entries[0] == _entry(1)


def test_the_check_command_reports_what_a_node_would_start_from(tmp_path: Path, capsys) -> None:
    from node.storage.__main__ import main

    _populate(tmp_path)
    assert main(["check", str(tmp_path), "--cluster-id", "c", "--node-id", "1"]) == 0
    assert f"entries: 1..{LAST}" in capsys.readouterr().out
    assert main(["check", str(tmp_path), "--cluster-id", "c", "--node-id", "2"]) == 1
    assert "foreign WAL segment" in capsys.readouterr().err
