"""Membership changes with real node processes (issue 9): grow, shrink, replace a
dead member, a removed member that keeps running, leadership transfer.

Every cluster runs on free loopback ports with its data in tmp_path; the fixture
ends every process by pid. Waiting is always on a condition with a deadline.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from cluster.check import Verdict, check_history, lost_writes
from cluster.client import Client, ClientError, InvalidRequestError
from cluster.workload import History, Workload, WorkloadOptions, final_reads
from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(150)


def members_of(client: Client) -> dict[str, Any]:
    return wait_for(lambda: _try(client.members), 60, "the leader's member list")


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError:
        return None


def add_member(cluster: LocalCluster, client: Client) -> int:
    """Start a fresh node with --join, add it as a learner, wait until it has caught
    up, promote it; its id."""
    member = cluster.new_member()
    cluster.start(member.id)
    added = client.member_add(member.id, member.peer, member.client)

    def promoted() -> bool:
        members = _try(client.members)
        row = next((r for r in (members or {}).get("members", []) if r["id"] == member.id), None)
        # Caught up: it holds at least the entry that added it, and lags little.
        if row is None or row["lag"] is None or row["match"] < added["commit_index"] or row["lag"] > 50:
            return False
        return _try(lambda: client.member_promote(member.id)) is not None
    wait_for(promoted, 90, f"node {member.id} to catch up and be promoted", interval=0.1)
    return member.id


def remove_member(cluster: LocalCluster, client: Client, node_id: int) -> None:
    client.member_remove(node_id)
    cluster.stop(node_id)


def voters(client: Client) -> list[int]:
    return sorted(members_of(client)["voters"])


def check_recorded(history: History, endpoints: list[str], keys: list[str]) -> None:
    final = final_reads(endpoints, keys, history, timeout=30.0)
    ops = list(history.operations)
    result = check_history(ops, timeout=30.0, minimize_budget=1.0)
    assert result.verdict is Verdict.LINEARIZABLE, result
    assert lost_writes(ops, final) == []
    assert sum(1 for op in ops if op.outcome.value == "ok") > 50, "the workload hardly ran"


def test_grow_three_to_five_then_shrink_removing_the_leader_under_load_stays_linearizable(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    admin = cluster.client(timeout=30.0)
    options = WorkloadOptions(clients=3, keys=4, duration=600, op_timeout=2.0, key_prefix="grow/k")
    history = History(time.monotonic())
    workload = Workload([cluster.address(i) for i in cluster.ids], options, history)
    workload.start()
    try:
        started = time.monotonic()
        added = [add_member(cluster, admin), add_member(cluster, admin)]
        grew = time.monotonic() - started
        assert voters(admin) == [1, 2, 3, *added]
        # Shrink: the leader first (it steps down once its removal commits), then one more.
        started = time.monotonic()
        leader = members_of(admin)["leader_id"]
        remove_member(cluster, admin, leader)
        new_leader = wait_for(lambda: cluster.leader() not in (None, leader) and cluster.leader(), 60,
                              "a new leader among the remaining members")
        other = next(i for i in (1, 2, 3) if i not in (leader, new_leader))
        remove_member(cluster, admin, other)
        shrank = time.monotonic() - started
        remaining = sorted(set([1, 2, 3, *added]) - {leader, other})
        assert voters(admin) == remaining
        admin.put("after-shrink", "ok")
        print(f"grow 3->5: {grew:.2f} s, shrink 5->3 (leader first): {shrank:.2f} s")
    finally:
        workload.stop()
        workload.join()
    check_recorded(history, [cluster.address(i) for i in remaining], options.key_names())
    # Every remaining replica applies the same log.
    index = cluster.status_of(remaining[0])["commit_index"]
    for node_id in remaining:
        cluster.wait_caught_up(node_id, index)


def test_a_dead_member_is_replaced_by_a_fresh_node_that_catches_up_from_a_streamed_snapshot(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3, snapshot={"applied_entries": 300, "wal_bytes": 1 << 30, "chunk_bytes": 16 * 1024})
    cluster.wait_for_leader()
    client = cluster.client(timeout=30.0)
    keys = 1500
    for i in range(keys):
        client.put(f"k{i:05d}", f"value-{i}-" + "x" * 64)
    leader = cluster.wait_for_leader()
    wait_for(lambda: (cluster.status(leader) or {}).get("snapshot_index", 0) > 0, 60, "a compaction on the leader")
    dead = next(i for i in (1, 2, 3) if i != leader)
    cluster.kill(dead)
    client.member_remove(dead)
    started = time.monotonic()
    fresh = add_member(cluster, client)
    caught_up = time.monotonic() - started
    assert "installed snapshot" in cluster.log_text(fresh)
    assert "streaming snapshot" in cluster.log_text(cluster.wait_for_leader())
    assert voters(client) == sorted({1, 2, 3, fresh} - {dead})
    reader = cluster.client([cluster.address(fresh)])
    got = reader.range("k", "l", count_only=True, serializable=True)
    assert got.count == keys
    # The fresh node is a full voter: with the other follower down, it is needed for a quorum.
    other = next(i for i in (1, 2, 3) if i not in (dead, leader))
    cluster.stop(other)
    client.put("needs-the-new-voter", "yes")
    print(f"fresh node: {keys} keys from a streamed snapshot, learner to voter in {caught_up:.2f} s")


def test_addresses_survive_a_full_restart_after_the_log_is_compacted_past_the_change(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3, snapshot={"applied_entries": 50, "wal_bytes": 1 << 30})
    cluster.wait_for_leader()
    client = cluster.client(timeout=30.0)
    added = add_member(cluster, client)
    change = cluster.status_of(1)["commit_index"]  # the ADD_LEARNER entry is at or below this
    for i in range(120):
        client.put(f"k{i}", "v")
    # Node 1 compacts its log past the change: only its snapshot's members frame
    # still says where node `added` lives.
    wait_for(lambda: (cluster.status(1) or {}).get("snapshot_index", 0) > change, 60,
             "node 1 to compact past the membership change")
    cluster.wait_caught_up(added, cluster.status_of(1)["commit_index"])
    for node_id in list(cluster.running()):
        cluster.stop(node_id)
    # The added node comes back first, with nobody to ask: it relies on its disk.
    cluster.start(added)
    wait_for(lambda: "restarting without asking" in cluster.log_text(added), 60, "the added node's own recovery")
    cluster.start(1)
    cluster.start(3)
    # Voters 1, 2, 3 and `added`; node 2 stays down, so every write needs all three
    # others: the leader reaches node `added` at the address its disk gave it.
    writer = cluster.client([cluster.address(i) for i in (1, 3, added)], timeout=60.0)
    writer.put("after-restart", "yes")
    restarted = cluster.log_text(1).split("received SIGTERM")[-1]
    assert f"connected to node {added}" in restarted
    assert writer.get("after-restart") is not None


def test_a_removed_member_that_keeps_running_does_not_disturb_the_cluster(
        make_cluster: Callable[..., LocalCluster]) -> None:
    # Election timeout 1-2 s: on a loaded machine a shorter one lets a stalled
    # heartbeat start an election that has nothing to do with the removed node.
    cluster = make_cluster(3, timing={"tick_ms": 10, "election_ticks": 100, "heartbeat_ticks": 3,
                                      "request_timeout_ms": 5000})
    leader = cluster.wait_for_leader()
    client = cluster.client(timeout=30.0)
    client.put("before", "1")
    removed = next(i for i in (1, 2, 3) if i != leader)
    client.member_remove(removed)  # the process keeps running, and never hears of its removal
    term = cluster.status_of(leader)["term"]
    # Until it has timed out and tried to campaign, and a while longer.
    wait_for(lambda: "pre-candidate" in cluster.log_text(removed), 30, f"node {removed} to try an election")
    deadline = time.monotonic() + 3.0
    writes = 0
    while time.monotonic() < deadline:
        client.put(f"during-{writes}", "x")
        writes += 1
    st = cluster.status_of(leader)
    assert st["role"] == "leader" and st["term"] == term, st
    assert sorted(st["voters"]) == sorted({1, 2, 3} - {removed})
    assert st["dropped"].get("peer-misaddressed", 0) > 0  # its campaign reached no one
    assert cluster.status_of(removed)["role"] != "leader"  # still running, leading nothing
    assert writes > 10


def test_move_leader_to_a_chosen_voter_and_refuse_a_learner_or_an_unknown_id(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.wait_for_leader()
    client = cluster.client(timeout=30.0)
    learner = cluster.new_member()
    cluster.start(learner.id)
    client.member_add(learner.id, learner.peer, learner.client)
    endpoints = ",".join(cluster.address(i) for i in (1, 2, 3))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cluster", "--endpoints", endpoints, "--timeout", "30", *args],
                              capture_output=True, text=True, timeout=60)
    target = next(i for i in (1, 2, 3) if i != leader)
    moved = cli("move-leader", str(target))
    assert moved.returncode == 0, moved.stderr
    assert f"moved to node {target}" in moved.stdout
    assert cluster.leader() == target
    refused = cli("move-leader", str(learner.id))
    assert refused.returncode == 1 and "learner" in refused.stderr, refused
    unknown = cli("move-leader", "99")
    assert unknown.returncode == 1 and "not a member" in unknown.stderr, unknown
    with pytest.raises(InvalidRequestError, match="not a member"):
        client.move_leader(99)
    # Changes that make no sense are refused with the core's reason (exit 1, etcdctl's ExitError).
    again = cli("member", "promote", str(target))
    assert again.returncode == 1 and f"cannot promote node {target}" in again.stderr, again
    gone = cli("member", "remove", "99")
    assert gone.returncode == 1 and "cannot remove node 99: not a member" in gone.stderr, gone
    listed = cli("member", "list", "-w", "json")
    rows = {m["id"]: m for m in __import__("json").loads(listed.stdout)["members"]}
    assert rows[learner.id]["role"] == "learner" and rows[learner.id]["lag"] is not None
    assert rows[target]["is_leader"] and rows[target]["role"] == "voter"
    assert cluster.leader() == target


def test_a_removed_id_is_never_added_again(make_cluster: Callable[..., LocalCluster]) -> None:
    """A fresh node under a removed id could vote as its old incarnation while it
    replays history (simulator seed 3245 with --reuse-ids): the leader refuses."""
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    client.member_add(4, "tcp://127.0.0.1:9", "tcp://127.0.0.1:9")  # a learner that never comes
    client.member_remove(4)
    with pytest.raises(InvalidRequestError, match="ids are never reused"):
        client.member_add(4, "tcp://127.0.0.1:9", "tcp://127.0.0.1:9")
    assert 4 not in client.members()["learners"] + client.members()["voters"]


def test_add_voter_without_a_client_address_then_update_a_members_addresses(
        make_cluster: Callable[..., LocalCluster]) -> None:
    """etcd's MemberAdd (peer URLs only, no --learner) and MemberUpdate: the new
    member votes from the start and catches up like any follower; an update changes
    only what it names and leaves the configuration as it is."""
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    assert client.put("before", "1") is not None
    member = cluster.new_member()
    cluster.start(member.id)
    added = client.member_add(member.id, member.peer, grpc="http://127.0.0.1:9304", voter=True)
    assert member.id in added["voters"]
    row = next(r for r in added["members"] if r["id"] == member.id)
    assert (row["peer"], row["client"], row["grpc"], row["gateway"]) == (member.peer, "", "http://127.0.0.1:9304", "")
    assert client.put("after", "2") is not None  # 3 of 4 voters: the new one counts at once

    with Client([member.client], timeout=2, attempt_timeout=1) as direct:
        def caught_up() -> bool:
            got = _try(lambda: direct.get("after", serializable=True))
            return got is not None and got.value == b"2"
        wait_for(caught_up, 60, f"node {member.id} to hold the log", interval=0.1)

    before = members_of(client)
    peer2 = next(r for r in before["members"] if r["id"] == 2)["peer"]
    updated = client.member_update(2, peer2, grpc="http://127.0.0.1:9302", gateway="http://127.0.0.1:9402")
    row2 = next(r for r in updated["members"] if r["id"] == 2)
    assert (row2["peer"], row2["grpc"], row2["gateway"]) == (peer2, "http://127.0.0.1:9302", "http://127.0.0.1:9402")
    assert row2["client"] == cluster.address(2), "an update keeps what it leaves empty"
    assert sorted(updated["voters"]) == sorted(before["voters"]) and updated["learners"] == before["learners"]
    with pytest.raises(InvalidRequestError, match="not a member"):
        client.member_update(99, "tcp://127.0.0.1:9")
    assert client.put("last", "3") is not None
