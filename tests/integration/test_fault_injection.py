"""The drop-traffic admin request (what `supervisor chaos --drop` uses): a node
silently drops peer frames like a network partition, for a bounded time."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from cluster.client import InvalidRequestError
from node.localcluster import LocalCluster, wait_for

MakeCluster = Callable[..., LocalCluster]


@pytest.mark.timeout(240)
def test_isolating_the_leader_moves_leadership_and_heals_by_itself(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(fault_injection=True)
    old = cluster.wait_for_leader()
    others = [i for i in cluster.spec.ids if i != old]
    admin = cluster.client()
    status = admin.drop_traffic(cluster.address(old), others, seconds=3.0)
    assert set(status["dropping"]) == {str(i) for i in others}
    # The majority side elects a leader and takes writes; the old leader steps down
    # (CheckQuorum) because it hears nobody.
    majority = cluster.client([cluster.address(i) for i in others])
    majority.put("during-partition", "yes")
    wait_for(lambda: (st := cluster.status(old)) and st["role"] != "leader", 60,
             "the isolated leader to step down")
    # The fault lifts by itself; the old leader rejoins and catches up.
    wait_for(lambda: (st := cluster.status(old)) and not st["dropping"], 60, "the fault to expire")
    commit = majority.status(cluster.address(others[0]))["commit_index"]
    caught_up = cluster.wait_caught_up(old, commit)
    assert caught_up["fault_dropped_frames"] > 0
    got = cluster.client([cluster.address(old)]).get("during-partition", serializable=True)
    assert got is not None and got.value == b"yes"


@pytest.mark.timeout(120)
def test_drop_traffic_refuses_non_peers_and_can_be_lifted(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(fault_injection=True)
    node = cluster.wait_for_leader()
    admin = cluster.client()
    with pytest.raises(InvalidRequestError, match="not a peer"):
        admin.drop_traffic(cluster.address(node), [node], seconds=1.0)
    with pytest.raises(InvalidRequestError, match="not a peer"):
        admin.drop_traffic(cluster.address(node), [99], seconds=1.0)
    other = next(i for i in cluster.spec.ids if i != node)
    assert admin.drop_traffic(cluster.address(node), [other], seconds=600, direction="out")["dropping"]
    assert admin.drop_traffic(cluster.address(node), [other], seconds=0)["dropping"] == {}
