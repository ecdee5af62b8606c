"""The etcdserverpb.Auth service while jangada has no authentication (issue 15).

jangada's state is always etcd's "auth disabled, no users, no roles", so every
RPC whose etcd 3.4 answer in that state is determined is answered exactly as
etcd answers it (auth/store.go, etcdserver/v3_server.go, apply.go):

* Authenticate: FAILED_PRECONDITION "etcdserver: authentication is not enabled".
  This is the answer clientv3 expects: a client configured with a user and
  password treats it as "no token needed" and goes on (clientv3/client.go
  getToken, retry_interceptor.go), so `etcdctl --user=...` works unchanged.
* AuthDisable: success (etcd's is a no-op when auth is not enabled).
* UserList, RoleList: success with no names.
* UserGet, UserDelete, UserChangePassword, UserGrantRole, UserRevokeRole:
  "etcdserver: user name not found"; RoleGet, RoleDelete, RoleGrantPermission,
  RoleRevokePermission: "etcdserver: role name not found" (no user or role
  exists, and etcd looks the name up before anything else).
* UserAdd / RoleAdd with an empty name: etcd's "user name is empty" / "role
  name is empty" (checked before anything is written).

What would change the state (UserAdd, RoleAdd, AuthEnable) jangada cannot do:
UNIMPLEMENTED with a message that says so, rather than a success that did
nothing or one of etcd's errors that would send a client looking for a cause
that is not there (AuthEnable's "root user does not exist" would make
etcdctl's `auth enable` try to create the root role and fail anyway).

etcd sends these RPCs through its log, so they need a leader; these answers
depend on nothing replicated and are given by any member at once. (etcd 3.4 has
no AuthStatus RPC; it came with 3.5.)
"""
from __future__ import annotations

from typing import Any

import grpc

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from node.etcd import errors
from node.etcd.header import Headers
from node.etcd.link import NodeLink

USER_EMPTY = errors.EtcdStatus(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty")
USER_NOT_FOUND = errors.EtcdStatus(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: user name not found")
ROLE_EMPTY = errors.EtcdStatus(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: role name is empty")
ROLE_NOT_FOUND = errors.EtcdStatus(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: role name not found")
NOT_SUPPORTED = errors.EtcdStatus(errors.UNIMPLEMENTED,
                                  "etcdserver: jangada does not support authentication yet (issue 15)")


def _no_user() -> errors.EtcdError:
    return errors.EtcdError(USER_NOT_FOUND)


def _no_role() -> errors.EtcdError:
    return errors.EtcdError(ROLE_NOT_FOUND)


class AuthService(rpc_pb2_grpc.AuthServicer):
    def __init__(self, link: NodeLink, headers: Headers) -> None:
        self._link = link
        self._headers = headers

    async def _header(self) -> rpc_pb2.ResponseHeader:
        """At this member's revision, as etcd's header after applying the request."""
        status = await self._link.status()
        return self._headers.make(int(status.get("revision", 0)))

    # -- what etcd answers in jangada's state --------------------------------------------

    async def Authenticate(self, request: rpc_pb2.AuthenticateRequest, context: Any) -> rpc_pb2.AuthenticateResponse:
        raise errors.EtcdError(errors.AUTH_NOT_ENABLED)

    async def AuthDisable(self, request: rpc_pb2.AuthDisableRequest, context: Any) -> rpc_pb2.AuthDisableResponse:
        return rpc_pb2.AuthDisableResponse(header=await self._header())

    async def UserList(self, request: rpc_pb2.AuthUserListRequest, context: Any) -> rpc_pb2.AuthUserListResponse:
        return rpc_pb2.AuthUserListResponse(header=await self._header(), users=[])

    async def RoleList(self, request: rpc_pb2.AuthRoleListRequest, context: Any) -> rpc_pb2.AuthRoleListResponse:
        return rpc_pb2.AuthRoleListResponse(header=await self._header(), roles=[])

    async def UserGet(self, request: rpc_pb2.AuthUserGetRequest, context: Any) -> rpc_pb2.AuthUserGetResponse:
        raise _no_user()

    async def UserDelete(self, request: rpc_pb2.AuthUserDeleteRequest,
                         context: Any) -> rpc_pb2.AuthUserDeleteResponse:
        raise _no_user()

    async def UserChangePassword(self, request: rpc_pb2.AuthUserChangePasswordRequest,
                                 context: Any) -> rpc_pb2.AuthUserChangePasswordResponse:
        raise _no_user()

    async def UserGrantRole(self, request: rpc_pb2.AuthUserGrantRoleRequest,
                            context: Any) -> rpc_pb2.AuthUserGrantRoleResponse:
        raise _no_user()

    async def UserRevokeRole(self, request: rpc_pb2.AuthUserRevokeRoleRequest,
                             context: Any) -> rpc_pb2.AuthUserRevokeRoleResponse:
        raise _no_user()

    async def RoleGet(self, request: rpc_pb2.AuthRoleGetRequest, context: Any) -> rpc_pb2.AuthRoleGetResponse:
        raise _no_role()

    async def RoleDelete(self, request: rpc_pb2.AuthRoleDeleteRequest, context: Any) -> rpc_pb2.AuthRoleDeleteResponse:
        raise _no_role()

    async def RoleGrantPermission(self, request: rpc_pb2.AuthRoleGrantPermissionRequest,
                                  context: Any) -> rpc_pb2.AuthRoleGrantPermissionResponse:
        raise _no_role()

    async def RoleRevokePermission(self, request: rpc_pb2.AuthRoleRevokePermissionRequest,
                                   context: Any) -> rpc_pb2.AuthRoleRevokePermissionResponse:
        raise _no_role()

    # -- what would change the state: not yet ----------------------------------------------

    async def AuthEnable(self, request: rpc_pb2.AuthEnableRequest, context: Any) -> rpc_pb2.AuthEnableResponse:
        raise errors.EtcdError(NOT_SUPPORTED)

    async def UserAdd(self, request: rpc_pb2.AuthUserAddRequest, context: Any) -> rpc_pb2.AuthUserAddResponse:
        if not request.name:
            raise errors.EtcdError(USER_EMPTY)
        raise errors.EtcdError(NOT_SUPPORTED)

    async def RoleAdd(self, request: rpc_pb2.AuthRoleAddRequest, context: Any) -> rpc_pb2.AuthRoleAddResponse:
        if not request.name:
            raise errors.EtcdError(ROLE_EMPTY)
        raise errors.EtcdError(NOT_SUPPORTED)
