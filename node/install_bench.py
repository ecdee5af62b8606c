"""A follower's snapshot install under measurement: `python -m node.install_bench`.

Starts 3 members on loopback (node/localcluster.py) under ROOT, stops a follower
(with --warm: after it holds the first half of the keys), fills `--keys` keys of
100 bytes with the pipelined generator, takes a fresh snapshot on the leader (so
the follower has nothing left to apply after the install), restarts the follower
and prints its status figures once it caught up: the loop's longest turns
(`loop_turn_*`), the collector's passes and the install's own counters
(`snapshot_install_*`, node/snapshot_install.py). Compare CPU figures, not wall
time, on a shared machine (docs/performance.md, "Snapshot install on a follower").
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cluster.bench.pipeline import LeaderFollower, Pipeline, Slot, pump
from cluster.bench.scale import STEP_TIMEOUT, key
from cluster.bench.tally import ThreadTally
from cluster.kv.codec import encode_command
from cluster.kv.requests import Put
from node.localcluster import LocalCluster, wait_for

_FIGURES = ("loop_", "snapshot_", "gc_")


def _filler(cluster: LocalCluster, leader: int) -> Any:
    """put(count, endpoints): the next `count` keys through one pipeline."""
    pipe = Pipeline(cluster.address(leader), 64)
    pipe.open_sessions(10.0)
    following = [0]
    value = b"v" * 100

    def command(slot: Slot) -> tuple[str, bytes, bool]:
        slot.seq += 1
        index = following[0]
        following[0] = index + 1
        return "put", encode_command(Put(key(index), value), slot.client_id, slot.seq), False

    def put(count: int, members: list[int]) -> None:
        tally = ThreadTally()
        pump(pipe, command, count, time.monotonic(), STEP_TIMEOUT, 5.0, lambda: False, tally,
             LeaderFollower([cluster.address(n) for n in members]))
        if tally.errors:
            raise RuntimeError(f"fill errors: {dict(tally.errors)}")

    return put


def run(root: Path, keys: int, warm: bool) -> dict[str, Any]:
    with LocalCluster(root) as cluster:
        cluster.start_all()
        leader = cluster.wait_for_leader()
        follower = next(n for n in cluster.ids if n != leader)
        others = [n for n in cluster.ids if n != follower]
        put = _filler(cluster, leader)
        first = keys // 2 if warm else 0
        if first:
            put(first, cluster.ids)
            cluster.wait_caught_up(follower, cluster.status_of(leader)["commit_index"], timeout=600)
        cluster.kill(follower)
        put(keys - first, others)
        wait_for(lambda: cluster.status_of(leader)["snapshot_index"] > 0, 600, "the leader to compact its log")
        with (root / "fresh.snap").open("wb") as sink:
            cluster.client().snapshot(sink, endpoint=cluster.address(leader))
        commit = cluster.status_of(leader)["commit_index"]
        started = time.monotonic()
        cluster.start(follower)
        status = cluster.wait_caught_up(follower, commit, timeout=600)
        return {"keys": keys, "warm": warm, "restart_to_caught_up_s": round(time.monotonic() - started, 2),
                **{k: v for k, v in status.items() if k.startswith(_FIGURES)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.install_bench", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="an empty directory for the cluster's data")
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--warm", action="store_true", help="the follower holds the first half before it stops")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args.root, args.keys, args.warm), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
