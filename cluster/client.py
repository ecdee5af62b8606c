"""A minimal synchronous jangada client.

    with Client(["tcp://127.0.0.1:7201", "tcp://127.0.0.1:7202"]) as c:
        c.put(b"k", b"v")
        c.get(b"k")                      # linearizable (ReadIndex through the leader)
        c.get(b"k", serializable=True)   # served by whichever node answers: maybe stale

How it finds the leader: it sends to one endpoint; a follower answers
`not-leader` naming the leader's client address and the client goes there (and
remembers it); `no-leader-yet` makes it back off and try the next endpoint; no
answer within `attempt_timeout` makes it drop the socket (so nothing stale is
delivered later) and try the next endpoint. The whole call gives up at `timeout`
with `ClientTimeout`, whose meaning is "outcome unknown".

Authentication (etcd's model, docs/operations.md): `Client(..., user=, password=)`
authenticates before its first request and sends the token with every request
(and names the user in every command it builds; on a cluster with auth disabled
it goes on without a token, as etcd's clientv3 does); when the token expires the
cluster answers InvalidAuthToken before doing anything, and the client
authenticates again and resends, so the caller never notices. `token=` uses a
token obtained elsewhere. Auth refusals raise the `cluster.kv.errors.AuthError`
with etcd's message (e.g. PermissionDenied: "etcdserver: permission denied").
The password is kept only to re-authenticate: never logged, never in a message.

Exactly-once writes: the first write opens a session (its client id is the log
index of the OpenSession entry) and every write carries (client_id, seq). A retry
re-sends the very same bytes, so however many times it reaches a leader, across
leader changes, the state machine applies it once and returns the first result.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

import zmq

from cluster.curve_keys import CurveClient, curve_client_for, discover_curve
from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmResponse, AlarmType
from cluster.kv import (
    ALL_KEYS_END, Compact, CompactResponse, Compare, DeleteRange, DeleteResponse, KeyValue, KvError,
    LeaseGrant, LeaseGrantResponse, LeaseKeepAlive, LeaseKeepAliveResponse, LeaseLeases,
    LeaseLeasesResponse, LeaseRevoke, LeaseRevokeResponse, LeaseTimeToLive, LeaseTimeToLiveResponse, Op,
    OpenSession, Put, PutResponse, Range, RangeResponse, Request, Response, ResultDecodeError,
    SessionOpened, SortOrder, SortTarget, Txn, TxnResponse, decode_result, encode_command, is_read_only,
    prefix_end,
)
from cluster.kv.auth import (
    AuthDisable, AuthDone, AuthEnable, Authenticate, AuthenticateResponse, AuthRequest, AuthStatus,
    AuthStatusResponse, Permission, PermType, RoleAdd, RoleDelete, RoleGet, RoleGetResponse, RoleGrantPermission,
    RoleList, RoleListResponse, RoleRevokePermission, UserAdd, UserChangePassword, UserDelete, UserGet,
    UserGetResponse, UserGrantRole, UserList, UserListResponse, UserRevokeRole,
)
from cluster.kv.errors import AlarmError, AuthError, AuthNotEnabled, InvalidAuthToken
from cluster.protocol import (
    ClientRequest, ConfChangeRequest, JointChangeRequest, DropTrafficRequest, ErrorCode, ErrorReply, HashRequest, KvReply, KvRequest,
    MembersReply, MembersRequest, ProtocolError, Reply, SnapshotFileRequest, SnapshotReadRequest, StatusReply,
    StatusRequest, TransferRequest, decode_replies, encode_request,
)
from cluster.snapshot_download import SnapshotDownload, SnapshotMismatch, SnapshotSaved
from cluster.errors import (  # noqa: F401  (re-exported: callers catch them from here)
    ClientError, ClientTimeout, CompactedError, InvalidRequestError, LeaseNotFoundError, RefusedError,
    SessionExpiredError, UnexpectedReply, WatchCompactedError,
)
from cluster.spec import ClusterSpec
from cluster.watch import Watch, WatchResponse  # noqa: F401  (re-exported)

T = TypeVar("T")
#: Times `snapshot` starts again when the member replaced its file under it.
SNAPSHOT_ATTEMPTS = 3
#: `snapshot` gives up on a member silent this long, whatever its deadline.
SNAPSHOT_SILENCE_S = 10.0

#: How long an attempt waits for a connection to the node (loopback connects in
#: about a millisecond; a node that is down refuses at once and never connects).
CONNECT_WAIT_S = 0.1
#: While waiting for a reply, the connection is checked this often, so a node
#: killed mid-request costs this much instead of the whole attempt timeout.
LIVENESS_SLICE_S = 0.02
#: ZMTP heartbeats on the request socket: a node that stops answering without
#: closing the connection (a partition drops its packets silently, or it is
#: paused) loses the connection after at most about IVL + TIMEOUT, which the
#: liveness check above sees, so the client moves to another member in well under
#: a second instead of waiting out `attempt_timeout`. Pongs come from the node's
#: ZeroMQ I/O thread, so a node merely busy (fsync, a long apply) keeps answering.
HEARTBEAT_IVL_MS = 200
HEARTBEAT_TIMEOUT_MS = 600
#: Backoff between attempts while there is no leader: short, since an election
#: takes a few hundred milliseconds and asking a follower costs one round trip.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.01, 0.1

Key = bytes | str


def _b(key: Key) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _raise_auth_error(reply: ErrorReply) -> None:
    """Raise the AuthError or AlarmError (NoSpace, Corrupt) a refusal carries
    (etcd's exact type and message), if it carries one."""
    try:
        error = decode_result(reply.kv_error)
    except ResultDecodeError:
        return
    if isinstance(error, (AuthError, AlarmError)):
        raise error


class Client:
    def __init__(self, endpoints: Sequence[str], *, timeout: float = 10.0, attempt_timeout: float = 2.0,
                 exactly_once: bool = True, curve: CurveClient | None = None, user: str = "",
                 password: str = "", token: str = "") -> None:
        """`curve`: the members' CURVE public keys, for a `[curve]` cluster; by
        default those of the cluster the supervisor started here, if it is secure
        (cluster/discovery.py), else none (plaintext). `user`/`password` (or a
        `token`): authenticate, and act as that user (docs/security.md)."""
        if not endpoints:
            raise ValueError("a client needs at least one endpoint")
        if password and not user:
            raise ValueError("a password needs a user")
        #: The user every command acts for ("" = none: auth disabled, or a `token` alone).
        self.user = user
        self._password = password
        self._token = token
        #: Whether requests carry a token: one attribute check on the hot path.
        self._auth = bool(user or token)
        self._need_token = bool(user) and not token  # authenticate before the next request
        self._token_lock = threading.Lock()  # a watch's thread may renew the token
        self.endpoints = list(endpoints)
        self.curve = curve if curve is not None else discover_curve()
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.exactly_once = exactly_once
        self._ctx = zmq.Context()
        self._socket: zmq.Socket[bytes] | None = None
        self._socket_endpoint = ""
        self._endpoint = self.endpoints[0]
        self._rotation = itertools.cycle(self.endpoints)
        # Random base: request ids of two clients (or two runs) never collide.
        self._ids = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)
        self.client_id = 0
        self._seq = 0
        self._unanswered = 0  # attempts of the last admin request that got no answer
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()  # closed with the client

    @classmethod
    def from_spec(cls, spec: ClusterSpec, **options: Any) -> Client:
        if spec.curve.enabled:
            options.setdefault("curve", curve_client_for(spec.members))
        return cls(spec.client_addresses(), **options)

    # -- what a watch borrows from its client (cluster.watch.WatchHost) -------------

    @property
    def endpoint(self) -> str:
        """The endpoint the next request goes to: the leader's, once one redirected here."""
        return self._endpoint

    @property
    def context(self) -> zmq.Context[zmq.Socket[bytes]]:
        """The ZeroMQ context the client's sockets (and its watches') live in."""
        return self._ctx

    def next_request_id(self) -> int:
        """A request id unique to this client (and, by its random base, to this run)."""
        return next(self._ids)

    @property
    def token(self) -> str:
        """The auth token requests carry ("" = none); authenticates first if needed."""
        if self._need_token:
            self._authenticate()
        return self._token

    def renew_token(self, stale: str) -> str:
        """A fresh token in place of `stale` (which the cluster called invalid), safe
        from another thread (a watch's): authenticates through a client of its own,
        unless another caller renewed it meanwhile. Raises the cluster's InvalidAuthToken
        when there is no password to authenticate with."""
        def through_own_client(user: str, password: str) -> str:
            with Client(self.endpoints, timeout=self.timeout, attempt_timeout=self.attempt_timeout,
                        exactly_once=False, curve=self.curve) as fresh:
                return fresh._request_token(user, password)
        return self._renew(stale, through_own_client)

    def _renew(self, stale: str, request_token: Callable[[str, str], str]) -> str:
        with self._token_lock:
            if self._token != stale:
                return self._token  # renewed meanwhile
            if not (self.user and self._password):
                raise InvalidAuthToken()
            self._token = request_token(self.user, self._password)
            return self._token

    # -- authentication ----------------------------------------------------------

    def authenticate(self, user: str, password: str) -> str:
        """Authenticate as `user` (etcd's Authenticate): from now on requests carry the
        token and commands name `user`; returns the token. AuthNotEnabled when the
        cluster has auth disabled, AuthFailed for a wrong name or password."""
        with self._token_lock:
            self._token = self._request_token(user, password)
            self.user, self._password = user, password
            self._auth, self._need_token = True, False
        return self._token

    def _authenticate(self) -> None:
        """Before the first request. A cluster with auth disabled answers
        AuthNotEnabled: then the client goes on without a token, as etcd's clientv3
        (and so etcdctl --user) does; the node ignores the user its commands name."""
        with self._token_lock:
            try:
                self._token = self._request_token(self.user, self._password)
            except AuthNotEnabled:
                self._token = ""
            self._need_token = False

    def _request_token(self, user: str, password: str) -> str:
        """One Authenticate exchange (never carrying a token, never logged)."""
        request_id = next(self._ids)
        frame = encode_request(KvRequest(request_id, encode_command(Authenticate(user, password))))

        def answer(reply: Reply, target: str) -> Response:
            if isinstance(reply, KvReply):
                return self._decode(reply)
            raise UnexpectedReply(f"{target} answered Authenticate with a {type(reply).__name__}")

        result = self._exchange(frame, request_id, time.monotonic() + self.timeout, answer)
        if not isinstance(result, AuthenticateResponse):
            raise UnexpectedReply(f"Authenticate answered with a {type(result).__name__}")
        return result.token

    def _authenticated(self, send: Callable[[str], T]) -> T:
        """`send(token)`, and once more with a fresh token if the cluster says the
        token expired: InvalidAuthToken is refused before anything is proposed, so
        the request certainly did not happen and resending is safe (writes carry
        the same session bytes besides)."""
        token = self.token
        try:
            return send(token)
        except InvalidAuthToken:
            if not (self.user and self._password):
                raise
            return send(self._renew(token, self._request_token))  # this thread owns the socket

    def _encode(self, request: Request, client_id: int = 0, seq: int = 0) -> bytes:
        """The command bytes, naming this client's user when it has one (without
        a user: the bytes as before auth existed, the put fast path included)."""
        return encode_command(request, client_id, seq, self.user)

    # -- the key-value API ---------------------------------------------------------

    def put(self, key: Key, value: bytes | str, *, lease: int = 0, prev_kv: bool = False,
            ignore_value: bool = False, ignore_lease: bool = False) -> PutResponse:
        """Set `key`; `ignore_value`/`ignore_lease` keep the key's current value/lease
        (etcd's, with an empty value/no lease; KeyNotFound if the key is missing)."""
        result = self._write(Put(_b(key), _b(value), lease, prev_kv, ignore_value, ignore_lease))
        assert isinstance(result, PutResponse)
        return result

    def get(self, key: Key, *, revision: int = 0, serializable: bool = False) -> KeyValue | None:
        result = self.range(key, revision=revision, serializable=serializable)
        return result.kvs[0] if result.kvs else None

    def range(self, key: Key, range_end: Key = b"", *, prefix: bool = False, revision: int = 0, limit: int = 0,
              keys_only: bool = False, count_only: bool = False, sort_target: SortTarget = SortTarget.KEY,
              sort_order: SortOrder = SortOrder.NONE, serializable: bool = False) -> RangeResponse:
        key, end = self._span(key, range_end, prefix)
        request = Range(key, end, revision, limit, keys_only, count_only, sort_target, sort_order)
        result, ser = self._call(self._encode(request), serializable)
        assert isinstance(result, RangeResponse)
        return replace(result, serializable=ser)

    def delete(self, key: Key, range_end: Key = b"", *, prefix: bool = False, prev_kv: bool = False) -> DeleteResponse:
        key, end = self._span(key, range_end, prefix)
        result = self._write(DeleteRange(key, end, prev_kv))
        assert isinstance(result, DeleteResponse)
        return result

    def txn(self, compares: Iterable[Compare] = (), success: Iterable[Op] = (),
            failure: Iterable[Op] = ()) -> TxnResponse:
        request = Txn(tuple(compares), tuple(success), tuple(failure))
        if is_read_only(request):
            result, _ = self._call(self._encode(request), False)
        else:
            result = self._write(request)
        assert isinstance(result, TxnResponse)
        return result

    def compact(self, revision: int) -> CompactResponse:
        result = self._write(Compact(revision))
        assert isinstance(result, CompactResponse)
        return result

    # -- alarms (etcd's Maintenance.Alarm; docs/operations.md, "Space") ------------------

    def alarm_list(self) -> tuple[AlarmMember, ...]:
        """Every raised alarm (through the log, as etcd's AlarmList)."""
        result = self._write(Alarm(AlarmAction.GET))
        assert isinstance(result, AlarmResponse)
        return result.alarms

    def alarm_disarm(self, member_id: int = 0, alarm: AlarmType = AlarmType.NONE) -> tuple[AlarmMember, ...]:
        """Clear an alarm; with no member and NONE, every raised one (clientv3's
        AlarmDisarm lists them, then disarms each). Returns what was disarmed."""
        if member_id == 0 and alarm is AlarmType.NONE:
            return tuple(a for raised in self.alarm_list() for a in self.alarm_disarm(raised.member_id, raised.alarm))
        result = self._write(Alarm(AlarmAction.DEACTIVATE, member_id, alarm))
        assert isinstance(result, AlarmResponse)
        return result.alarms

    # -- leases (etcd v3 semantics; docs/leases.md) ------------------------------------

    def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        """A new lease of `ttl` seconds (`lease_id` 0: the cluster picks the id)."""
        result = self._write(LeaseGrant(ttl, lease_id))
        assert isinstance(result, LeaseGrantResponse)
        return result

    def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse:
        """Delete the lease and all its keys (one revision); LeaseNotFoundError if gone."""
        result = self._write(LeaseRevoke(lease_id))
        assert isinstance(result, LeaseRevokeResponse)
        return result

    def lease_keepalive(self, lease_id: int) -> LeaseKeepAliveResponse:
        """Renew once (answered by the leader); LeaseNotFoundError if it expired."""
        result, _ = self._call(self._encode(LeaseKeepAlive(lease_id)), False)
        assert isinstance(result, LeaseKeepAliveResponse)
        return result

    def lease_time_to_live(self, lease_id: int, keys: bool = False) -> LeaseTimeToLiveResponse:
        result, _ = self._call(self._encode(LeaseTimeToLive(lease_id, keys)), False)
        assert isinstance(result, LeaseTimeToLiveResponse)
        return result

    def lease_list(self, serializable: bool = False) -> LeaseLeasesResponse:
        """Every lease id (from the leader; `serializable`: whichever node answers,
        from its applied state, possibly stale)."""
        result, _ = self._call(self._encode(LeaseLeases()), serializable)
        assert isinstance(result, LeaseLeasesResponse)
        return result

    def lease(self, ttl: int, lease_id: int = 0) -> Lease:
        """Grant a lease and keep it alive from a background thread until
        `Lease.close()` (see `Lease`)."""
        return Lease(self.endpoints, ttl, lease_id, attempt_timeout=self.attempt_timeout, curve=self.curve,
                     credentials=(self.user, self._password, self._token))

    def status(self, endpoint: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """One node's status (the current endpoint's by default); no retries."""
        request_id = next(self._ids)
        target = endpoint or self._endpoint
        reply = self._attempt(target, encode_request(StatusRequest(request_id, self.token)), request_id,
                              timeout or self.attempt_timeout)
        if reply is None:
            raise ClientTimeout(f"no status from {target}")
        if isinstance(reply, ErrorReply):
            self._raise_if_final(reply)
        if not isinstance(reply, StatusReply):
            raise UnexpectedReply(f"{target} answered a status request with {reply!r}")
        return reply.status

    def hash_kv(self, revision: int = 0, endpoint: str | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        """One member's HashKV (etcd's Maintenance.HashKV): {"hash", "revision",
        "compact_revision", "member_id"} of its key-value history up to `revision`
        (0: its current one), from the current endpoint by default; no retries
        (each member answers for itself). A compacted or future revision raises
        the KV API's error (CompactedError, InvalidRequestError)."""
        request_id = next(self._ids)
        target = endpoint or self._endpoint
        request = HashRequest(request_id, revision, token=self.token)
        reply = self._attempt(target, encode_request(request), request_id, timeout or self.attempt_timeout)
        if reply is None:
            raise ClientTimeout(f"no answer from {target} to hashkv")
        if isinstance(reply, ErrorReply):
            self._raise_if_final(reply)
            raise UnexpectedReply(f"{target}: {reply.code.value}: {reply.reason}")
        if not isinstance(reply, StatusReply):
            raise UnexpectedReply(f"{target} answered hashkv with {reply!r}")
        return {**reply.status, "member_id": reply.node_id}

    def drop_traffic(self, endpoint: str, peers: Sequence[int], seconds: float,
                     direction: str = "both", timeout: float | None = None) -> dict[str, Any]:
        """Fault injection: ask the node at `endpoint` to drop peer traffic with `peers`
        for `seconds` (0 lifts it); returns its status. No retries."""
        request_id = next(self._ids)
        request = DropTrafficRequest(request_id, tuple(peers), float(seconds), direction, token=self.token)
        reply = self._attempt(endpoint, encode_request(request), request_id, timeout or self.attempt_timeout)
        if reply is None:
            raise ClientTimeout(f"no answer from {endpoint} to drop-traffic")
        if isinstance(reply, ErrorReply):
            self._raise_if_final(reply)
        if not isinstance(reply, StatusReply):
            raise UnexpectedReply(f"{endpoint} answered drop-traffic with {reply!r}")
        return reply.status

    def watch(self, key: Key, range_end: Key = b"", *, prefix: bool = False, start_revision: int | None = None,
              prev_kv: bool = False, progress_notify: bool = True, progress_interval: float = 1.0) -> Watch:
        """Watch a key, a prefix or [key, range_end) from `start_revision` (None: from
        now). Returns a `cluster.watch.Watch`: iterate it (or call `get(timeout)`) for
        `WatchResponse`s; close it (or use `with`). See docs/watch.md."""
        key_bytes, end = self._span(key, range_end, prefix)
        if not key_bytes and not end:
            raise InvalidRequestError("the key must not be empty (use prefix=True with b'' for every key)")
        watch = Watch(self, key_bytes, end, start_revision=start_revision, prev_kv=prev_kv,
                      progress_notify=progress_notify, progress_interval=progress_interval)
        self._watches.add(watch)
        return watch

    # -- users, roles and authentication (etcd's Auth service; cluster/kv/auth.py) ------

    def auth_enable(self) -> AuthDone:
        """Turn authentication on: RootUserNotExist / RootRoleNotExist until the root
        user exists with the root role (the CLI's `auth enable` adds the role)."""
        return self._auth_change(AuthEnable())

    def auth_disable(self) -> AuthDone:
        return self._auth_change(AuthDisable())

    def auth_status(self) -> AuthStatusResponse:
        return self._auth_read(AuthStatus(), AuthStatusResponse)

    def user_add(self, name: str, password: str = "", no_password: bool = False) -> AuthDone:
        """Add user `name` with `password` (hashed by the node before it is logged), or
        with none (`no_password`: it can only authenticate by TLS client certificate)."""
        return self._auth_change(UserAdd(name, "" if no_password else password, no_password=no_password))

    def user_get(self, name: str) -> UserGetResponse:
        return self._auth_read(UserGet(name), UserGetResponse)

    def user_list(self) -> UserListResponse:
        return self._auth_read(UserList(), UserListResponse)

    def user_delete(self, name: str) -> AuthDone:
        return self._auth_change(UserDelete(name))

    def user_change_password(self, name: str, password: str) -> AuthDone:
        return self._auth_change(UserChangePassword(name, password))

    def user_grant_role(self, user: str, role: str) -> AuthDone:
        return self._auth_change(UserGrantRole(user, role))

    def user_revoke_role(self, user: str, role: str) -> AuthDone:
        return self._auth_change(UserRevokeRole(user, role))

    def role_add(self, name: str) -> AuthDone:
        return self._auth_change(RoleAdd(name))

    def role_get(self, role: str) -> RoleGetResponse:
        return self._auth_read(RoleGet(role), RoleGetResponse)

    def role_list(self) -> RoleListResponse:
        return self._auth_read(RoleList(), RoleListResponse)

    def role_delete(self, role: str) -> AuthDone:
        return self._auth_change(RoleDelete(role))

    def role_grant_permission(self, role: str, perm_type: PermType | str, key: Key,
                              range_end: Key = b"") -> AuthDone:
        """Let `role` read, write or both (`perm_type`: a PermType or "read", "write",
        "readwrite") on `key`, or on [key, range_end) (range_end b"\\0": every key
        from `key` on; `prefix_end(key)`: the prefix)."""
        if isinstance(perm_type, str):
            try:
                perm_type = PermType[perm_type.upper()]
            except KeyError:
                raise ValueError(f"permission type must be read, write or readwrite, not {perm_type!r}") from None
        return self._auth_change(RoleGrantPermission(role, Permission(perm_type, _b(key), _b(range_end))))

    def role_revoke_permission(self, role: str, key: Key, range_end: Key = b"") -> AuthDone:
        """Remove the permission on exactly [key, range_end) from `role`."""
        return self._auth_change(RoleRevokePermission(role, _b(key), _b(range_end)))

    def _auth_change(self, request: AuthRequest) -> AuthDone:
        result = self._write(request)
        if not isinstance(result, AuthDone):
            raise UnexpectedReply(f"{type(request).__name__} answered with a {type(result).__name__}")
        return result

    def _auth_read(self, request: AuthRequest, expected: type[T]) -> T:
        result, _ = self._call(self._encode(request), False)
        if not isinstance(result, expected):
            raise UnexpectedReply(f"{type(request).__name__} answered with a {type(result).__name__}")
        return result

    # -- membership ------------------------------------------------------------------

    def members(self, leader: bool = True) -> dict[str, Any]:
        """The membership: voters, learners, each member's addresses and (from the
        leader) each learner's lag. `leader=False` takes any node's view."""
        return self._admin(lambda rid: MembersRequest(rid, leader))

    def member_add(self, node_id: int, peer: str, client: str = "", *, grpc: str = "", gateway: str = "",
                   voter: bool = False) -> dict[str, Any]:
        """Add `node_id` as a learner (or, with `voter`, straight as a voter, as etcd's
        MemberAdd without --learner) reachable at `peer`, and at `client`, `grpc` and
        `gateway` where given ("" = none); returns the membership once applied."""
        change = "add-voter" if voter else "add-learner"
        return self._conf_change(ConfChangeRequest(0, change, node_id, peer, client, grpc, gateway),
                                 lambda m: node_id in m.get("learners", []) + m.get("voters", []))

    def member_update(self, node_id: int, peer: str, client: str = "", *, grpc: str = "",
                      gateway: str = "") -> dict[str, Any]:
        """Give member `node_id` new addresses (etcd's MemberUpdate): `peer`, and any of
        `client`, `grpc`, `gateway` given (the others stay); returns the membership once
        applied."""
        def done(m: dict[str, Any]) -> bool:
            return any(row.get("id") == node_id and row.get("peer") == peer for row in m.get("members", []))
        return self._conf_change(ConfChangeRequest(0, "update", node_id, peer, client, grpc, gateway), done)

    def member_joint_change(self, changes: list[ConfChangeRequest], auto_leave: bool = True) -> dict[str, Any]:
        """Several changes (add-learner, add-voter, promote, remove) in one joint
        step (a jangada extension, docs/raft-core.md); returns the membership once
        the joint configuration is entered (left by itself with `auto_leave`).
        RefusedError while a learner to promote lags. cluster/cli_member_change.py
        drives the whole change."""
        return self._admin(lambda rid: JointChangeRequest(rid, tuple(changes), auto_leave))

    def member_promote(self, node_id: int) -> dict[str, Any]:
        """Make learner `node_id` a voter (RefusedError while it lags)."""
        return self._conf_change(ConfChangeRequest(0, "promote", node_id),
                                 lambda m: node_id in m.get("voters", []))

    def member_remove(self, node_id: int) -> dict[str, Any]:
        """Remove `node_id` (a voter, a learner, or the leader itself)."""
        return self._conf_change(ConfChangeRequest(0, "remove", node_id),
                                 lambda m: node_id not in m.get("learners", []) + m.get("voters", []))

    def _conf_change(self, request: ConfChangeRequest, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """A conf change is not idempotent: if an attempt went unanswered (e.g. the
        leader removing itself took longer than `attempt_timeout`) a retry may be told
        `invalid-request` (already added / not a member) for the very change the
        unanswered attempt made. Then, and only then, the leader's member list decides."""
        try:
            return self._admin(lambda rid: replace(request, request_id=rid))
        except InvalidRequestError:
            if self._unanswered:
                members = self.members()
                if done(members):
                    return members
            raise

    def move_leader(self, to: int, poll: float = 0.05) -> dict[str, Any]:
        """Transfer leadership to voter `to` and wait (until `timeout`) until it leads;
        returns the membership as the new leader reports it. A transfer the core gave
        up on (one election timeout) is asked for again while time remains."""
        deadline = time.monotonic() + self.timeout
        while True:
            members = self.members()
            if members.get("leader_id") == to and members.get("from_leader"):
                return members
            if time.monotonic() >= deadline:
                raise ClientTimeout(f"node {to} did not become the leader within {self.timeout}s")
            self._admin(lambda rid: TransferRequest(rid, to), deadline=deadline)
            settle = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < settle:
                time.sleep(poll)
                try:
                    members = self.members()
                except ClientTimeout:
                    continue
                if members.get("leader_id") == to and members.get("from_leader"):
                    return members

    def _admin(self, make: Callable[[int], ClientRequest], deadline: float | None = None) -> dict[str, Any]:
        """An admin request: follow redirects, back off on busy / no leader, raise
        typed errors for final answers. A `timeout` reply is final (unknown outcome)."""
        request_id = next(self._ids)
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        self._unanswered = 0

        def silence() -> None:
            self._unanswered += 1  # it may have been delivered and acted on

        def answer(reply: Reply, target: str) -> dict[str, Any]:
            if isinstance(reply, MembersReply):
                return reply.members
            if isinstance(reply, StatusReply):
                return reply.status
            raise UnexpectedReply(f"{target} answered with {reply!r}")

        def refused(reply: ErrorReply, target: str) -> None:
            if reply.code is ErrorCode.REFUSED:
                raise RefusedError(reply.reason)
            if reply.code is ErrorCode.TIMEOUT:
                raise ClientTimeout(f"{target}: {reply.reason}")

        def send(token: str) -> dict[str, Any]:
            request = make(request_id)
            frame = encode_request(replace(request, token=token) if token else request)
            return self._exchange(frame, request_id, deadline, answer, refused, silence)

        return self._authenticated(send)

    # -- snapshots (etcd's Maintenance.Snapshot) ---------------------------------------

    def snapshot(self, sink: BinaryIO, endpoint: str | None = None) -> SnapshotSaved:
        """A consistent point-in-time snapshot of the whole store from ONE member
        (`endpoint`, by default the first, as etcdctl's): its snapshot file covering
        everything it applied before the call (written now if its newest one does
        not), copied into `sink` (seekable: emptied on a restart) in bounded pieces
        and verified against the file's SHA-256 (SnapshotMismatch). Needs root while
        auth is on. Raises ClientTimeout after `timeout`."""
        target = endpoint or self.endpoints[0]
        deadline = time.monotonic() + self.timeout
        status = self._on_member(target, lambda rid, tok: StatusRequest(rid, tok), deadline)
        applied = int(status.status["applied_index"])
        gone = "no attempt made"
        for _ in range(SNAPSHOT_ATTEMPTS):
            found = self._on_member(target, lambda rid, tok: SnapshotFileRequest(rid, applied, tok), deadline)
            index = int(found.status["index"])
            sink.seek(0)
            sink.truncate()
            download = SnapshotDownload(sink)
            try:
                while not download.take(self._on_member(
                        target, lambda rid, tok: SnapshotReadRequest(rid, index, download.offset, token=tok),
                        deadline).status):
                    pass
            except InvalidRequestError as error:  # the member pruned that file: take its newer one
                gone = str(error)
                continue
            return download.saved(found.node_id)
        raise SnapshotMismatch(f"{target} replaced its snapshot {SNAPSHOT_ATTEMPTS} times during the copy ({gone})")

    def _on_member(self, target: str, make: Callable[[int, str], ClientRequest], deadline: float) -> StatusReply:
        """One request to `target` only (no redirect, no other endpoint), asked again
        while it is silent or busy, until `deadline`."""
        def send(token: str) -> StatusReply:
            backoff = BACKOFF_FIRST_S
            last = "no attempt made"
            heard = time.monotonic()
            while (remaining := deadline - time.monotonic()) > 0:
                request_id = next(self._ids)
                reply = self._attempt(target, encode_request(make(request_id, token)), request_id,
                                      min(self.attempt_timeout, remaining))
                if isinstance(reply, StatusReply):
                    return reply
                if reply is None:
                    last = f"no answer from {target}"
                    if time.monotonic() - heard > SNAPSHOT_SILENCE_S:
                        break  # down, or not a member at all: a long deadline is for a busy one
                    continue
                heard = time.monotonic()
                if isinstance(reply, ErrorReply):
                    self._raise_if_final(reply)
                    last = f"{target}: {reply.code.value}: {reply.reason}"
                    if reply.code not in (ErrorCode.BUSY, ErrorCode.NO_LEADER_YET, ErrorCode.TOO_MANY_REQUESTS):
                        raise UnexpectedReply(last)
                else:
                    raise UnexpectedReply(f"{target} answered with {reply!r}")
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            raise ClientTimeout(f"no definite answer (last: {last})")

        return self._authenticated(send)

    @staticmethod
    def _span(key: Key, range_end: Key, prefix: bool) -> tuple[bytes, bytes]:
        key = _b(key)
        if prefix:
            return (key or ALL_KEYS_END), prefix_end(key)
        return key, _b(range_end)

    # -- sessions and retries ------------------------------------------------------

    def _write(self, request: Request) -> Response:
        if not self.exactly_once:
            return self._call(self._encode(request), False)[0]
        if not self.client_id:
            opened, _ = self._call(self._encode(OpenSession()), False)
            if not isinstance(opened, SessionOpened):
                raise UnexpectedReply(f"OpenSession answered with {opened!r}")
            self.client_id, self._seq = opened.client_id, 0
        self._seq += 1
        return self._call(self._encode(request, self.client_id, self._seq), False)[0]

    def _call(self, command: bytes, serializable: bool) -> tuple[Response, bool]:
        """Send `command` until a definite answer or the deadline. Every attempt
        carries the same bytes, so retried writes are deduplicated by the session."""
        request_id = next(self._ids)
        def answer(reply: Reply, target: str) -> tuple[Response, bool]:
            if isinstance(reply, KvReply):
                return self._decode(reply), reply.serializable
            raise UnexpectedReply(f"{target} answered with {reply!r}")

        if not self._auth:  # the common case: auth disabled
            frame = encode_request(KvRequest(request_id, command, serializable))
            return self._exchange(frame, request_id, time.monotonic() + self.timeout, answer)

        def send(token: str) -> tuple[Response, bool]:
            frame = encode_request(KvRequest(request_id, command, serializable, token))
            return self._exchange(frame, request_id, time.monotonic() + self.timeout, answer)

        return self._authenticated(send)

    def _exchange(self, frame: bytes, request_id: int, deadline: float, answer: Callable[[Reply, str], T],
                  refused: Callable[[ErrorReply, str], None] | None = None,
                  silence: Callable[[], None] | None = None) -> T:
        """Send `frame` until a definite answer or the deadline: follow redirects to
        the leader, move on from silent nodes, back off while there is no leader.
        `answer` turns a reply into the result, `refused` raises for error codes
        final to the caller, `silence` hears of each unanswered attempt. Every
        attempt carries the same bytes, so retried writes are deduplicated."""
        backoff = BACKOFF_FIRST_S
        last = "no attempt made"
        while (remaining := deadline - time.monotonic()) > 0:
            target = self._endpoint
            reply = self._attempt(target, frame, request_id, min(self.attempt_timeout, remaining))
            if reply is None:
                if silence is not None:
                    silence()
                last = f"no answer from {target}"
                self._endpoint = self._next_endpoint(target)
                continue
            if not isinstance(reply, ErrorReply):
                return answer(reply, target)
            last = f"{target}: {reply.code.value}: {reply.reason}"
            self._raise_if_final(reply)
            if refused is not None:
                refused(reply, target)
            if reply.code is ErrorCode.NOT_LEADER and reply.leader_client:
                self._endpoint = reply.leader_client
                if reply.leader_client not in self.endpoints:
                    self.endpoints.append(reply.leader_client)
                continue
            if reply.code in (ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET):
                self._endpoint = self._next_endpoint(target)
            time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        raise ClientTimeout(f"no definite answer within {self.timeout}s (last: {last})")

    @staticmethod
    def _raise_if_final(reply: ErrorReply) -> None:
        if reply.kv_error and reply.code in (ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_REQUEST):
            _raise_auth_error(reply)
        if reply.code is ErrorCode.UNAUTHORIZED:
            raise UnexpectedReply(f"node {reply.node_id} refused for an auth reason it did not name: {reply.reason}")
        if reply.code is ErrorCode.INVALID_REQUEST:
            raise InvalidRequestError(reply.reason)
        if reply.code is ErrorCode.COMPACTED:
            raise CompactedError(reply.reason)
        if reply.code is ErrorCode.SESSION_EXPIRED:
            raise SessionExpiredError(reply.reason)
        if reply.code is ErrorCode.LEASE_NOT_FOUND:
            raise LeaseNotFoundError(reply.reason)

    @staticmethod
    def _decode(reply: KvReply) -> Response:
        try:
            result = decode_result(reply.result)
        except ResultDecodeError as error:
            raise UnexpectedReply(str(error)) from None
        if isinstance(result, KvError):  # a node sends failures as ErrorReply, never inside a result
            raise UnexpectedReply(f"a result holding an error: {result!r}")
        return result

    def _next_endpoint(self, current: str) -> str:
        for _ in range(len(self.endpoints) + 1):
            candidate = next(self._rotation)
            if candidate != current or len(self.endpoints) == 1:
                return candidate
        return current

    # -- sockets -----------------------------------------------------------------------

    def _attempt(self, endpoint: str, frame: bytes, request_id: int,
                 timeout: float) -> KvReply | StatusReply | ErrorReply | MembersReply | None:
        """One send and the wait for its reply; None (and a fresh socket next time)
        when nothing usable arrives in time."""
        socket = self._connect(endpoint)
        # The socket is IMMEDIATE: writable only over a live connection. A node that
        # is down refuses the connection, so this fails fast instead of waiting out
        # the attempt; a node killed while we wait drops the connection, which the
        # loop below notices within one slice.
        if not socket.poll(max(1, int(min(timeout, CONNECT_WAIT_S) * 1000)), zmq.POLLOUT):
            self._reset()
            return None
        try:
            socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            self._reset()
            return None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not socket.poll(max(1, int(min(left, LIVENESS_SLICE_S) * 1000)), zmq.POLLIN):
                if not socket.getsockopt(zmq.EVENTS) & zmq.POLLOUT:
                    break  # the connection is gone: the node died or restarted
                continue
            try:
                replies = decode_replies(socket.recv(zmq.NOBLOCK))
            except (ProtocolError, zmq.Again):
                continue
            for reply in replies:
                if reply.request_id == request_id:
                    return reply
        self._reset()  # drop queued requests: an unanswered one must not leave later
        return None

    def _connect(self, endpoint: str) -> zmq.Socket[bytes]:
        if self._socket is not None and self._socket_endpoint == endpoint:
            return self._socket
        self._reset()
        socket = self._ctx.socket(zmq.DEALER)
        if self.curve is not None:
            self.curve.secure(socket, endpoint)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 1000)
        socket.setsockopt(zmq.RCVHWM, 1000)
        socket.setsockopt(zmq.IMMEDIATE, 1)
        socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        socket.connect(endpoint)
        self._socket, self._socket_endpoint = socket, endpoint
        return socket

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        self._reset()
        for watch in list(self._watches):
            watch.close()
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Lease:
    """A granted lease kept alive by a background thread, as etcd's clientv3
    KeepAlive: a keepalive every TTL/3 through its own `Client` (ZeroMQ sockets
    belong to one thread). `lost` is set when the cluster says the lease is gone,
    or when no keepalive succeeded before the TTL last granted ran out: from then
    on its keys may be deleted at any moment. `close()` stops the keepalives and,
    by default, revokes the lease (deleting its keys at once).

        with client.lease(10) as lease:
            client.put("service/a", "up", lease=lease.id)
    """

    def __init__(self, endpoints: Sequence[str], ttl: int, lease_id: int = 0, *,
                 attempt_timeout: float = 1.0, curve: CurveClient | None = None,
                 credentials: tuple[str, str, str] = ("", "", "")) -> None:
        user, password, token = credentials  # the granting client's: (user, password, token)
        self._client = Client(endpoints, timeout=max(1.0, ttl / 3), attempt_timeout=min(attempt_timeout, 1.0),
                              curve=curve, user=user, password=password, token=token)
        sent = time.monotonic()
        try:
            granted = self._client.lease_grant(ttl, lease_id)
        except BaseException:
            self._client.close()
            raise
        self.id, self.ttl = granted.id, granted.ttl
        self.lost = threading.Event()
        self.keepalives = 0  # successful renewals so far
        #: When the last successful grant or keepalive was sent (time.monotonic()):
        #: the cluster's deadline for the lease is at least this + ttl.
        self.renewed_at = sent
        self._expires = sent + granted.ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_alive, name=f"lease-{self.id:x}", daemon=True)
        self._thread.start()

    def _keep_alive(self) -> None:
        interval = max(self.ttl / 3, 0.05)
        while not self._stop.wait(interval):
            sent = time.monotonic()
            try:
                renewed = self._client.lease_keepalive(self.id)
            except LeaseNotFoundError:
                self.lost.set()
                return
            except ClientError:
                if time.monotonic() >= self._expires:
                    self.lost.set()
                    return
                interval = 0.1  # retry soon: the TTL is running
                continue
            self._expires = sent + renewed.ttl
            self.renewed_at = sent
            self.keepalives += 1
            interval = max(self.ttl / 3, 0.05)

    def close(self, revoke: bool = True) -> None:
        """Stop the keepalives; revoke the lease unless `revoke` is False (then it
        expires after its TTL) or it is already lost."""
        self._stop.set()
        self._thread.join()
        try:
            if revoke and not self.lost.is_set():
                try:
                    self._client.lease_revoke(self.id)
                except LeaseNotFoundError:
                    pass  # expired meanwhile: its keys are gone either way
        finally:
            self._client.close()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
