"""Recovery leaves the entry batches a snapshot covers undecoded (records.CoveredEntries)
and still recovers exactly what decoding everything recovers."""
from __future__ import annotations

from pathlib import Path

import pytest

from node.raft.types import ConfState, Entry, HardState, SnapshotMeta
from node.storage import DataDir, StorageOptions, records, wal
from node.storage.datadir import RecoveredState
from node.storage.records import CoveredEntries

SMALL = StorageOptions(segment_bytes=4096)


def _entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, index, b"%d:" % index + b"x" * 30) for index in range(first, last + 1)]


def _recover(path: Path, monkeypatch: pytest.MonkeyPatch, *, skip: bool) -> tuple[RecoveredState, int]:
    """The recovered state, and how many entries recovery built."""
    built = [0]
    entry = records._entry

    def counted(*fields: object) -> Entry:
        built[0] += 1
        return entry(*fields)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(records, "_entry", counted)
        if not skip:
            patch.setattr(wal, "_covered_entries", lambda scans: None)
        storage, state = DataDir.open(path, "c", 1, SMALL)
        storage.close()
    return state, built[0]


def test_covers_only_batches_wholly_below_the_newest_marker_and_off_every_marker() -> None:
    covered = CoveredEntries(100, (40, 100))
    assert covered.covers(1, 39) and covered.covers(41, 59)  # 41..99
    assert not covered.covers(30, 11)  # 30..40 holds the entry a marker's term check reads
    assert not covered.covers(90, 11)  # 90..100 reaches the newest marker
    assert not covered.covers(101, 5)


def test_recovery_skips_covered_batches_and_recovers_what_decoding_all_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DataDir.open(tmp_path, "c", 1, SMALL)[0] as storage:
        for first in range(1, 200, 10):
            storage.append(_entries(first, first + 9), HardState(1, 1, first + 9))
        storage.save_snapshot(SnapshotMeta(95, 1, ConfState((1,))), [b"state at 95"])
        # A new leader overwrites from 150 (a truncation below the next snapshot)...
        storage.append(_entries(150, 170, term=2), HardState(2, 1, 160))
        storage.save_snapshot(SnapshotMeta(165, 2, ConfState((1,))), [b"state at 165"])
        storage.append(_entries(171, 180, term=2), HardState(2, 1, 175))
    skipped, built_skipping = _recover(tmp_path, monkeypatch, skip=True)
    everything, built_all = _recover(tmp_path, monkeypatch, skip=False)
    assert skipped.entries == everything.entries == _entries(166, 180, term=2)
    assert (skipped.hard_state, skipped.snapshot.meta) == (everything.hard_state, everything.snapshot.meta)
    assert built_all >= 200 and built_skipping < built_all / 2


def test_a_truncation_inside_a_covered_range_still_cuts_the_older_suffix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries 1..60 at term 1; a new leader rewrites 20..30 at term 2 and the log ends
    there; a snapshot at 25 (term 2) follows. The batch 20..24 is covered, and
    replaying it must still drop the old 31..60."""
    with DataDir.open(tmp_path, "c", 1, SMALL)[0] as storage:
        storage.append(_entries(1, 60), HardState(1, 1, 10))
        storage.append(_entries(20, 24, term=2), HardState(2, 1, 10))
        storage.append(_entries(25, 30, term=2), HardState(2, 1, 25))
        storage.save_snapshot(SnapshotMeta(25, 2, ConfState((1,))), [b"state at 25"])
    skipped, _ = _recover(tmp_path, monkeypatch, skip=True)
    everything, _ = _recover(tmp_path, monkeypatch, skip=False)
    assert skipped.entries == everything.entries == _entries(26, 30, term=2)
