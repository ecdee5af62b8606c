"""Issue 20 on a real 3-member cluster (nothing here is timed): every member
reports its loop-stall statistics and its collector's passes in the status, and
the pipelined load generator follows a leader change: after the leader is killed
it reports one interruption, and the writes after it succeed."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.bench.pipeline import LeaderFollower, Pipeline, Slot, pump
from cluster.bench.tally import ThreadTally
from cluster.kv import Put, encode_command
from node.localcluster import LocalCluster, wait_for
from tests.clusters import cluster_maker

OPS = 800
KILL_AFTER = 200  # completed writes before the leader is killed


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    with cluster_maker(tmp_path, request) as make:
        yield make(3)


def test_members_report_loop_stalls_and_the_pipeline_follows_a_killed_leader(cluster: LocalCluster) -> None:
    leader = cluster.wait_for_leader()
    endpoints = [cluster.address(i) for i in cluster.ids]
    status = cluster.status_of(leader)
    assert status["loop_turns"] > 0 and status["loop_stall_bound_ms"] == 100.0  # 10 ms x 30 ticks / 3
    assert sum(status["loop_turn_histogram_ms"].values()) <= status["loop_turns"]
    assert status["loop_turn_max_ms"] >= status["loop_turn_recent_max_ms"] > 0
    assert status["loop_turn_cpu_max_ms"] > 0 and status["loop_stalls"] >= 0
    # the node process's collector policy (node/collector_policy.py): installed, settling
    assert status["gc_frozen_objects"] > 0 and len(status["gc_collections"]) == 3
    wait_for(lambda: cluster.status(leader)["gc_settles"] > 0 or None, 30, "a collector settle")  # type: ignore[index]

    pipe = Pipeline(cluster.address(leader), 8)
    tally = ThreadTally()
    keys = iter(range(OPS))

    def put(slot: Slot) -> tuple[str, bytes, bool]:
        slot.seq += 1
        return "put", encode_command(Put(b"scale/%05d" % next(keys), b"v" * 100), slot.client_id, slot.seq), False

    try:
        pipe.open_sessions(10.0)
        load = threading.Thread(target=pump, args=(pipe, put, OPS, time.monotonic(), 120.0, 2.0, lambda: False,
                                                   tally, LeaderFollower(endpoints)), daemon=True)
        load.start()
        wait_for(lambda: tally.completed >= KILL_AFTER or None, 60, f"{KILL_AFTER} writes")
        cluster.kill(leader)
        load.join(150)
        assert not load.is_alive()
    finally:
        pipe.close()
    assert tally.errors == {} and tally.latency.total == OPS, tally.errors
    assert len(tally.interruptions) >= 1 and pipe.endpoint != cluster.address(leader)
    client = cluster.client([e for e in endpoints if e != cluster.address(leader)])
    assert client.get(b"scale/%05d" % (OPS - 1)) is not None  # the last write, after the change
