"""Joint consensus with real node processes (issue 19): a 3-node cluster under a
recorded workload replaces two of its members -- the leader one of them -- in ONE
joint step; the history must be linearizable with no lost write. Prints the
longest stretch during the change in which no write committed.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from cluster.check import Verdict, check_history, lost_writes
from cluster.cli_member_change import NewMember, change_voters
from cluster.workload import History, Workload, WorkloadOptions, final_reads
from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(150)


def test_replacing_two_members_leader_included_in_one_joint_step_stays_linearizable(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.wait_for_leader()
    admin = cluster.client(timeout=60.0)
    origin = time.monotonic()
    history = History(origin)
    options = WorkloadOptions(clients=3, keys=4, duration=600, op_timeout=2.0, key_prefix="joint/k")
    new = [cluster.new_member(), cluster.new_member()]
    for member in new:
        cluster.start(member.id)
    endpoints = [cluster.address(i) for i in cluster.ids]
    workload = Workload(endpoints, options, history)
    workload.start()
    try:
        time.sleep(1.0)
        other = next(i for i in (1, 2, 3) if i != leader)
        began = time.monotonic() - origin
        lines: list[str] = []
        members = change_voters(admin, [NewMember(m.id, m.peer, m.client) for m in new], [leader, other],
                                time.monotonic() + 90, lines.append)
        ended = time.monotonic() - origin
        remaining = sorted({1, 2, 3, new[0].id, new[1].id} - {leader, other})
        assert sorted(members["voters"]) == remaining and not members.get("voters_outgoing")
        assert any("entered the joint configuration" in line for line in lines)
        wait_for(lambda: cluster.leader() in remaining and cluster.leader(), 60, "a leader among the new voters")
        time.sleep(1.0)
    finally:
        workload.stop()
        workload.join()
    cluster.stop(leader)
    cluster.stop(other)
    ops = list(history.operations)
    final = final_reads([cluster.address(i) for i in remaining], options.key_names(), history, timeout=30.0)
    result = check_history(ops, timeout=30.0, minimize_budget=1.0)
    assert result.verdict is Verdict.LINEARIZABLE, result
    assert lost_writes(ops, final) == []
    commits = sorted(op.complete for op in ops if op.is_mutation and op.outcome.value == "ok"
                     and op.complete is not None and began - 1 <= op.complete <= ended + 1)
    assert len(commits) > 20, "the workload hardly ran during the change"
    gap = max(b - a for a, b in zip(commits, commits[1:]))
    print(f"replace 2 of 3 (leader {leader} and {other}) by {new[0].id}, {new[1].id} in one joint step: "
          f"{ended - began:.2f} s in all; longest stretch without a committed write {gap * 1000:.0f} ms")
