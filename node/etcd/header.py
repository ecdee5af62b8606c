"""etcd's ResponseHeader: which cluster and member answered, at which revision
and Raft term.

etcd's ids are uint64. A jangada member's id is its node id (small, so etcdctl
prints e.g. `3` in hex as `3`); the cluster id is derived from the config's
cluster name (the first 8 bytes of its SHA-256), the same on every member and
stable across restarts, as etcd's is.
"""
from __future__ import annotations

import hashlib

from cluster.etcdpb import rpc_pb2
from node.etcd.link import NodeLink


def cluster_id_of(cluster_name: str) -> int:
    return int.from_bytes(hashlib.sha256(cluster_name.encode()).digest()[:8], "big")


class Headers:
    def __init__(self, cluster_name: str, member_id: int, link: NodeLink) -> None:
        self.cluster_id = cluster_id_of(cluster_name)
        self.member_id = member_id
        self._link = link

    def make(self, revision: int = 0) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(cluster_id=self.cluster_id, member_id=self.member_id,
                                      revision=revision, raft_term=self._link.term)
