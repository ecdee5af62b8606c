"""How long does the loop turn that commits a snapshot last, removals included?

    python -m node.storage.bench_commit [--snapshot-mib M] [--wal-mib W] [--new-mib N] [--rounds R] [--dir D]

A node's commit turn (node/local_disk.py `pump`) appends the snapshot's WAL marker,
prunes the snapshot before the last one kept, and removes the WAL segments the new
snapshot covers. With a large store the pruned file is large and its pages are
cached (the node wrote it, then read it to stream it): unlink(2) frees them all
before it returns. This builds that situation -- a data dir holding a snapshot of
M MiB read back once, W MiB of covered WAL segments -- then times the commit and
compaction with the removals in the caller's thread and with a reaper thread
(node/storage/reaper.py), alternating, R rounds each. Wall and the caller thread's
CPU are printed; the reaper's own time is the wait after (not the loop's). With
--new-mib the snapshot being committed is N MiB written as the node writes it
(writeback started every 4 MiB), and its own commit (fsync, rename) is timed apart.
Not a test: it prints figures for docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from node.raft.types import ConfState, Entry, HardState, SnapshotMeta

from .datadir import DataDir
from .options import StorageOptions, SyncPolicy

MIB = 1024 * 1024


def _chunks(mib: int) -> Iterator[bytes]:
    block = os.urandom(MIB)  # incompressible, like a snapshot
    for _ in range(mib):
        yield block


def one_round(directory: Path, snapshot_mib: int, wal_mib: int, background: bool,
              new_mib: int = 0) -> tuple[float, float, float, float, float]:
    """(wall s, caller CPU s, reaper wait s, new file's commit wall s, its CPU s) of
    commit + compact for one fresh data dir; the new snapshot is `new_mib` MiB."""
    options = StorageOptions(segment_bytes=64 * MIB, keep_snapshots=1, remove_in_background=background,
                             sync=SyncPolicy.ALWAYS)
    storage, _ = DataDir.open(directory, "bench", 1, options)
    with storage:
        payload = b"x" * (MIB - 64)
        index = 0
        for _ in range(wal_mib):
            index += 1
            storage.append([Entry(1, index, payload)], HardState(1, 1, index), sync=False)
        storage.append([Entry(1, index + 1, b"tail")], HardState(1, 1, index + 1), sync=True)
        old = storage.save_snapshot(SnapshotMeta(1, 1, ConfState((1,))), _chunks(snapshot_mib))
        for _ in old.iter_data():  # read back, as streaming it to a follower does: its pages cached
            pass
        writer = storage.begin_snapshot(SnapshotMeta(index, 1, ConfState((1,))))
        for chunk in _chunks(new_mib):  # as the node writes it: writeback started every 4 MiB
            writer.write(chunk)
        wall, cpu = time.perf_counter(), time.thread_time()
        ref = writer.commit()  # trailer, fsync, rename, directory fsync
        file_wall, file_cpu = time.perf_counter() - wall, time.thread_time() - cpu
        wall, cpu = time.perf_counter(), time.thread_time()
        storage.commit_snapshot(ref)
        removed = storage.compact(index)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        waited = time.perf_counter()
        storage.removal.wait()
        waited = time.perf_counter() - waited
        assert removed, "no WAL segment was covered: raise --wal-mib"
    return wall, cpu, waited, file_wall, file_cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.storage.bench_commit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot-mib", type=int, default=1024)
    parser.add_argument("--wal-mib", type=int, default=256)
    parser.add_argument("--new-mib", type=int, default=0,
                        help="size of the snapshot being committed (its fsync and rename are timed apart)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the data dirs (default: a temp dir)")
    args = parser.parse_args(argv)
    results: dict[bool, list[tuple[float, float, float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="jangada-commit-", dir=args.dir) as root:
        for round_ in range(args.rounds):
            for background in (False, True):
                results[background].append(one_round(Path(root) / f"r{round_}-{int(background)}",
                                                     args.snapshot_mib, args.wal_mib, background, args.new_mib))
    print(f"commit + compact, pruning a {args.snapshot_mib} MiB cached snapshot and {args.wal_mib} MiB of WAL "
          f"({args.rounds} rounds each, median and max):")
    for background, label in ((False, "removals in the loop's thread"), (True, "removals in a reaper thread")):
        rows = results[background]
        walls, cpus, waits, file_walls, file_cpus = ([row[i] * 1000 for row in rows] for i in range(5))
        print(f"  {label:32} wall {statistics.median(walls):7.1f} ms (max {max(walls):7.1f})  "
              f"loop CPU {statistics.median(cpus):6.1f} ms  reaper after {statistics.median(waits):7.1f} ms")
    if args.new_mib:
        file_walls, file_cpus = ([row[i] * 1000 for rows in results.values() for row in rows] for i in (3, 4))
        print(f"  the new {args.new_mib} MiB file's commit (fsync, rename): wall {statistics.median(file_walls):7.1f} ms "
              f"(max {max(file_walls):7.1f})  CPU {statistics.median(file_cpus):6.1f} ms (max {max(file_cpus):6.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
