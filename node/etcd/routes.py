"""The JSON gateway's routes: etcd 3.4's HTTP paths (the `google.api.http`
annotations of rpc.proto, v3lock.proto and v3election.proto, all POST) and the
RPC each one calls on `Services`.

A route is built only for a service `Services` has, so the gateway serves
exactly what the gRPC server serves. The request class and whether either side
streams come from the method's descriptor, never written twice.

etcd quirk kept: /v3/maintenance/hash is annotated on both Hash and HashKV;
grpc-gateway registers Hash first, so that path calls Hash and HashKV has no
HTTP path in etcd 3.4. Lease's three RPCs are also reachable under their old
/v3/kv/lease/ paths.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from cluster.etcdpb import rpc_pb2, v3election_pb2, v3lock_pb2

#: The prefixes etcd 3.4 answers on: /v3/ and, rewritten to it, /v3beta/
#: (embed/serve.go's accessController); /v3alpha/ was dropped in 3.4.
PREFIXES = ("/v3/", "/v3beta/")

#: (path under /v3/, attribute of Services, proto service, method), in etcd's registration order.
ROUTES_3_4: tuple[tuple[str, str, str, str], ...] = (
    ("kv/range", "kv", "KV", "Range"),
    ("kv/put", "kv", "KV", "Put"),
    ("kv/deleterange", "kv", "KV", "DeleteRange"),
    ("kv/txn", "kv", "KV", "Txn"),
    ("kv/compaction", "kv", "KV", "Compact"),
    ("watch", "watch", "Watch", "Watch"),
    ("lease/grant", "lease", "Lease", "LeaseGrant"),
    ("lease/revoke", "lease", "Lease", "LeaseRevoke"),
    ("kv/lease/revoke", "lease", "Lease", "LeaseRevoke"),
    ("lease/keepalive", "lease", "Lease", "LeaseKeepAlive"),
    ("lease/timetolive", "lease", "Lease", "LeaseTimeToLive"),
    ("kv/lease/timetolive", "lease", "Lease", "LeaseTimeToLive"),
    ("lease/leases", "lease", "Lease", "LeaseLeases"),
    ("kv/lease/leases", "lease", "Lease", "LeaseLeases"),
    ("cluster/member/add", "cluster", "Cluster", "MemberAdd"),
    ("cluster/member/remove", "cluster", "Cluster", "MemberRemove"),
    ("cluster/member/update", "cluster", "Cluster", "MemberUpdate"),
    ("cluster/member/list", "cluster", "Cluster", "MemberList"),
    ("cluster/member/promote", "cluster", "Cluster", "MemberPromote"),
    ("maintenance/alarm", "maintenance", "Maintenance", "Alarm"),
    ("maintenance/status", "maintenance", "Maintenance", "Status"),
    ("maintenance/defragment", "maintenance", "Maintenance", "Defragment"),
    ("maintenance/hash", "maintenance", "Maintenance", "Hash"),
    ("maintenance/snapshot", "maintenance", "Maintenance", "Snapshot"),
    ("maintenance/transfer-leadership", "maintenance", "Maintenance", "MoveLeader"),
    ("auth/enable", "auth", "Auth", "AuthEnable"),
    ("auth/disable", "auth", "Auth", "AuthDisable"),
    ("auth/authenticate", "auth", "Auth", "Authenticate"),
    ("auth/user/add", "auth", "Auth", "UserAdd"),
    ("auth/user/get", "auth", "Auth", "UserGet"),
    ("auth/user/list", "auth", "Auth", "UserList"),
    ("auth/user/delete", "auth", "Auth", "UserDelete"),
    ("auth/user/changepw", "auth", "Auth", "UserChangePassword"),
    ("auth/user/grant", "auth", "Auth", "UserGrantRole"),
    ("auth/user/revoke", "auth", "Auth", "UserRevokeRole"),
    ("auth/role/add", "auth", "Auth", "RoleAdd"),
    ("auth/role/get", "auth", "Auth", "RoleGet"),
    ("auth/role/list", "auth", "Auth", "RoleList"),
    ("auth/role/delete", "auth", "Auth", "RoleDelete"),
    ("auth/role/grant", "auth", "Auth", "RoleGrantPermission"),
    ("auth/role/revoke", "auth", "Auth", "RoleRevokePermission"),
    ("lock/lock", "lock", "Lock", "Lock"),
    ("lock/unlock", "lock", "Lock", "Unlock"),
    ("election/campaign", "election", "Election", "Campaign"),
    ("election/proclaim", "election", "Election", "Proclaim"),
    ("election/leader", "election", "Election", "Leader"),
    ("election/observe", "election", "Election", "Observe"),
    ("election/resign", "election", "Election", "Resign"),
)
_FILES: tuple[FileDescriptor, ...] = (rpc_pb2.DESCRIPTOR, v3lock_pb2.DESCRIPTOR, v3election_pb2.DESCRIPTOR)


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # under /v3/, e.g. "kv/range"
    service: str  # the Services attribute
    method: str  # the RPC's name, the servicer's method
    request_class: type[Message]
    client_streaming: bool
    server_streaming: bool

    def handler(self, services: Any) -> Any:
        return getattr(getattr(services, self.service), self.method)


def _method(service: str, method: str) -> Any:
    for file in _FILES:
        if service in file.services_by_name:
            return file.services_by_name[service].methods_by_name[method]
    raise KeyError(f"no service {service}")


def build_routes(services: Any) -> dict[str, Route]:
    """The routes (keyed by their path under /v3/) for the services present."""
    routes: dict[str, Route] = {}
    for path, attribute, service, name in ROUTES_3_4:
        if getattr(services, attribute, None) is None or path in routes:
            continue
        method = _method(service, name)
        routes[path] = Route(path, attribute, name, GetMessageClass(method.input_type),
                             method.client_streaming, method.server_streaming)
    return routes


def route_path(path: str) -> str | None:
    """The path under /v3/ of an HTTP path on one of etcd's prefixes, else None."""
    for prefix in PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None
