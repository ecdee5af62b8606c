"""etcd's services, made once per face and registered on its gRPC server; the
JSON gateway calls the same objects (one implementation per RPC)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.etcdpb import rpc_pb2_grpc, v3election_pb2_grpc, v3lock_pb2_grpc
from node.etcd.auth import AuthService
from node.etcd.calls import guarded
from node.etcd.cluster import ClusterService
from node.etcd.convert import MAX_TXN_OPS
from node.etcd.credentials import Credentials
from node.etcd.election import ElectionService
from node.etcd.header import Headers
from node.etcd.kv import KvService
from node.etcd.lease import LeaseService
from node.etcd.link import NodeLink
from node.etcd.lock import LockService
from node.etcd.maintenance import MaintenanceService
from node.etcd.recipes import Store
from node.etcd.watch import WatchService


@dataclass(frozen=True, slots=True)
class Services:
    kv: KvService
    lease: LeaseService
    auth: AuthService
    cluster: ClusterService
    maintenance: MaintenanceService
    watch: WatchService
    lock: LockService
    election: ElectionService


def add_services(server: Any, link: NodeLink, headers: Headers, min_lease_ttl: int = 1,
                 credentials: Credentials | None = None, max_txn_ops: int = MAX_TXN_OPS) -> Services:
    """The services of one face, registered on `server` (None: the gateway alone).
    `credentials`: how a call's auth token is found (one for the face: the
    tokens it got for certificate names are shared by every service)."""
    credentials = credentials or Credentials(link)
    kv = guarded(KvService(link, headers, credentials, max_txn_ops))
    watch = guarded(WatchService(link, headers, credentials=credentials))
    store = Store(kv, watch.lanes, headers)  # the recipes' waits share the Watch service's lanes
    services = Services(kv=kv,
                        lease=guarded(LeaseService(link, headers, min_lease_ttl, credentials)),
                        auth=guarded(AuthService(link, headers, credentials)),
                        cluster=guarded(ClusterService(link, headers, credentials)),
                        maintenance=guarded(MaintenanceService(link, headers, credentials)),
                        watch=watch,
                        lock=guarded(LockService(store)),
                        election=guarded(ElectionService(store)))
    if server is not None:
        rpc_pb2_grpc.add_KVServicer_to_server(services.kv, server)
        rpc_pb2_grpc.add_LeaseServicer_to_server(services.lease, server)
        rpc_pb2_grpc.add_AuthServicer_to_server(services.auth, server)
        rpc_pb2_grpc.add_ClusterServicer_to_server(services.cluster, server)
        rpc_pb2_grpc.add_MaintenanceServicer_to_server(services.maintenance, server)
        rpc_pb2_grpc.add_WatchServicer_to_server(services.watch, server)
        v3lock_pb2_grpc.add_LockServicer_to_server(services.lock, server)
        v3election_pb2_grpc.add_ElectionServicer_to_server(services.election, server)
    return services
