"""`python -m node.watchbench`: watch figures (docs/watch.md#figures).

1. In process, no sockets: the loop time one `WatchHub.pump` costs while a
   watch catches up from revision 1 over `--revisions` revisions of history
   (the per-turn slice budget bounds it), and the events/s that gives.
2. Real processes (`--live`, a 1-node cluster on free ports in a tmp dir): a
   watcher catching up from revision 1 over the same history through the
   socket and the client (events/s), then following live writes from a few
   writer threads (events/s delivered, and the delay from a put's
   acknowledgement to its event).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cluster.kv import Put, Txn, encode_command, prefix_end
from node.localcluster import LocalCluster
from node.statemachine import StateMachine
from node.watches import WatchHub, WatchLimits
from cluster.protocol import WatchCreateRequest, WatchProgressRequest, decode_watch_frame, WatchFrame


def in_process(revisions: int, per_txn: int, limits: WatchLimits) -> None:
    sm = StateMachine()
    for i in range(revisions):
        ops = tuple(Put(b"k/%06d" % ((i * per_txn + j) % 50_000), b"v" * 100) for j in range(per_txn))
        sm.apply(i + 1, encode_command(Txn((), ops, ()) if per_txn > 1 else ops[0]))
    frames: list[bytes] = []

    def send(identity: bytes, data: bytes) -> bool:
        frames.append(data)
        return True

    hub = WatchHub(1, send, lambda *a: None, lambda k, m: None, limits)
    hub.on_request(b"c", WatchCreateRequest(1, 1, b"k/", prefix_end(b"k/"), 1, False, 1000), sm, 0.0)
    turns: list[float] = []
    events = 0
    started = time.perf_counter()
    now = 0.0
    while hub.watches[(b"c", 1)].next_rev <= sm.revision:
        t = time.perf_counter()
        hub.pump(sm, now)
        turns.append(time.perf_counter() - t)
        for data in frames:  # the client's acknowledgement, at once
            frame = decode_watch_frame(data)
            assert isinstance(frame, WatchFrame)
            events += len(frame.events)
            hub.on_request(b"c", WatchProgressRequest(2, 1, frame.seq, False), sm, now)
        frames.clear()
        now += 0.001
    took = time.perf_counter() - started
    print(f"in process: {revisions} revisions x {per_txn} puts: {events} events in {len(turns)} turns, "
          f"{events / took:,.0f} events/s including decode; pump per turn median "
          f"{statistics.median(turns) * 1000:.2f} ms, max {max(turns) * 1000:.2f} ms "
          f"(budget {limits.turn_revisions} revisions / {limits.turn_events} events per turn)")


def live(revisions: int, per_txn: int, writers: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp), size=1, storage={"fsync": "none"}) as cluster:
        cluster.start_all()
        cluster.wait_for_leader()
        client = cluster.client()
        for i in range(revisions):
            client.txn(success=[Put(b"k/%06d" % ((i * per_txn + j) % 50_000), b"v" * 100) for j in range(per_txn)])
        head = client.put("k/end", "x").revision
        watch = client.watch("k/", prefix=True, start_revision=1)
        started, events = time.perf_counter(), 0
        while watch.revision is None or watch.revision < head:
            response = watch.get(timeout=30)
            assert response is not None, "catch-up stalled"
            events += len(response.events)
        took = time.perf_counter() - started
        print(f"live catch-up from revision 1: {events} events in {took:.2f} s = {events / took:,.0f} events/s")

        acked: dict[bytes, float] = {}
        stop = time.monotonic() + seconds

        def write(n: int) -> None:
            with cluster.client() as own:
                i = 0
                while time.monotonic() < stop:
                    key = b"k/live-%d-%d" % (n, i)
                    own.put(key, b"v" * 100)
                    acked[key] = time.perf_counter()
                    i += 1

        threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(writers)]
        for t in threads:
            t.start()
        delays: list[float] = []
        count = 0
        began = time.perf_counter()
        while any(t.is_alive() for t in threads) or count < len(acked):
            response = watch.get(timeout=5)
            if response is None:
                break
            now = time.perf_counter()
            for e in response.events:
                count += 1
                if e.kv.key in acked:
                    delays.append(now - acked[e.kv.key])
        took = time.perf_counter() - began
        delays.sort()
        print(f"live follow, {writers} writers: {count} events in {took:.2f} s = {count / took:,.0f} events/s; "
              f"put acknowledged -> event seen: median {statistics.median(delays) * 1000:.2f} ms, "
              f"p99 {delays[int(len(delays) * 0.99)] * 1000:.2f} ms (negative: the event arrived first)")
        watch.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.watchbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", type=int, default=20_000)
    parser.add_argument("--per-txn", type=int, default=1, help="puts per revision (a txn)")
    parser.add_argument("--live", action="store_true", help="also measure through real processes")
    parser.add_argument("--live-revisions", type=int, default=2_000, help="history written through the cluster")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    in_process(args.revisions, args.per_txn, WatchLimits())
    if args.live:
        live(args.live_revisions, args.per_txn, args.writers, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
