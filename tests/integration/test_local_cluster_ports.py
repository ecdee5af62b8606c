"""node/localcluster.py's first start: a member whose free port was taken before it
bound it ("Address already in use": two test workers drew the same port) moves the
whole cluster to fresh ports instead of leaving a member that never answers."""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from node.localcluster import PORT_TAKEN, LocalCluster

pytestmark = pytest.mark.timeout(120)


def test_a_member_whose_port_was_taken_moves_the_cluster_to_fresh_ports(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, size=3)
    taken = urlsplit(cluster.spec.member(1).client).port
    assert taken is not None
    thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        thief.bind(("127.0.0.1", taken))
        thief.listen()
        cluster.start_all()
        assert PORT_TAKEN in cluster.log_text(1)  # the first attempt met the taken port
        assert urlsplit(cluster.spec.member(1).client).port != taken
        assert all(cluster.status(node_id) for node_id in cluster.ids)
        cluster.wait_for_leader()
        with cluster.client() as client:
            client.put(b"k", b"v")
            assert client.get(b"k").value == b"v"
    finally:
        thief.close()
        cluster.close()
