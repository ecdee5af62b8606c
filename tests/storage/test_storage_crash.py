"""Crash safety with real processes: a writer appends a seeded workload (appends,
suffix overwrites, hard-state changes, snapshots + compaction, segment rotation every
4 KiB) and reports each operation once it returned; we SIGKILL it at a random point,
recover, and compare with a model of the workload.

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
from itertools import islice
from pathlib import Path

import pytest

from node.storage import DataDir, StorageOptions
from storage_workload import Model, recovered_view, workload

ITERATIONS = int(os.environ.get("JANGADA_STORAGE_CRASH_ITERATIONS", "24"))
FIRST_SEED = int(os.environ.get("JANGADA_STORAGE_CRASH_SEED", "0"))
WRITER = Path(__file__).with_name("storage_crash_writer.py")


def _run_and_kill(data_dir: Path, seed: int, kill_after: int) -> int:
    """Start the writer, SIGKILL it after ``kill_after`` acks; the number of the last
    acknowledged operation (acks still in the pipe count: they were sent)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WRITER.parent), *sys.path]))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
        seen = 0
        while seen < kill_after:
            line = proc.stdout.readline()
            assert line, f"writer died on its own: {proc.stderr.read().decode()}"
            seen += 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    lines = [int(line) for line in proc.stdout.read().split()]
    proc.stdout.close()
    proc.stderr.close()
    return max(lines, default=seen)


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
    kill_after = random.Random(seed).choice((0, 1, 5, 30, 100, 200, 300))
    acked = _run_and_kill(tmp_path / "data", seed, kill_after)
    before, in_flight = _model_states(seed, acked)

    storage, state = DataDir.open(tmp_path / "data", "crash-cluster", 1, StorageOptions(segment_bytes=4096))
    with storage:
        hard_state, snap_index, entries = recovered_view(state)
        log_states = [(m.snap_index, m.log[m.snap_index :]) for m in (before, in_flight)]
        assert (snap_index, entries) in log_states, f"seed {seed}: recovered log matches no model state (acked {acked})"
        assert hard_state in (before.hard_state, in_flight.hard_state)
        if hard_state != before.hard_state:
            # The hard state is written after the entries of the same append.
            assert (snap_index, entries) == log_states[1]
        if state.snapshot is not None:
            assert b"".join(state.snapshot.data.iter_data()) == before.snapshot_data(snap_index) or \
                b"".join(state.snapshot.data.iter_data()) == in_flight.snapshot_data(snap_index)
        # The recovered directory must accept appends after the recovered tail.
        storage.append([], hard_state)
        assert state.last_index == snap_index + len(entries)
