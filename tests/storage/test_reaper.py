"""node/storage/reaper.py: pruned snapshots and compacted WAL segments removed in
a thread of their own, in order, without the caller waiting for unlink."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.raft.types import ConfState, Entry, HardState, SnapshotMeta
from node.storage import DataDir, StorageOptions
from node.storage import reaper as reaper_module
from node.storage.reaper import Reaper

pytestmark = pytest.mark.timeout(60)

BACKGROUND = StorageOptions(segment_bytes=4096, keep_snapshots=1, remove_in_background=True)


def _entries(first: int, last: int) -> list[Entry]:
    return [Entry(1, index, b"%d:" % index + b"x" * 100) for index in range(first, last + 1)]


class HeldRemovals:
    """remove_files, but each call waits until the test lets it go; records what it removed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.go = threading.Event()
        self.calls: list[tuple[tuple[str, ...], bool, str]] = []
        real = reaper_module.remove_files

        def held(paths: Sequence[Path], in_order: bool) -> None:
            self.go.wait(30)
            self.calls.append((tuple(path.name for path in paths), in_order, threading.current_thread().name))
            real(paths, in_order)

        monkeypatch.setattr(reaper_module, "remove_files", held)


def test_a_nodes_data_dir_compacts_and_prunes_without_waiting_for_unlink(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldRemovals(monkeypatch)
    storage, _ = DataDir.open(tmp_path, "c", 1, BACKGROUND)
    with storage:
        for index in range(1, 301):
            storage.append(_entries(index, index), HardState(1, 1, index))
        first = SnapshotMeta(100, 1, ConfState((1,)))
        storage.save_snapshot(first, [b"one"])
        segments = sorted((tmp_path / "wal").glob("*.wal"))
        removed = storage.compact(100)
        assert removed and removed == segments[:len(removed)]
        storage.save_snapshot(SnapshotMeta(200, 1, ConfState((1,))), [b"two"])  # prunes the first (keep 1)
        # Both calls returned while the reaper is held: the files are all still there.
        assert all(path.exists() for path in removed)
        assert len(list((tmp_path / "snap").glob("*.snap"))) == 2
        held.go.set()
        storage.removal.wait()
        assert not any(path.exists() for path in removed)
        assert len(list((tmp_path / "snap").glob("*.snap"))) == 1
        # In the order handed over, the segments one by one, off the caller's thread.
        assert [call[:2] for call in held.calls] == [(tuple(path.name for path in removed), True),
                                                     ((held.calls[1][0][0],), False)]
        assert held.calls[1][0][0].endswith(".snap")
        assert {call[2] for call in held.calls} == {f"reaper {tmp_path.name}"}
    # close() waited and stopped the thread; the directory reopens with what was kept.
    assert not any(thread.name == f"reaper {tmp_path.name}" for thread in threading.enumerate())
    storage, state = DataDir.open(tmp_path, "c", 1, BACKGROUND)
    with storage:
        assert state.snapshot is not None and state.snapshot.meta.index == 200
        assert state.entries == _entries(201, 300)


def test_segments_a_crash_left_behind_are_replayed_past_and_removed_next_time(tmp_path: Path) -> None:
    """A crash before the reaper ran leaves covered segments: recovery reads past them
    and the next compaction removes them (the suffix rule still holds)."""
    storage, _ = DataDir.open(tmp_path, "c", 1, StorageOptions(segment_bytes=4096))
    with storage:
        for index in range(1, 301):
            storage.append(_entries(index, index), HardState(1, 1, index))
        storage.save_snapshot(SnapshotMeta(200, 1, ConfState((1,))), [b"state"])
        before = sorted((tmp_path / "wal").glob("*.wal"))
    storage, state = DataDir.open(tmp_path, "c", 1, BACKGROUND)  # never compacted: as if the reaper never ran
    with storage:
        assert state.entries[-1] == _entries(300, 300)[0]
        removed = storage.compact(200)
        storage.removal.wait()
    assert removed and removed == before[:len(removed)]
    assert sorted((tmp_path / "wal").glob("*.wal")) == before[len(removed):]


def test_after_a_failed_in_order_removal_no_later_one_runs_in_that_directory(tmp_path: Path) -> None:
    wal, snap = tmp_path / "wal", tmp_path / "snap"
    wal.mkdir()
    snap.mkdir()
    segments = [wal / f"{n}.wal" for n in range(5)]
    for path in segments + [snap / "old.snap"]:
        path.write_bytes(b"x")
    (wal / "1.wal").unlink()
    (wal / "1.wal").mkdir()  # unlink of a directory fails: the removal of 1 cannot happen
    reaper = Reaper("test reaper")
    try:
        reaper.remove(segments[:3], in_order=True)
        reaper.remove(segments[3:], in_order=True)
        reaper.remove([snap / "old.snap", snap / "gone.snap"])  # a file already gone is no failure
        reaper.wait()
    finally:
        reaper.close()
    assert reaper.failures == 1
    # 0 went, 1 failed, so 2 stays and 3 and 4 are never touched: no gap in the segments.
    assert [path.name for path in sorted(wal.iterdir())] == ["1.wal", "2.wal", "3.wal", "4.wal"]
    assert not (snap / "old.snap").exists()
