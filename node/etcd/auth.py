"""The etcdserverpb.Auth service: etcd 3.4's Auth RPCs as the KV API's auth
requests (cluster/kv/auth.py), answered by the node like KV results.

Each RPC becomes one request, acting with the call's token
(node/etcd/credentials.py): the node and its state machine check who may do
what, with etcd's rules and errors (auth/store.go); the face converts and
routes. What etcd puts through its log goes to the leader (the link carries it
there from a follower); the read-only ones (UserGet, UserList, RoleGet,
RoleList) are linearizable reads on this member, and so is Authenticate asked:
the node signs a JWT itself or, with simple tokens, sends it on to the leader,
which checks the password and proposes the token's issue.

Every response carries etcd's header at the revision the result names. etcd 3.4
has no AuthStatus RPC (it came with 3.5): rpc.proto here has none, so the face
serves none.
"""
from __future__ import annotations

from typing import Any

from cluster import kv
from cluster.etcdpb import auth_pb2, rpc_pb2, rpc_pb2_grpc
from cluster.kv import auth
from node.etcd import errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink


def permission(perm: auth_pb2.Permission) -> auth.Permission:
    """authpb.Permission as the KV API's (the same type numbers)."""
    try:
        perm_type = auth.PermType(perm.permType)
    except ValueError:
        raise errors.invalid(f"unknown permission type {perm.permType}") from None
    return auth.Permission(perm_type, perm.key, perm.range_end)


def permission_pb(perm: auth.Permission) -> auth_pb2.Permission:
    return auth_pb2.Permission(permType=auth_pb2.Permission.Type.Name(perm.perm_type), key=perm.key,
                              range_end=perm.range_end)


class AuthService(rpc_pb2_grpc.AuthServicer):
    def __init__(self, link: NodeLink, headers: Headers, credentials: Credentials | None = None) -> None:
        self._link = link
        self._headers = headers
        self._credentials = credentials or Credentials(link)

    async def _run(self, request: Any, context: Any) -> Any:
        """`request`'s result from the node (an auth result), acting with the call's token."""
        # Logged requests go to the leader; reads, and Authenticate, to this member
        # (it checks the password, then signs a JWT itself or, with simple tokens,
        # sends the request on to the leader, which proposes the token's issue).
        here = isinstance(request, (*auth.AUTH_READS, auth.Authenticate))
        command = kv.encode_command(request)

        async def attempt(token: str) -> Any:
            result = kv.decode_result(await self._link.kv(command, leader_only=not here, token=token))
            if isinstance(result, kv.KvError):
                raise errors.from_kv_error(result)
            return result

        return await self._credentials.call(context, attempt)

    async def _done(self, request: Any, context: Any) -> rpc_pb2.ResponseHeader:
        """The header of a change whose response has nothing else."""
        result = await self._run(request, context)
        assert isinstance(result, auth.AuthDone), result
        return self._headers.make(result.revision)

    # -- enabling, tokens ----------------------------------------------------------------

    async def AuthEnable(self, request: rpc_pb2.AuthEnableRequest, context: Any) -> rpc_pb2.AuthEnableResponse:
        return rpc_pb2.AuthEnableResponse(header=await self._done(auth.AuthEnable(), context))

    async def AuthDisable(self, request: rpc_pb2.AuthDisableRequest, context: Any) -> rpc_pb2.AuthDisableResponse:
        return rpc_pb2.AuthDisableResponse(header=await self._done(auth.AuthDisable(), context))

    async def Authenticate(self, request: rpc_pb2.AuthenticateRequest, context: Any) -> rpc_pb2.AuthenticateResponse:
        result = await self._run(auth.Authenticate(request.name, request.password), context)
        assert isinstance(result, auth.AuthenticateResponse), result
        return rpc_pb2.AuthenticateResponse(header=self._headers.make(result.revision), token=result.token)

    # -- users ---------------------------------------------------------------------------

    async def UserAdd(self, request: rpc_pb2.AuthUserAddRequest, context: Any) -> rpc_pb2.AuthUserAddResponse:
        add = auth.UserAdd(request.name, request.password, no_password=request.options.no_password)
        return rpc_pb2.AuthUserAddResponse(header=await self._done(add, context))

    async def UserGet(self, request: rpc_pb2.AuthUserGetRequest, context: Any) -> rpc_pb2.AuthUserGetResponse:
        result = await self._run(auth.UserGet(request.name), context)
        assert isinstance(result, auth.UserGetResponse), result
        return rpc_pb2.AuthUserGetResponse(header=self._headers.make(result.revision), roles=list(result.roles))

    async def UserList(self, request: rpc_pb2.AuthUserListRequest, context: Any) -> rpc_pb2.AuthUserListResponse:
        result = await self._run(auth.UserList(), context)
        assert isinstance(result, auth.UserListResponse), result
        return rpc_pb2.AuthUserListResponse(header=self._headers.make(result.revision), users=list(result.users))

    async def UserDelete(self, request: rpc_pb2.AuthUserDeleteRequest,
                         context: Any) -> rpc_pb2.AuthUserDeleteResponse:
        return rpc_pb2.AuthUserDeleteResponse(header=await self._done(auth.UserDelete(request.name), context))

    async def UserChangePassword(self, request: rpc_pb2.AuthUserChangePasswordRequest,
                                 context: Any) -> rpc_pb2.AuthUserChangePasswordResponse:
        change = auth.UserChangePassword(request.name, request.password)
        return rpc_pb2.AuthUserChangePasswordResponse(header=await self._done(change, context))

    async def UserGrantRole(self, request: rpc_pb2.AuthUserGrantRoleRequest,
                            context: Any) -> rpc_pb2.AuthUserGrantRoleResponse:
        grant = auth.UserGrantRole(request.user, request.role)
        return rpc_pb2.AuthUserGrantRoleResponse(header=await self._done(grant, context))

    async def UserRevokeRole(self, request: rpc_pb2.AuthUserRevokeRoleRequest,
                             context: Any) -> rpc_pb2.AuthUserRevokeRoleResponse:
        revoke = auth.UserRevokeRole(request.name, request.role)
        return rpc_pb2.AuthUserRevokeRoleResponse(header=await self._done(revoke, context))

    # -- roles ---------------------------------------------------------------------------

    async def RoleAdd(self, request: rpc_pb2.AuthRoleAddRequest, context: Any) -> rpc_pb2.AuthRoleAddResponse:
        return rpc_pb2.AuthRoleAddResponse(header=await self._done(auth.RoleAdd(request.name), context))

    async def RoleGet(self, request: rpc_pb2.AuthRoleGetRequest, context: Any) -> rpc_pb2.AuthRoleGetResponse:
        result = await self._run(auth.RoleGet(request.role), context)
        assert isinstance(result, auth.RoleGetResponse), result
        return rpc_pb2.AuthRoleGetResponse(header=self._headers.make(result.revision),
                                           perm=[permission_pb(perm) for perm in result.perms])

    async def RoleList(self, request: rpc_pb2.AuthRoleListRequest, context: Any) -> rpc_pb2.AuthRoleListResponse:
        result = await self._run(auth.RoleList(), context)
        assert isinstance(result, auth.RoleListResponse), result
        return rpc_pb2.AuthRoleListResponse(header=self._headers.make(result.revision), roles=list(result.roles))

    async def RoleDelete(self, request: rpc_pb2.AuthRoleDeleteRequest, context: Any) -> rpc_pb2.AuthRoleDeleteResponse:
        return rpc_pb2.AuthRoleDeleteResponse(header=await self._done(auth.RoleDelete(request.role), context))

    async def RoleGrantPermission(self, request: rpc_pb2.AuthRoleGrantPermissionRequest,
                                  context: Any) -> rpc_pb2.AuthRoleGrantPermissionResponse:
        grant = auth.RoleGrantPermission(request.name, permission(request.perm))
        return rpc_pb2.AuthRoleGrantPermissionResponse(header=await self._done(grant, context))

    async def RoleRevokePermission(self, request: rpc_pb2.AuthRoleRevokePermissionRequest,
                                   context: Any) -> rpc_pb2.AuthRoleRevokePermissionResponse:
        revoke = auth.RoleRevokePermission(request.role, request.key, request.range_end)
        return rpc_pb2.AuthRoleRevokePermissionResponse(header=await self._done(revoke, context))
