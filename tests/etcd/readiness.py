"""When a test cluster's etcd faces can all be called.

A leader can be elected by two members while the third process is still
starting, so `wait_for_leader` alone does not mean every gRPC port is bound.
A member's face is bound before its node answers anything, so a status answer
from every member does mean it. (The `etcd_cluster` fixture could do this.)"""
from __future__ import annotations

from node.localcluster import LocalCluster


def every_face_up(cluster: LocalCluster) -> int:
    """Wait until every member answers; the leader."""
    for node_id in cluster.ids:
        cluster.status_of(node_id)
    return cluster.wait_for_leader()
