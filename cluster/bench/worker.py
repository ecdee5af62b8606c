"""One load process: `in_flight` threads, each with its own `Client` (so its own
socket and session: writes stay exactly-once), each keeping one request in flight.

The process reports to the parent through `Shared` (multiprocessing primitives):
it counts itself ready once every thread is connected (and, for read workloads, has
written its share of the keys once), waits for `go`, then runs until its op budget
is spent or the common deadline (`t0 + duration`) passes. A publisher loop copies
the number of completed ops into `done[index]` for the progress bar; at the end it
puts one `WorkerResult` dict on the results queue. Latencies are recorded only for
ok ops; a failed op is counted under its error type.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from cluster.bench.options import BenchOptions
from cluster.bench.pipeline import LeaderFollower, Pipeline, PipelineError, make_request, pump
from cluster.bench.tally import INTERVAL, WRITE_KINDS, ThreadTally, merge_tallies
from cluster.client import Client, ClientError
from cluster.curve_keys import CurveClient
from cluster.kv import Compare, Put, Range, prefix_end

READY_TIMEOUT = 300.0


@dataclass
class Shared:
    """What the parent and its load processes share (created from one mp context)."""

    ready: Any  # Value('i'): processes connected and prefilled
    go: Any  # Event: start measuring
    stop: Any  # Event: the parent gave up: stop now
    t0: Any  # Value('d'): time.monotonic() of the start (CLOCK_MONOTONIC is system-wide on Linux)
    done: Any  # RawArray('q', processes): completed ops per process


Op = Callable[[], str]  # performs one operation; returns its kind ("put", "get", "cas-ok", ...)


def make_op(options: BenchOptions, client: Any, rng: random.Random, tag: str) -> Op:
    """The thread's operation generator: one call = one request."""
    keys = options.keys
    value = rng.randbytes(options.value_size)
    ser = options.serializable
    range_end = prefix_end(options.key_prefix.encode())
    seen: dict[bytes, bytes | None] = {}
    counter = iter(range(1 << 62))

    def put() -> str:
        client.put(options.key(rng.randrange(keys)), value)
        return "put"

    def get() -> str:
        client.get(options.key(rng.randrange(keys)), serializable=ser)
        return "get"

    def range_() -> str:
        client.range(options.key(rng.randrange(keys)), range_end, limit=options.range_limit, serializable=ser)
        return "range"

    def cas() -> str:
        # Compare-and-set: put a new value if the key still holds the one this client
        # last saw (absent: version 0); else learn the current value from the failure branch.
        key = options.key(rng.randrange(keys))
        expected = seen.get(key, prefill_value(options) if options.prefill else None)
        compare = Compare.version(key, "=", 0) if expected is None else Compare.value(key, "=", expected)
        new = f"{tag}.{next(counter)}.".encode().ljust(options.value_size, b"x")
        reply = client.txn([compare], [Put(key, new)], [Range(key)])
        if reply.succeeded:
            seen[key] = new
            return "cas-succeeded"
        kvs = reply.responses[0].kvs if reply.responses else ()
        seen[key] = kvs[0].value if kvs else None
        return "cas-failed"

    def mixed() -> str:
        return get() if rng.random() < options.read_ratio else put()

    return {"put": put, "get": get, "range": range_, "txn": cas, "mixed": mixed}[options.workload]


def prefill_value(options: BenchOptions) -> bytes:
    """What the prefill writes (the txn workload's first expected value)."""
    return b"v" * options.value_size


def curve_client(options: BenchOptions) -> CurveClient | None:
    """This load process's CURVE side for a [curve] cluster (one ephemeral key pair
    per process, as any client), None for a plaintext one."""
    return CurveClient(dict(options.curve_keys)) if options.curve_keys else None


def prefill_keys(options: BenchOptions, thread: int, threads: int) -> range:
    """The keys thread `thread` of `threads` writes before measuring (a partition)."""
    return range(thread, options.keys, threads)


def run_thread(options: BenchOptions, endpoints: list[str], budget: int | None, shared: Shared,
               start: threading.Barrier, tally: ThreadTally, global_index: int, threads: int) -> None:
    rng = random.Random(options.seed * 1_000_003 + global_index)
    with Client(endpoints, timeout=options.timeout, attempt_timeout=options.attempt_timeout,
                curve=curve_client(options)) as client:
        try:
            if options.prefill and options.workload != "put":
                for index in prefill_keys(options, global_index, threads):
                    if shared.stop.is_set():
                        break
                    try:
                        client.put(options.key(index), prefill_value(options))
                    except (ClientError, zmq.ZMQError):
                        tally.prefill_errors += 1  # reported: the reads may then miss a key
            op = make_op(options, client, rng, f"{os.getpid()}.{global_index}")
        except BaseException:
            start.abort()  # the process stops waiting for this thread, and says so
            raise
        start.wait()
        if shared.stop.is_set() or not shared.go.wait(READY_TIMEOUT):
            return
        measure(op, budget, shared.t0.value, options.duration, shared.stop.is_set, tally)


def measure(op: Op, budget: int | None, t0: float, duration: float, stopped: Callable[[], bool],
            tally: ThreadTally) -> None:
    """Call `op` until `budget` ops are done or `t0 + duration` passes (or `stopped`).
    An ok op's latency is recorded; a failed one is counted under its error type."""
    deadline = t0 + duration
    remaining = budget
    while (remaining is None or remaining > 0) and not stopped():
        began = time.monotonic()
        if began >= deadline:
            break
        try:
            kind = op()
        except (ClientError, zmq.ZMQError) as error:
            kind = ""
            tally.errors[type(error).__name__] += 1
        ended = time.monotonic()
        if kind:
            tally.latency.record(round((ended - began) * 1e6))
            tally.kinds[kind] += 1
            if tally.ok_write_times is not None and kind in WRITE_KINDS:
                tally.ok_write_times.append(ended - t0)
        tally.completed += 1
        tally.last = ended - t0
        tally.timeline[int(tally.last / INTERVAL)] += 1
        if remaining is not None:
            remaining -= 1


def run_pipeline(options: BenchOptions, endpoints: list[str], budget: int | None, shared: Shared,
                 start: threading.Barrier, tally: ThreadTally, process: int, processes: int) -> None:
    """--pipeline: this process's one socket with `in_flight` requests outstanding,
    on `endpoints[0]`; with the leader target it follows a leader change."""
    endpoint = endpoints[0]
    rng = random.Random(options.seed * 1_000_003 + process)
    curve = curve_client(options)
    pipe = Pipeline(endpoint, options.in_flight, curve)
    try:
        try:
            if options.workload in ("put", "mixed"):
                pipe.open_sessions(options.timeout)
            if options.prefill and options.workload != "put":
                with Client([endpoint], timeout=options.timeout, curve=curve) as client:
                    for index in prefill_keys(options, process, processes):
                        try:
                            client.put(options.key(index), prefill_value(options))
                        except (ClientError, zmq.ZMQError):
                            tally.prefill_errors += 1
        except PipelineError as error:
            tally.setup_error = f"load process {process}: {error}"
            start.abort()
            return
        except BaseException:
            start.abort()
            raise
        start.wait()
        if shared.stop.is_set() or not shared.go.wait(READY_TIMEOUT):
            return
        pump(pipe, make_request(options, rng), budget, shared.t0.value, options.duration, options.timeout,
             shared.stop.is_set, tally,
             LeaderFollower(endpoints, curve) if options.target == "leader" else None)
    finally:
        pipe.close()


def worker_main(index: int, options: BenchOptions, endpoints: list[list[str]], budgets: list[int | None],
                first_thread: int, threads: int, shared: Shared, results: Any) -> None:
    """The entry point of one load process (spawned; everything here is picklable)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it sets `stop`
    if options.pipeline:
        total = None if budgets[0] is None else sum(b or 0 for b in budgets)
        tallies = [ThreadTally()]
        start = threading.Barrier(2)
        if options.kill_leader:
            tallies[0].ok_write_times = []
        workers = [threading.Thread(target=run_pipeline, daemon=True, name=f"bench-{index}",
                                    args=(options, endpoints[0], total, shared, start, tallies[0], index,
                                          options.processes))]
    else:
        tallies = [ThreadTally(ok_write_times=[] if options.kill_leader else None) for _ in endpoints]
        start = threading.Barrier(len(endpoints) + 1)
        workers = [threading.Thread(target=run_thread, daemon=True, name=f"bench-{index}.{i}",
                                    args=(options, endpoints[i], budgets[i], shared, start, tallies[i],
                                          first_thread + i, threads))
                   for i in range(len(endpoints))]
    for worker in workers:
        worker.start()
    try:
        start.wait(READY_TIMEOUT)
    except threading.BrokenBarrierError:
        shared.stop.set()
    with shared.ready.get_lock():
        shared.ready.value += 1
    cpu = time.process_time()  # this process's CPU (all threads) from here on: the load's cost
    while any(w.is_alive() for w in workers):
        shared.done[index] = sum(t.completed for t in tallies)
        time.sleep(0.1)
    shared.done[index] = sum(t.completed for t in tallies)
    results.put(merge_tallies(index, tallies, time.process_time() - cpu))
