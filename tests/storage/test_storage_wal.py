"""The WAL through DataDir: appends, overwrites, rotation, hard state, snapshots,
compaction, and a model-based property test of all of them across reopens."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.raft.types import ConfState, Entry, HardState, SnapshotMeta
from node.storage import (
    CompactionBeyondSnapshot,
    DataDir,
    DataDirLocked,
    InvalidAppend,
    StorageOptions,
    SyncPolicy,
)
from node.storage.framing import scan_frames
from node.storage.records import RECORD_KINDS
from storage_workload import Model, perform, recovered_view, workload

SMALL = StorageOptions(segment_bytes=4096)


def _entries(first: int, last: int, term: int = 1, size: int = 20) -> list[Entry]:
    return [Entry(term, index, b"%d:" % index + b"x" * size) for index in range(first, last + 1)]


def _on_disk(path: Path) -> int:
    """The WAL's data on disk: every segment's file, less the zeros preallocated after
    the last one's records."""
    segments = sorted((path / "wal").glob("*.wal"))
    last = scan_frames(segments[-1].read_bytes(), is_last=True, valid_kinds=RECORD_KINDS)
    return sum(segment.stat().st_size for segment in segments[:-1]) + last.valid_end


def _reopen(path: Path, options: StorageOptions = SMALL):
    return DataDir.open(path, "c", 1, options)


def test_a_fresh_directory_recovers_empty(tmp_path: Path) -> None:
    storage, state = _reopen(tmp_path)
    with storage:
        assert (state.hard_state, state.snapshot, state.entries) == (HardState(), None, [])
        assert (state.first_index, state.last_index) == (1, 0)


def test_appended_entries_and_hard_state_survive_a_reopen(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 10), HardState(1, 2, 5))
        storage.append(_entries(11, 12), None)
    with _reopen(tmp_path)[0] as storage:
        pass
    _, state = _reopen(tmp_path)
    assert state.entries == _entries(1, 12) and state.hard_state == HardState(1, 2, 5)


def test_appending_from_an_earlier_index_replaces_the_conflicting_suffix(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 10), HardState(1, 1, 3))
        storage.append(_entries(6, 7, term=2), HardState(2, 1, 3))
    storage, state = _reopen(tmp_path)
    storage.close()
    assert state.entries == _entries(1, 5) + _entries(6, 7, term=2)


def test_segments_rotate_at_the_configured_size_and_replay_across_them(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        for index in range(1, 401):
            storage.append(_entries(index, index, size=100), HardState(1, 1, index - 1))
    segments = sorted((tmp_path / "wal").glob("*.wal"))
    assert len(segments) > 5
    assert all(path.stat().st_size < 4096 + 200 for path in segments)
    storage, state = _reopen(tmp_path)
    storage.close()
    assert state.entries == _entries(1, 400, size=100)


def test_a_commit_only_hard_state_rides_with_the_next_write(tmp_path: Path) -> None:
    """A hard state that only moves the commit index, with nothing to fsync, is not a
    write of its own (a leader's after every acknowledged batch): it goes out with the
    next entries or `close`. A crash before that recovers
    the older commit index, which Raft allows."""
    def crashed() -> HardState:  # what a kill -9 now would leave: a copy of the files
        copy = tmp_path / f"crash{len(list(tmp_path.glob('crash*')))}"
        shutil.copytree(tmp_path / "data", copy)
        storage, state = _reopen(copy)
        storage.close()
        return state.hard_state

    storage, _ = _reopen(tmp_path / "data")
    storage.append(_entries(1, 3), HardState(1, 1, 0))
    written = storage.wal_bytes
    storage.append([], HardState(1, 1, 3), sync=False)
    assert storage.wal_bytes == written and crashed() == HardState(1, 1, 0)
    storage.append(_entries(4, 4), None)
    assert crashed() == HardState(1, 1, 3)
    storage.append([], HardState(1, 1, 4), sync=False)
    storage.append([], HardState(2, 0, 4), sync=False)  # a new term is written at once
    assert crashed() == HardState(2, 0, 4)
    storage.append([], HardState(2, 0, 4), sync=True)  # ... and so is one that asks for a sync
    storage.append([], HardState(2, 0, 5), sync=True)
    assert crashed() == HardState(2, 0, 5)
    storage.append([], HardState(2, 0, 6), sync=False)
    storage.close()
    storage, state = _reopen(tmp_path / "data")
    storage.close()
    assert state.hard_state == HardState(2, 0, 6) and state.entries == _entries(1, 4)


@pytest.mark.parametrize("first", [0, 5])
def test_an_append_that_would_leave_a_gap_is_refused(tmp_path: Path, first: int) -> None:
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 3))
        with pytest.raises(InvalidAppend, match="must start in 1..4"):
            storage.append([Entry(1, first)])


def test_non_consecutive_entries_are_refused(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        with pytest.raises(InvalidAppend, match="not consecutive"):
            storage.append([Entry(1, 1), Entry(1, 3)])


def test_a_second_process_cannot_open_a_locked_data_dir(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0]:
        with pytest.raises(DataDirLocked, match=str(tmp_path)):
            _reopen(tmp_path)


def test_snapshot_then_compact_deletes_only_covered_segments(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        for index in range(1, 301):
            storage.append(_entries(index, index, size=100), HardState(1, 1, index))
        before = sorted((tmp_path / "wal").glob("*.wal"))
        meta = SnapshotMeta(200, 1, ConfState((1, 2, 3)))
        storage.save_snapshot(meta, [b"state ", b"machine"])
        assert storage.wal_bytes == _on_disk(tmp_path)  # kept across rotations, not stat()ed
        removed = storage.compact(200)
        assert removed and removed == before[: len(removed)]
        assert storage.wal_bytes == _on_disk(tmp_path)
        with pytest.raises(CompactionBeyondSnapshot):
            storage.compact(201)
    storage, state = _reopen(tmp_path)
    with storage:
        assert storage.wal_bytes == _on_disk(tmp_path)
        assert state.snapshot is not None and state.snapshot.meta == meta
        assert b"".join(state.snapshot_ref.iter_data()) == b"state machine"
        assert state.entries == _entries(201, 300, size=100)
        assert state.hard_state == HardState(1, 1, 300)


def test_an_installed_snapshot_past_the_log_discards_the_log(tmp_path: Path) -> None:
    """Raft §7: a snapshot whose last entry the log does not hold replaces the log."""
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 10), HardState(1, 1, 5))
        storage.save_snapshot(SnapshotMeta(50, 3), [b"leader's state"])
        storage.append(_entries(51, 52, term=3), HardState(3, 1, 50))
    storage, state = _reopen(tmp_path)
    storage.close()
    assert state.snapshot is not None and state.snapshot.meta.index == 50
    assert state.entries == _entries(51, 52, term=3)


def test_a_snapshot_that_conflicts_with_the_log_discards_the_suffix(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 10, term=1))
        storage.save_snapshot(SnapshotMeta(8, 2), [b"x"])  # entry 8 has term 1 here
    storage, state = _reopen(tmp_path)
    storage.close()
    assert state.entries == []


def test_a_snapshot_that_matches_the_log_keeps_the_suffix(tmp_path: Path) -> None:
    with _reopen(tmp_path)[0] as storage:
        storage.append(_entries(1, 10, term=1))
        storage.save_snapshot(SnapshotMeta(8, 1), [b"x"])
    storage, state = _reopen(tmp_path)
    storage.close()
    assert state.entries == _entries(9, 10)


def test_sync_policy_none_is_explicit_and_still_recovers_after_a_clean_close(tmp_path: Path) -> None:
    options = StorageOptions(segment_bytes=4096, sync=SyncPolicy("none"))
    assert options.sync is SyncPolicy.NONE
    with _reopen(tmp_path, options)[0] as storage:
        assert storage.sync_policy is SyncPolicy.NONE
        storage.append(_entries(1, 50), HardState(1, 1, 1))
    assert _reopen(tmp_path)[1].entries == _entries(1, 50)


def test_old_snapshot_files_are_pruned_to_keep_snapshots(tmp_path: Path) -> None:
    with _reopen(tmp_path, StorageOptions(segment_bytes=4096, keep_snapshots=2))[0] as storage:
        storage.append(_entries(1, 40))
        for index in (10, 20, 30, 40):
            storage.save_snapshot(SnapshotMeta(index, 1), [b"%d" % index])
    names = sorted(path.name for path in (tmp_path / "snap").iterdir())
    assert names == [f"{30:016x}-{1:016x}.snap", f"{40:016x}-{1:016x}.snap"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.integers(1, 120), st.lists(st.integers(1, 119), max_size=3))
def test_any_workload_recovers_to_the_model_across_reopens(seed: int, steps: int, reopen_at: list[int]) -> None:
    """Model-based: appends, overwrites, snapshots and compaction, with reopens in
    between, always recover to exactly the model's state."""
    options = StorageOptions(segment_bytes=4096, sync=SyncPolicy.NONE)
    with tempfile.TemporaryDirectory() as tmp:
        model = Model()
        storage, _ = DataDir.open(tmp, "c", 1, options)
        for step, op in zip(range(steps), workload(seed, snapshot_every=7)):
            perform(storage, model, op)
            model.apply(op)
            if step in reopen_at:
                storage.close()
                storage, state = DataDir.open(tmp, "c", 1, options)
                assert recovered_view(state) == model.view()
        storage.close()
        storage, state = DataDir.open(tmp, "c", 1, options)
        storage.close()
        assert recovered_view(state) == model.view()
        if state.snapshot_ref is not None:
            assert b"".join(state.snapshot_ref.iter_data()) == model.snapshot_data(state.snapshot_ref.meta.index)
