"""etcd's services, made once per face and registered on its gRPC server; the
JSON gateway calls the same objects (one implementation per RPC)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.etcdpb import rpc_pb2_grpc, v3election_pb2_grpc, v3lock_pb2_grpc
from node.etcd.calls import guarded
from node.etcd.election import ElectionService
from node.etcd.header import Headers
from node.etcd.kv import KvService
from node.etcd.link import NodeLink
from node.etcd.lock import LockService
from node.etcd.recipes import Store


@dataclass(frozen=True, slots=True)
class Services:
    kv: KvService
    lock: LockService
    election: ElectionService


def add_services(server: Any, link: NodeLink, headers: Headers) -> Services:
    """The services of one face, registered on `server` (None: the gateway alone)."""
    kv = guarded(KvService(link, headers))
    store = Store(kv, link, headers)
    services = Services(kv=kv, lock=guarded(LockService(store)), election=guarded(ElectionService(store)))
    if server is not None:
        rpc_pb2_grpc.add_KVServicer_to_server(services.kv, server)
        v3lock_pb2_grpc.add_LockServicer_to_server(services.lock, server)
        v3election_pb2_grpc.add_ElectionServicer_to_server(services.election, server)
    return services
