"""WAL benchmark: append throughput per batch size, and recovery time of a big log.

    python -m node.storage.bench [--dir DIR] [--sync always|none] [--recovery-entries N]

Not a test: it prints figures for the README's performance section. Appends are timed
under the chosen sync policy (``always`` by default: one fdatasync per append, the
only durable mode); the log replayed by the recovery benchmark is *generated* with
sync ``none`` to save time, which does not change what recovery reads.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from node.raft.types import Entry, HardState

from .datadir import DataDir
from .options import StorageOptions, SyncPolicy

CLUSTER = "bench"


def _batch(first: int, size: int, payload: bytes) -> list[Entry]:
    return [Entry(1, index, payload) for index in range(first, first + size)]


def bench_append(directory: Path, batch: int, appends: int, payload_bytes: int, sync: SyncPolicy) -> str:
    payload = os.urandom(payload_bytes)
    storage, _ = DataDir.open(directory, CLUSTER, 1, StorageOptions(sync=sync))
    with storage:
        start_bytes = storage.wal_bytes
        next_index = 1
        started = time.perf_counter()
        for _ in range(appends):
            storage.append(_batch(next_index, batch, payload), HardState(1, 1, next_index - 1))
            next_index += batch
        elapsed = time.perf_counter() - started
        written = storage.wal_bytes - start_bytes
    entries = appends * batch
    return (
        f"batch {batch:>4}: {entries / elapsed:>10,.0f} entries/s  {written / elapsed / 1e6:>7.2f} MB/s of WAL  "
        f"{appends / elapsed:>8,.0f} appends/s  ({entries:,} entries of {payload_bytes} B, {elapsed:.2f} s)"
    )


def bench_recovery(directory: Path, entries: int, payload_bytes: int, batch: int) -> str:
    payload = os.urandom(payload_bytes)
    storage, _ = DataDir.open(directory, CLUSTER, 1, StorageOptions(sync=SyncPolicy.NONE))
    with storage:
        for first in range(1, entries + 1, batch):
            count = min(batch, entries + 1 - first)
            storage.append(_batch(first, count, payload), HardState(1, 1, first - 1))
        size = storage.wal_bytes
    started = time.perf_counter()
    storage, state = DataDir.open(directory, CLUSTER, 1)
    elapsed = time.perf_counter() - started
    storage.close()
    assert len(state.entries) == entries, "recovery lost entries"
    segments = len(list((directory / "wal").glob("*.wal")))
    return (
        f"recovered {entries:,} entries of {payload_bytes} B (appended in batches of {batch}; "
        f"{size / 1e6:.1f} MB in {segments} segments) in {elapsed:.2f} s = {entries / elapsed:,.0f} entries/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.storage.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--sync", choices=[p.value for p in SyncPolicy], default=SyncPolicy.ALWAYS.value)
    parser.add_argument("--payload", type=int, default=100, help="bytes per entry (default 100)")
    parser.add_argument("--recovery-entries", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sync = SyncPolicy(args.sync)
    root = Path(tempfile.mkdtemp(prefix="jangada-bench-", dir=args.dir))
    try:
        durability = "fdatasync per append: durable" if sync is SyncPolicy.ALWAYS else "NO fsync: NOT durable, numbers are not comparable"
        print(f"WAL append throughput, sync={sync.value} ({durability}), dir={root}")
        for batch, appends in ((1, 3000), (16, 1500), (256, 300)):
            print("  " + bench_append(root / f"append-{batch}", batch, appends, args.payload, sync), flush=True)
        print("Recovery (log generated with sync=none; recovery reads the same bytes either way)")
        print("  " + bench_recovery(root / "recovery", args.recovery_entries, 16, 16), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
