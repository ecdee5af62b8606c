"""End-to-end: three real `python -m node` processes, real sockets, real disks.

Every wait is a condition with a deadline; nothing asserts on timing.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(240)

MakeCluster = Callable[..., LocalCluster]


def _others(cluster: LocalCluster, node_id: int) -> list[int]:
    return [i for i in cluster.spec.ids if i != node_id]


def test_a_leader_is_elected_and_every_node_accepts_writes_by_redirect(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    for node_id in cluster.spec.ids:
        # A client that only knows this node: a follower redirects it to the leader.
        client = cluster.client([cluster.address(node_id)])
        put = client.put(f"via-{node_id}", f"value-{node_id}")
        assert put.revision >= 2
        assert client.get(f"via-{node_id}").value == f"value-{node_id}".encode()
    def agreed_leader() -> int | None:
        leaders = {cluster.status_of(i)["leader_id"] for i in cluster.spec.ids}
        return leaders.pop() if len(leaders) == 1 else None
    leader = wait_for(agreed_leader, 60, "every node to name the same leader")
    assert "progress" in cluster.status_of(leader)


def test_reads_are_linearizable_by_default_and_serializable_reads_say_so(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    leader = cluster.wait_for_leader()
    writer = cluster.client([cluster.address(leader)])
    follower = _others(cluster, leader)[0]
    # The reader talks to a follower: ReadIndex goes through the leader, so a read
    # that starts after a write returns completes sees it.
    reader = cluster.client([cluster.address(follower)])
    for i in range(20):
        writer.put(b"counter", str(i).encode())
        got = reader.range(b"counter")
        assert not got.serializable
        assert got.kvs[0].value == str(i).encode()
    local = reader.range(b"counter", serializable=True)
    assert local.serializable


def test_killing_the_leader_leaves_a_cluster_that_keeps_writing_and_the_node_catches_up(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    client = cluster.client()
    first = cluster.wait_for_leader()
    for i in range(20):
        client.put(f"before/{i}", str(i))
    cluster.kill(first)
    for i in range(20):
        client.put(f"after/{i}", str(i))
    second = cluster.wait_for_leader()
    assert second != first
    # Restarted, the old leader catches up from the new leader's log.
    cluster.start(first)
    commit = cluster.status_of(second)["commit_index"]
    cluster.wait_caught_up(first, commit)
    got = cluster.client([cluster.address(first)]).range(b"after/", prefix=True, serializable=True)
    assert got.count == 20


def test_a_follower_far_behind_catches_up_from_a_snapshot(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(snapshot={"applied_entries": 25, "chunk_bytes": 4096})
    client = cluster.client()
    leader = cluster.wait_for_leader()
    lagger = _others(cluster, leader)[0]
    cluster.kill(lagger)
    value = b"x" * 500  # several snapshot chunks
    for i in range(120):
        client.put(f"k/{i:03d}", value)
    leader_status = wait_for(lambda: (st := cluster.status(leader)) and st["snapshot_index"] > 60 and st,
                             60, "the leader to snapshot and compact")
    cluster.start(lagger)
    st = cluster.wait_caught_up(lagger, leader_status["commit_index"])
    assert st["snapshot_index"] > 0
    assert "installed snapshot" in cluster.log_text(lagger)
    # Its state machine was built over several steps and loop turns before the
    # core installed it (node/snapshot_install.py), not restored in one turn.
    assert st["snapshot_installs_prepared"] >= 1 and st["snapshot_install_steps"] > 1
    assert "built in" in cluster.log_text(lagger)
    got = cluster.client([cluster.address(lagger)]).range(b"k/", prefix=True, serializable=True)
    assert got.count == 120 and got.kvs[-1].value == value
    # The same history as the leader's, record for record.
    revision = got.revision
    hashes = {client.hash_kv(revision, endpoint=cluster.address(n))["hash"] for n in (leader, lagger)}
    assert len(hashes) == 1


@pytest.mark.parametrize("wal_writes", ["auto", "thread"])
def test_a_full_restart_from_disk_keeps_every_acknowledged_write(make_cluster: MakeCluster, wal_writes: str) -> None:
    """Both ways of writing the WAL: "auto" (on the loop while the disk is quiet)
    and "thread" (every write on the writer thread, node/wal_writer.py): what was
    acknowledged survives a kill -9 of the leader and the others' restart."""
    cluster = make_cluster(snapshot={"applied_entries": 30}, storage={"wal_writes": wal_writes})
    client = cluster.client()
    cluster.wait_for_leader()
    acknowledged = {}
    for i in range(60):
        key = f"durable/{i:03d}"
        client.put(key, str(i))
        acknowledged[key.encode()] = str(i).encode()
    client.delete("durable/000")
    del acknowledged[b"durable/000"]
    if wal_writes == "thread":
        # Writes are counted when they end: on a loaded machine a member that started
        # late (and caught up by a snapshot) may not have ended one yet, so wait for
        # each member's first. A write on the loop (inline) would be a bug at any time.
        def every_member_wrote() -> list[dict[str, Any]] | None:
            statuses = [cluster.status_of(n) for n in cluster.running()]
            return statuses if all(st["wal_writes_threaded"] > 0 for st in statuses) else None

        statuses = wait_for(every_member_wrote, 30, "every member to end a write on its writer thread")
        assert all(st["wal_writes_inline"] == 0 for st in statuses), [
            (st["node_id"], st["role"], st["wal_writes_threaded"], st["wal_writes_inline"]) for st in statuses]
    # Half are killed -9, half stopped gracefully: both must come back whole.
    leader = cluster.leader()
    for node_id in list(cluster.running()):
        if node_id == leader:
            cluster.kill(node_id)
        else:
            assert cluster.stop(node_id) == 0
    cluster.start_all()
    cluster.wait_for_leader()
    got = cluster.client().range(b"durable/", prefix=True)
    assert {kv.key: kv.value for kv in got.kvs} == acknowledged


def test_a_member_whose_writes_went_through_the_writer_thread_sleeps_when_idle(make_cluster: MakeCluster) -> None:
    """The writer thread wakes the loop with a byte on a pipe after a write ends; a
    byte that arrived after the loop had already run that write's step 5 used to
    stay unread (nothing was in flight), the pipe stayed readable, and the loop spun
    on it: a whole core, idle, until the next write through the thread. An idle
    member turns its loop for its ticks and heartbeats only."""
    cluster = make_cluster(storage={"wal_writes": "thread"})
    cluster.wait_for_leader()
    # Many writes in flight (the race needs a busy loop): the pipelined generator.
    endpoints = ",".join(a.removeprefix("tcp://") for a in cluster.spec.client_addresses())
    bench = subprocess.run([sys.executable, "-m", "cluster.bench", "put", "--endpoints", endpoints, "-c", "32",
                            "--pipeline", "-n", "3000", "--no-prefill", "--quiet"],
                           capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0, bench.stderr
    statuses = wait_for(lambda: [st for st in (cluster.status_of(n) for n in cluster.running())
                                 if st["wal_writes_threaded"] > 0] or None, 30, "a write on the writer thread")
    time.sleep(0.5)  # the last writes' wake-ups
    before = {n: cluster.status_of(n)["loop_turns"] for n in cluster.running()}
    time.sleep(2.0)
    turns = {n: cluster.status_of(n)["loop_turns"] - before[n] for n in cluster.running()}
    # 2 s of 10 ms ticks is at most ~200 turns even waking every tick (node/wakeup.py
    # sleeps longer); a spinning loop turns tens of thousands of times.
    assert statuses and all(count < 1000 for count in turns.values()), turns
