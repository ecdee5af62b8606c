"""How long does taking a snapshot stall the node's loop?

    python -m node.storage.bench_snapshot [--keys N] [--value-bytes B] [--chunk-bytes C]

Builds a state machine with N keys, then snapshots it two ways and prints figures:

* all at once: serialize the whole state and write it in one go (the stall a naive
  node would suffer: the loop does nothing else meanwhile);
* stepped: the node's way -- the state machine's snapshot stream is a lazy view fixed
  at one revision, so the loop takes ONE chunk per iteration (next chunk + write), and
  keeps applying commands in between. The figure that matters is the longest step.

The final commit (fsync, rename, directory fsync, WAL marker) is timed separately:
it is one short step. Not a test: it prints figures for the README.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from node.raft.types import ConfState, SnapshotMeta
from cluster.kv import Put, encode_command
from node.statemachine import StateMachine

from .datadir import DataDir
from .options import StorageOptions


def build_state(keys: int, value_bytes: int) -> StateMachine:
    sm = StateMachine()
    value = b"v" * value_bytes
    for i in range(1, keys + 1):
        sm.apply(i, encode_command(Put(b"key/%08d" % i, value)))
    return sm


def snapshot_stepped(sm: StateMachine, directory: Path, chunk_bytes: int,
                     applies_between: int) -> tuple[list[float], float, int]:
    """Write one chunk per 'loop iteration', applying commands in between; returns the
    step durations, the commit duration and the number of bytes."""
    storage, _ = DataDir.open(directory, "bench", 1, StorageOptions())
    with storage:
        meta = SnapshotMeta(sm.applied_index, 1, ConfState((1,)))
        writer = storage.begin_snapshot(meta)
        chunks = sm.snapshot(chunk_bytes)
        steps, size, index = [], 0, sm.applied_index
        while True:
            started = time.perf_counter()
            chunk = next(chunks, None)
            if chunk is not None:
                writer.write(chunk)
            steps.append(time.perf_counter() - started)
            if chunk is None:
                break
            size += len(chunk)
            for _ in range(applies_between):  # the loop keeps serving writes meanwhile
                index += 1
                sm.apply(index, encode_command(Put(b"key/%08d" % (index % 1000), b"x")))
        started = time.perf_counter()
        storage.commit_snapshot(writer.commit())
        commit = time.perf_counter() - started
    return steps, commit, size


def snapshot_at_once(sm: StateMachine, directory: Path) -> float:
    storage, _ = DataDir.open(directory, "bench", 1, StorageOptions())
    with storage:
        meta = SnapshotMeta(sm.applied_index, 1, ConfState((1,)))
        started = time.perf_counter()
        blob = b"".join(sm.snapshot(1 << 30))
        storage.save_snapshot(meta, [blob])
        return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.storage.bench_snapshot",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--chunk-bytes", type=int, default=64 * 1024)
    parser.add_argument("--applies-between", type=int, default=10,
                        help="commands applied between two snapshot steps (default 10)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.keys < 1 or args.chunk_bytes < 1:
        parser.error("--keys and --chunk-bytes must be >= 1")
    print(f"building a state machine with {args.keys:,} keys of {args.value_bytes} B ...",
          file=sys.stderr)
    sm = build_state(args.keys, args.value_bytes)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        whole = snapshot_at_once(sm, Path(tmp) / "at-once")
        steps, commit, size = snapshot_stepped(sm, Path(tmp) / "stepped", args.chunk_bytes,
                                               args.applies_between)
    ms = [s * 1000 for s in steps]
    print(f"snapshot of {args.keys:,} keys, {size / 1e6:.1f} MB, fsync always")
    print(f"  all at once:  the loop stalls {whole * 1000:.0f} ms")
    print(f"  stepped ({args.chunk_bytes // 1024} KiB chunks, {len(steps)} steps): "
          f"p50 {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms per step; "
          f"commit step {commit * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
