"""Micro-benchmark of the state machine's hot paths (a script, not a test):

    python -m node.statemachine.bench [--keys N] [--value-bytes B]

Prints apply throughput for puts (new keys, overwrites, with sessions, in
txns) and read throughput for ranges over the whole key space, plus snapshot
and restore rates. Commands are encoded up front: what is timed is exactly
what the node does per committed entry (`apply(index, bytes)`).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from cluster.kv import Compact, OpenSession, Put, Range, SortOrder, Txn, encode_command
from node.statemachine.machine import StateMachine


class Bench:
    def __init__(self, keys: int, value_bytes: int, seed: int) -> None:
        self.keys = keys
        self.value = b"v" * value_bytes
        self.random = random.Random(seed)
        self.machine = StateMachine()
        self.index = 0

    def apply_all(self, commands: Sequence[bytes]) -> float:
        """Apply `commands`; return the rate per second."""
        apply, index = self.machine.apply, self.index
        start = time.perf_counter()
        for data in commands:
            index += 1
            apply(index, data)
        elapsed = time.perf_counter() - start
        self.index = index
        return len(commands) / elapsed

    def key(self, i: int) -> bytes:
        return b"/bench/key/%08d" % i


def timed(label: str, unit: str, count: int, run: Callable[[], object]) -> None:
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {count / elapsed:>12,.0f} {unit}/s  ({elapsed * 1000:,.1f} ms)")


def bench_writes(b: Bench) -> None:
    order = list(range(b.keys))
    b.random.shuffle(order)
    new = [encode_command(Put(b.key(i), b.value)) for i in order]
    print(f"{'put, new keys (random order)':<44} {b.apply_all(new):>12,.0f} puts/s")
    again = [encode_command(Put(b.key(b.random.randrange(b.keys)), b.value)) for _ in order]
    print(f"{'put, overwrite existing keys':<44} {b.apply_all(again):>12,.0f} puts/s")
    b.apply_all([encode_command(OpenSession())])
    client = b.index
    session = [encode_command(Put(b.key(i), b.value), client, seq)
               for seq, i in enumerate(order, start=1)]
    print(f"{'put with session (client_id, seq)':<44} {b.apply_all(session):>12,.0f} puts/s")
    txns = [encode_command(Txn((), tuple(Put(b.key(i + j), b.value) for j in range(8)), ()))
            for i in range(0, b.keys - 8, 8)]
    rate = b.apply_all(txns)
    print(f"{'txn of 8 puts':<44} {rate:>12,.0f} txns/s  ({rate * 8:,.0f} puts/s)")


def bench_reads(b: Bench) -> None:
    machine, n = b.machine, b.keys
    everything = Range.with_prefix(b"/bench/")
    timed(f"range over {n:,} keys, full result", "keys", n, lambda: machine.read(everything))
    count = Range.with_prefix(b"/bench/", count_only=True)
    timed(f"range over {n:,} keys, count only", "keys", n, lambda: machine.read(count))
    old = Range.with_prefix(b"/bench/", revision=b.machine.revision // 2)
    timed(f"range over {n:,} keys at an older revision", "keys", n, lambda: machine.read(old))
    desc = Range.with_prefix(b"/bench/", limit=10, sort_order=SortOrder.DESCEND)
    timed("range limit 10 descending (counts all)", "ranges", 10, lambda: [machine.read(desc) for _ in range(10)])
    gets = [Range(b.key(b.random.randrange(n))) for _ in range(n)]
    timed("get one key (serializable read)", "gets", n, lambda: [machine.read(g) for g in gets])


def bench_snapshot(b: Bench) -> None:
    chunks: list[bytes] = []
    timed("snapshot (history records)", "records", b.keys * 4,
          lambda: chunks.extend(b.machine.snapshot()))
    size = sum(map(len, chunks))
    timed(f"restore ({size / 1e6:,.1f} MB in {len(chunks)} chunks)", "records", b.keys * 4,
          lambda: StateMachine.restore(chunks))
    compact = encode_command(Compact(b.machine.revision))
    timed("compact away all superseded history", "keys", b.keys, lambda: b.apply_all([compact]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000, help="distinct keys (default 100000)")
    parser.add_argument("--value-bytes", type=int, default=100, help="value size (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the key order")
    args = parser.parse_args(argv)
    bench = Bench(args.keys, args.value_bytes, args.seed)
    print(f"jangada state machine, {args.keys:,} keys, {args.value_bytes}-byte values, "
          f"Python {sys.version.split()[0]}")
    bench_writes(bench)
    bench_reads(bench)
    bench_snapshot(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
