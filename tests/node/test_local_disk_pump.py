"""LocalDisk.pump (node/local_disk.py): a local snapshot is written a bounded number
of chunks per loop turn -- at most `budget`, stopping once `seconds` have passed,
at least one -- and the turn that commits it compacts the core's log and the WAL,
leaving the dropped entries to be freed RELEASE_PER_TURN per later turn."""
from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from node import local_disk
from node.address_book import Membership
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.local_disk import LocalDisk
from node.raft import ConfState, Entry, HardState, SnapshotMeta
from node.replica import Replica
from node.statemachine import StateMachine
from node.storage import DataDir, SnapshotRef, StorageOptions

pytestmark = pytest.mark.timeout(60)


class FakeJob:
    """A LocalSnapshot stand-in: `chunks` pumps, the last one commits `ref`; each
    pump advances the fake clock by `cost` seconds."""

    def __init__(self, chunks: int, ref: SnapshotRef, clock: list[float], cost: float) -> None:
        self.left, self.ref, self.clock, self.cost = chunks, ref, clock, cost
        self.pumped = 0

    def pump(self, budget: int, mark: Any = None) -> SnapshotRef | None:
        assert budget == 1  # LocalDisk asks one chunk at a time, checking the clock between
        self.clock[0] += self.cost
        self.pumped += 1
        self.left -= 1
        return self.ref if self.left == 0 else None


class FakeCore:
    def __init__(self, dropped: int) -> None:
        self.dropped = dropped
        self.compacted: list[int] = []

    def compact(self, snapshot: Any) -> list[Entry]:
        self.compacted.append(snapshot.meta.index)
        return [Entry(1, index) for index in range(1, self.dropped + 1)]


def _disk(tmp_path: Path, core: FakeCore) -> tuple[LocalDisk, DataDir, SnapshotRef]:
    storage, _ = DataDir.open(tmp_path, "c1", 1, StorageOptions(segment_bytes=4096))
    for index in range(1, 201):
        storage.append([Entry(1, index, b"x" * 100)], HardState(1, 1, index))
    ref = storage.save_snapshot(SnapshotMeta(150, 1, ConfState((1,))), [b"state"])
    log = EventLog(lambda: "node=1")
    disk = LocalDisk(1, storage, core, Replica(StateMachine()), Membership(1, {}, ConfState()),  # type: ignore[arg-type]
                     None, 1024, None, DroppedFrames(log), log)  # type: ignore[arg-type]
    return disk, storage, ref


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    now = [1000.0]
    monkeypatch.setattr(local_disk, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    yield now
    gc.unfreeze()  # the commit turn freezes what lived through it: give this worker's heap back to the collector


def test_chunks_per_turn_stop_at_the_budget_or_the_time_and_never_at_zero(tmp_path: Path, clock: list[float]) -> None:
    disk, storage, ref = _disk(tmp_path, FakeCore(0))
    with storage:
        job = FakeJob(100, ref, clock, cost=0.003)
        disk.local_snapshot = job  # type: ignore[assignment]
        disk.pump(5)  # no time limit: the budget
        assert job.pumped == 5
        disk.pump(50, seconds=0.008)  # 3 ms a chunk: the third one passes 8 ms
        assert job.pumped == 5 + 3
        disk.pump(50, seconds=0.0)  # out of time before it starts: still one
        assert job.pumped == 9
        assert disk.local_snapshot is job and disk.busy


def test_the_commit_turn_compacts_and_later_turns_free_the_dropped_entries(tmp_path: Path, clock: list[float]) -> None:
    dropped = 2 * local_disk.RELEASE_PER_TURN + 5
    core = FakeCore(dropped)
    disk, storage, ref = _disk(tmp_path, core)
    with storage:
        segments = sorted((tmp_path / "wal").glob("*.wal"))
        job = FakeJob(2, ref, clock, cost=0.001)
        disk.local_snapshot = job  # type: ignore[assignment]
        marks: list[str] = []
        disk.mark = marks.append  # the long-turn log's names for the commit's steps
        disk.pump(1)
        assert core.compacted == [] and disk.local_snapshot is job
        disk.pump(10)  # the last chunk: commit, compaction of the core's log and of the WAL
        assert job.pumped == 2 and disk.local_snapshot is None
        assert core.compacted == [150]
        assert marks == ["snapshot.commit.log", "snapshot.commit.wal"]
        storage.removal.wait()
        assert sorted((tmp_path / "wal").glob("*.wal")) != segments  # covered segments removed
        assert disk.busy  # the dropped entries are still to free
        turns = 0
        while disk.busy:
            disk.pump(10)
            turns += 1
            assert turns < 10
        assert turns == 3  # RELEASE_PER_TURN a turn: 10,000 + 10,000 + 5
