"""`python -m supervisor up 3 --netns`: three nodes in three network namespaces on a
private bridge, reached from the host; the leader's link goes down and comes
back; `down` removes every namespace and link the cluster made. One cluster,
one test walking through the steps in order (pytest-xdist could hand separate
tests of a module to different workers, each with a cluster of its own)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.client import Client, ClientError
from supervisor import netns
from supervisor.partitions import NetworkFaults
from tests.supervisor.harness import Session, wait_for
from tests.supervisor.netns_support import leftovers, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces here: {REASON}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Session, netns.NetnsPlan]]:
    session = Session(tmp_path)
    plan = netns.plan_for(session.layout.root, [1, 2, 3])
    try:
        up = session.supervisor("up", "3", "--netns", "--detach", "--timeout", "60")
        assert up.returncode == 0, up.stdout + up.stderr
        assert netns.load(session.layout) == plan
        yield session, plan
    finally:
        session.supervisor("down")
        session.close()
        netns.remove(plan)  # if `down` failed: nothing of ours stays behind


def statuses(session: Session) -> dict[int, dict[str, object]]:
    """Each answering node's status, asked from the host over its namespace address."""
    state = session.state()
    assert state is not None
    answers = {}
    with Client([n.client for n in state.nodes], timeout=1.0, attempt_timeout=0.5) as client:
        for node in state.nodes:
            try:
                answers[node.id] = client.status(node.client, timeout=0.5)
            except ClientError:
                continue
    return answers


def leader(session: Session, among: set[int]) -> int | None:
    leaders = [i for i, s in statuses(session).items() if s["role"] == "leader" and i in among]
    return leaders[0] if len(leaders) == 1 else None


def test_a_netns_cluster_serves_the_host_replaces_a_cut_off_leader_and_down_removes_it_all(cluster) -> None:
    session, plan = cluster
    each_node_has_its_own_namespace_and_address_and_the_cli_reaches_them(session, plan)
    the_leader_cut_off_is_replaced_and_catches_up_after_the_link_returns(session, plan)
    down_removes_every_namespace_and_link_it_made(session, plan)


def each_node_has_its_own_namespace_and_address_and_the_cli_reaches_them(session: Session,
                                                                          plan: netns.NetnsPlan) -> None:
    state = session.state()
    assert state is not None
    host_ns = os.readlink("/proc/self/ns/net")
    node_ns = {n.id: os.readlink(f"/proc/{n.pid}/ns/net") for n in state.nodes}
    assert len(set(node_ns.values())) == 3 and host_ns not in node_ns.values()
    assert [n.client for n in state.nodes] == [f"tcp://{plan.address(i)}:{7200 + i}" for i in (1, 2, 3)]
    assert session.cli("put", "greeting", "hello").returncode == 0
    got = session.cli("get", "greeting")
    assert got.stdout.split() == ["greeting", "hello"], got.stdout + got.stderr


def the_leader_cut_off_is_replaced_and_catches_up_after_the_link_returns(session: Session,
                                                                         plan: netns.NetnsPlan) -> None:
    old = wait_for(lambda: leader(session, {1, 2, 3}), 30, "a leader")
    rest = {1, 2, 3} - {old}
    state = session.state()
    assert state is not None
    faults = NetworkFaults(plan)
    with Client([n.client for n in state.nodes], timeout=20) as client:
        faults.cut(old)
        try:
            new = wait_for(lambda: leader(session, rest), 30, "a new leader among the others")
            client.put(b"after-cut", b"1")  # acknowledged by the two that can still talk
        finally:
            faults.heal_all()

        def caught_up() -> bool:
            s = statuses(session)
            return (len(s) == 3 and s[old]["role"] == "follower" and s[old]["leader_id"] == new
                    and len({n["applied_index"] for n in s.values()}) == 1)
        wait_for(caught_up, 30, f"old leader {old} following {new}, with the same applied index", interval=0.2)
    with Client([f"tcp://{plan.address(old)}:{7200 + old}"], timeout=5) as local:
        kv = local.get(b"after-cut", serializable=True)  # from the old leader's own state
    assert kv is not None and kv.value == b"1"


def down_removes_every_namespace_and_link_it_made(session: Session, plan: netns.NetnsPlan) -> None:
    made = [plan.bridge, *(plan.namespace(i) for i in plan.ids), *(plan.host_veth(i) for i in plan.ids)]
    assert leftovers(made) == made
    down = session.supervisor("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(made) == []
    assert "netns: removed" in down.stdout
