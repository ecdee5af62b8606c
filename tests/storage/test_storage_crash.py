"""Crash safety with real processes: a writer appends a seeded workload (appends,
suffix overwrites, hard-state changes, snapshots + compaction, segment rotation every
4 KiB) and reports each operation once it returned; we SIGKILL it at a random point,
recover, and compare with a model of the workload.

Half the runs also tear the in-flight append (cut it short, maybe add zero fill), as
a power failure could, to exercise torn-tail recovery: SIGKILL alone rarely tears.

Rule checked: every operation whose append had returned is present after recovery,
and nothing beyond the operation in flight is invented (recovered state is the
model's state after the acknowledged ops, or after the one in flight, or that one's
entries without its hard state: the entry record precedes the hard-state record).

Soak: JANGADA_STORAGE_CRASH_ITERATIONS=500 python -m pytest tests/storage/test_storage_crash.py
(JANGADA_STORAGE_CRASH_SEED shifts the seeds for a fresh run).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pytest

from node.storage import DataDir, StorageOptions
from storage_workload import Append, Model, recovered_view, workload

ITERATIONS = int(os.environ.get("JANGADA_STORAGE_CRASH_ITERATIONS", "24"))
FIRST_SEED = int(os.environ.get("JANGADA_STORAGE_CRASH_SEED", "0"))
WRITER = Path(__file__).with_name("storage_crash_writer.py")


@dataclass(frozen=True)
class Ack:
    number: int  # operations 1..number had returned
    segment: str  # the active WAL segment then
    size: int  # and its size: every byte past it belongs to the operation in flight


def _run_and_kill(data_dir: Path, seed: int, kill_after: int) -> Ack:
    """Start the writer, SIGKILL it after ``kill_after`` acks; return the last ack
    (acks still in the pipe count: they were sent)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WRITER.parent), *sys.path]))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
        lines: list[bytes] = []
        while len(lines) < kill_after:
            line = proc.stdout.readline()
            assert line, f"writer died on its own: {proc.stderr.read().decode()}"
            lines.append(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    lines += proc.stdout.read().splitlines(keepends=True)
    proc.stdout.close()
    proc.stderr.close()
    # A line cut by the kill is an ack that was never completely sent.
    complete = [line.split() for line in lines if line.endswith(b"\n")]
    if not complete:
        return Ack(0, "", 0)
    number, segment, size = complete[-1]
    return Ack(int(number), segment.decode(), int(size))


def _tear_in_flight_write(wal_dir: Path, ack: Ack, rng: random.Random) -> None:
    """Simulate a power failure during the in-flight append: only part of the bytes
    written after the last ack reached the disk, possibly followed by zero fill (the
    size reached the disk, the data did not). Bytes up to the ack stay intact."""
    path = wal_dir / ack.segment
    segments = sorted(p.name for p in wal_dir.glob("*.wal"))
    if not ack.segment or segments[-1] != ack.segment or path.stat().st_size <= ack.size:
        return
    keep = rng.randint(ack.size, path.stat().st_size - 1)
    with path.open("r+b") as file:
        file.truncate(keep)
        if rng.random() < 0.5:
            file.seek(keep)
            file.write(bytes(rng.randint(1, 600)))


def _model_states(seed: int, acked: int) -> list[Model]:
    """The model after ``acked`` ops, and after the op that was in flight."""
    ops = list(islice(workload(seed), acked + 1))
    model = Model()
    for op in ops[:acked]:
        model.apply(op)
    after_acked = Model(list(model.log), model.hard_state, model.snap_index)
    model.apply(ops[acked])
    return [after_acked, model]


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + ITERATIONS))
def test_sigkill_loses_no_acknowledged_operation_and_invents_nothing(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    kill_after = rng.choice((0, 1, 5, 30, 100, 200, 300))
    ack = _run_and_kill(tmp_path / "data", seed, kill_after)
    acked = ack.number
    before, in_flight = _model_states(seed, acked)
    if rng.random() < 0.5 and isinstance(next(islice(workload(seed), acked, None)), Append):
        _tear_in_flight_write(tmp_path / "data" / "wal", ack, rng)

    storage, state = DataDir.open(tmp_path / "data", "crash-cluster", 1, StorageOptions(segment_bytes=4096))
    with storage:
        hard_state, snap_index, entries = recovered_view(state)
        log_states = [(m.snap_index, m.log[m.snap_index :]) for m in (before, in_flight)]
        assert (snap_index, entries) in log_states, f"seed {seed}: recovered log matches no model state (acked {acked})"
        assert hard_state in (before.hard_state, in_flight.hard_state)
        if hard_state != before.hard_state:
            # The hard state is written after the entries of the same append.
            assert (snap_index, entries) == log_states[1]
        if state.snapshot_ref is not None:
            data = b"".join(state.snapshot_ref.iter_data())
            assert data in (before.snapshot_data(snap_index), in_flight.snapshot_data(snap_index))
        # The recovered directory must accept appends after the recovered tail.
        storage.append([], hard_state)
        assert state.last_index == snap_index + len(entries)
