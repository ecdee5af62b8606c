"""The client leaves a dead node without waiting out its attempt timeout: a node
that is down refuses the connection, and one killed mid-request drops it.

Both tests give each attempt far longer (60 s) than the whole call (20 s): a
client that waited for an attempt to time out would fail them."""
from __future__ import annotations

import socket
from collections.abc import Callable

from node.localcluster import LocalCluster

MakeCluster = Callable[..., LocalCluster]


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"  # closed again: nobody listens


def test_an_endpoint_nobody_listens_on_is_skipped_at_once(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    client = cluster.client([_dead_endpoint(), *cluster.spec.client_addresses()],
                            timeout=20.0, attempt_timeout=60.0)
    client.put("k", "v")
    assert client.get("k").value == b"v"


def test_a_leader_killed_under_a_waiting_client_is_left_at_once(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    leader = cluster.wait_for_leader()
    client = cluster.client([cluster.address(leader)] + [cluster.address(n) for n in cluster.spec.ids
                                                         if n != leader],
                            timeout=20.0, attempt_timeout=60.0)
    client.put("before", "1")
    cluster.kill(leader)
    for i in range(20):  # the first waits on the dead leader's socket, then fails over
        client.put(f"after/{i}", str(i))
    assert client.range("after/", prefix=True).count == 20
    assert cluster.leader() != leader
