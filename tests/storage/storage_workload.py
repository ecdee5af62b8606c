"""A seeded stream of storage operations and a model of what they leave on disk.

Shared by the crash tests (a writer subprocess performs the ops, the test replays the
model) and by the model-based property tests. The model is deliberately naive: the
whole log as a Python list, snapshots as "the concatenated data of entries 1..i".
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator

from node.raft.types import ConfState, Entry, EntryKind, HardState, SnapshotMeta
from node.storage import DataDir, RecoveredState


@dataclass(frozen=True)
class Append:
    entries: tuple[Entry, ...]
    hard_state: HardState | None


@dataclass(frozen=True)
class TakeSnapshot:
    """Snapshot at ``index`` (committed), then compact the WAL through it."""

    index: int


Op = Append | TakeSnapshot


@dataclass
class Model:
    log: list[Entry] = field(default_factory=list)  # the full log, index i at log[i-1]
    hard_state: HardState = field(default_factory=HardState)
    snap_index: int = 0

    def apply(self, op: Op) -> None:
        if isinstance(op, Append):
            if op.entries:
                del self.log[op.entries[0].index - 1 :]
                self.log.extend(op.entries)
            if op.hard_state is not None:
                self.hard_state = op.hard_state
        else:
            self.snap_index = op.index

    def snapshot_data(self, index: int) -> bytes:
        return snapshot_bytes(self.log[:index])

    def view(self) -> tuple[HardState, int, list[Entry]]:
        return self.hard_state, self.snap_index, self.log[self.snap_index :]


def snapshot_bytes(entries: list[Entry]) -> bytes:
    return b"|".join(entry.data for entry in entries)


def snapshot_meta(model: Model, index: int) -> SnapshotMeta:
    return SnapshotMeta(index, model.log[index - 1].term, ConfState((1, 2, 3)))


def workload(seed: int, *, max_batch: int = 8, snapshot_every: int = 25) -> Iterator[Op]:
    """Ops that a Raft node could issue: appends, overwrites of an uncommitted
    suffix (with a term bump), hard-state-only changes, snapshots of committed state."""
    rng = random.Random(seed)
    term, last, commit, snap, step = 1, 0, 0, 0, 0
    while True:
        step += 1
        roll = rng.random()
        if step % snapshot_every == 0 and commit > snap:
            snap = commit
            yield TakeSnapshot(snap)
            continue
        start = last + 1
        if roll < 0.12 and last > commit:
            term += 1
            start = rng.randint(commit + 1, last)
        elif roll < 0.2:
            term += rng.randint(0, 1)
            commit = rng.randint(commit, last)
            yield Append((), HardState(term, rng.randint(0, 3), commit))
            continue
        count = rng.choice((1, 1, 2, 3, max_batch, rng.randint(1, max_batch * 8)))
        size = rng.choice((0, 8, 40, 300))
        entries = tuple(
            Entry(term, index, f"{seed}:{step}:{index}:".encode() + bytes(rng.getrandbits(8) for _ in range(size % 17)) + b"z" * size,
                  rng.choice((EntryKind.NORMAL, EntryKind.NORMAL, EntryKind.NOOP)))
            for index in range(start, start + count)
        )
        last = start + count - 1
        commit = rng.randint(commit, max(commit, last - 1))
        yield Append(entries, HardState(term, 1, commit) if rng.random() < 0.8 else None)


def perform(data_dir: DataDir, model: Model, op: Op) -> None:
    """Do ``op`` against real storage; ``model`` must be the state *before* it."""
    if isinstance(op, Append):
        data_dir.append(op.entries, op.hard_state)
    else:
        data_dir.save_snapshot(snapshot_meta(model, op.index), _chunks(model.snapshot_data(op.index)))
        data_dir.compact(op.index)


def _chunks(data: bytes, size: int = 700) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def recovered_view(state: RecoveredState) -> tuple[HardState, int, list[Entry]]:
    snap_index = state.snapshot.meta.index if state.snapshot else 0
    return state.hard_state, snap_index, list(state.entries)
