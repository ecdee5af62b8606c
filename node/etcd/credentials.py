"""Credentials: which auth token an etcd call acts with.

etcd clients send the token Authenticate gave them as gRPC metadata "token"
(clientv3 on every call, streams included); etcd's JSON gateway forwards the
HTTP `Authorization` header as metadata "authorization" (auth/store.go
AuthInfoFromCtx reads either). The face passes the token on as the native
request's `token` and the node decides (node/client_routing.py): the face
checks nothing itself.

With TLS client-certificate authentication on (etcd's --client-cert-auth) a
call that brings no token acts as the user named by its certificate's common
name (etcd's AuthInfoFromTLS, tried after the token as in v3_server.go). The
face gets a token for that user from its node with the trusted face token
(`"jangada-face-" + face_secret`, valid only for `Authenticate(name=CN,
password="")`), keeps it per name, and gets a new one when the node says the
kept one is no longer good (expired, the user's password changed, auth was
turned off and on). While auth is disabled the node answers AuthNotEnabled and
the name acts with no token, as etcd ignores the certificate then.

The common case (no auth, no client certificates) costs a look through the
call's few metadata pairs.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cluster import kv
from cluster.kv.auth import Authenticate, AuthenticateResponse
from cluster.kv.errors import AuthFailed, AuthNotEnabled
from node.etcd import errors
from node.etcd.link import NodeLink

T = TypeVar("T")

#: The metadata keys a token arrives under: etcd's TokenFieldNameGRPC and
#: TokenFieldNameSwagger (the gateway's Authorization header).
TOKEN_KEYS = ("token", "authorization")
#: The prefix of the trusted face token (COMMON design: the node's ClientRouter).
FACE_TOKEN_PREFIX = "jangada-face-"
#: grpc's auth-context property holding the client certificate's common name.
COMMON_NAME_PROPERTY = "x509_common_name"
#: What the node answers when a certificate's kept token no longer works: get a new one.
STALE = (errors.INVALID_AUTH_TOKEN, errors.USER_EMPTY)
#: A stream fixes its token at its start and cannot ask again with a new one, so
#: it gets a new token for its certificate unless the kept one worked this
#: recently (simple tokens live for the config's idle TTL from their last use,
#: etcd's 5 minutes by default; revocations aside, a recently used one is alive).
STREAM_TOKEN_AGE = 10.0


def presented_token(context: Any) -> str:
    """The token the client sent with the call ("" = none)."""
    for key, value in context.invocation_metadata() or ():
        if key in TOKEN_KEYS:
            return value if isinstance(value, str) else value.decode()
    return ""


def common_name(context: Any) -> str:
    """The CN of the call's verified client certificate ("" = none)."""
    names = (context.auth_context() or {}).get(COMMON_NAME_PROPERTY) or ()
    for name in names:
        return name.decode() if isinstance(name, bytes) else str(name)
    return ""


class Credentials:
    def __init__(self, link: NodeLink, face_secret: str = "", client_cert_auth: bool = False) -> None:
        """`face_secret`: the node's secret for the trusted face token; without it
        certificates name no user (there is no way to get their tokens)."""
        self._link = link
        self._face_token = FACE_TOKEN_PREFIX + face_secret if face_secret else ""
        self.client_cert_auth = client_cert_auth and bool(face_secret)
        self._kept: dict[str, str] = {}  # CN -> its token ("" = auth was not enabled)
        self._worked: dict[str, float] = {}  # CN -> when its kept token last worked (monotonic)
        self._getting: dict[str, asyncio.Task[str]] = {}

    async def token(self, context: Any) -> str:
        """The token a stream (or a call made of several requests) acts with for
        its whole life: for a certificate, one that worked within STREAM_TOKEN_AGE."""
        token = presented_token(context)
        if token or not self.client_cert_auth:
            return token
        name = common_name(context)
        if not name:
            return ""
        kept = self._kept.get(name)
        if kept is not None and time.monotonic() - self._worked.get(name, 0.0) <= STREAM_TOKEN_AGE:
            return kept
        return await self._renew(name)

    async def call(self, context: Any, action: Callable[[str], Awaitable[T]]) -> T:
        """`action(token)` with the call's token; for a token the face got for a
        certificate, once more with a new one if the node found it stale (a
        refused request did nothing, so asking again is safe)."""
        token = presented_token(context)
        if token or not self.client_cert_auth:
            return await action(token)
        name = common_name(context)
        if not name:
            return await action("")
        kept = self._kept.get(name)
        if kept is None:
            kept = await self._renew(name)
        try:
            result = await action(kept)
        except errors.EtcdError as error:
            if error.status not in STALE:
                self._worked[name] = time.monotonic()  # e.g. permission denied: the token is good
                raise
            if self._kept.get(name) == kept:
                self._kept.pop(name, None)
            result = await action(await self._renew(name))
        self._worked[name] = time.monotonic()
        return result

    async def _renew(self, name: str) -> str:
        """A new token for certificate name `name` (one request per name at a time)."""
        task = self._getting.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._authenticate(name))
            self._getting[name] = task
            task.add_done_callback(lambda _: self._getting.pop(name, None))
        return await asyncio.shield(task)

    async def _authenticate(self, name: str) -> str:
        try:
            # To this face's own node, the only one that knows the face token. With
            # JWTs it signs the token itself; with simple tokens a follower sends the
            # request on to the leader, which cannot check another node's face token
            # (open on the node's side: the xfail in tests/etcd/test_tls.py).
            data = await self._link.kv(kv.encode_command(Authenticate(name, "")), token=self._face_token)
        except errors.EtcdError as error:
            if error.status is errors.AUTH_NOT_ENABLED:
                data = kv.encode_result(AuthNotEnabled())
            elif error.status is errors.AUTH_FAILED:
                data = kv.encode_result(AuthFailed())
            else:
                raise
        result = kv.decode_result(data)
        if isinstance(result, AuthNotEnabled):
            token = ""
        elif isinstance(result, AuthFailed):
            # No such user: etcd takes the CN as the user all the same and its
            # permission checks find nobody (auth/store.go isOpPermitted).
            raise errors.EtcdError(errors.PERMISSION_DENIED, f"no user {name!r} for a certificate")
        elif isinstance(result, kv.KvError):
            raise errors.from_kv_error(result)
        else:
            assert isinstance(result, AuthenticateResponse)
            token = result.token
        self._kept[name] = token
        self._worked[name] = time.monotonic()
        return token
