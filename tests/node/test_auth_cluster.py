"""Auth on a real 3-node cluster, through the native protocol with raw requests
(cluster/protocol.py + the cluster/kv codec): root and `auth enable`, a read-only
user, writes refused, tokens that expire, a revoke that takes effect for the next
request, drop-traffic refused without the config switch and for non-root, a
wrong password refused and counted, `auth disable` restoring open access.

One cluster for the module; every test leaves auth on as it found it."""
from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from cluster.kv import ALL_KEYS_END, Put, Range, decode_result, encode_command, prefix_end
from cluster.kv.auth import (
    AuthDisable, AuthEnable, Authenticate, AuthenticateResponse, Permission, PermType, RoleAdd,
    RoleGrantPermission, RoleRevokePermission, UserAdd, UserGrantRole,
)
from cluster.kv.errors import AuthError, AuthFailed, AuthNotEnabled, InvalidAuthToken, PermissionDenied, UserEmpty
from cluster.protocol import (
    DropTrafficRequest, ErrorCode, ErrorReply, HashRequest, KvReply, KvRequest, MembersReply, MembersRequest,
    Reply, StatusReply, WatchCreateRequest, WatchFrame, decode_reply, decode_watch_frame, encode_request,
)
from node.client_routing import FAULTS_OFF
from node.localcluster import LocalCluster

pytestmark = pytest.mark.timeout(180)

TTL_S = 3
TIMING = {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000}
AUTH = {"token_ttl_s": TTL_S, "password_iterations": 1000}
_ids = itertools.count(1)


class Raw:
    """Raw protocol requests to the cluster, following redirects to the leader."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.ctx = zmq.Context()

    def call(self, request_for: Any, node: int | None = None, timeout: float = 20.0) -> Any:
        """`request_for(request_id)` makes the request; sent to `node`, or to the
        leader (redirects followed, no-leader-yet retried)."""
        deadline = time.monotonic() + timeout
        target = node or self.cluster.wait_for_leader()
        while True:
            assert time.monotonic() < deadline, "no answer in time"
            reply = self._once(self.cluster.address(target), request_for(next(_ids)))
            if node is None and isinstance(reply, ErrorReply):
                if reply.code is ErrorCode.NOT_LEADER and reply.leader_id:
                    target = reply.leader_id
                    continue
                if reply.code in (ErrorCode.NO_LEADER_YET, ErrorCode.NOT_LEADER, ErrorCode.TIMEOUT):
                    time.sleep(0.1)
                    target = self.cluster.wait_for_leader()
                    continue
            return reply

    def _once(self, address: str, request: Any) -> Any:
        socket = self.ctx.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            socket.connect(address)
            socket.send(encode_request(request))
            assert socket.poll(10_000), f"no reply from {address}"
            data = socket.recv()
            reply = decode_watch_frame(data) if isinstance(request, WatchCreateRequest) else decode_reply(data)
            assert reply.request_id == request.request_id
            return reply
        finally:
            socket.close()

    def kv(self, body: Any, token: str = "", node: int | None = None) -> Reply:
        data = encode_command(body)
        return self.call(lambda rid: KvRequest(rid, data, False, token), node)

    def ok(self, body: Any, token: str = "") -> Any:
        reply = self.kv(body, token)
        assert isinstance(reply, KvReply), reply
        return decode_result(reply.result)

    def login(self, name: str, password: str) -> str:
        response = self.ok(Authenticate(name, password))
        assert isinstance(response, AuthenticateResponse) and response.token
        return response.token

    def close(self) -> None:
        self.ctx.term()


def refused(reply: Reply, error: type[AuthError]) -> None:
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.UNAUTHORIZED, reply
    assert type(decode_result(reply.kv_error)) is error, reply
    assert reply.reason == error.message


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Raw]:
    with LocalCluster(tmp_path_factory.mktemp("auth"), size=3, timing=TIMING, auth=AUTH) as cluster:
        cluster.start_all()
        cluster.wait_for_leader()
        client = Raw(cluster)
        try:
            for body in (UserAdd("root", password="rootpw"), UserGrantRole("root", "root"),
                         UserAdd("reader", password="readerpw"), RoleAdd("app-reader"),
                         RoleGrantPermission("app-reader", Permission(PermType.READ, b"/app/", prefix_end(b"/app/"))),
                         UserGrantRole("reader", "app-reader"),
                         Put(b"/app/a", b"1"), Put(b"/other/b", b"2"), AuthEnable()):
                client.ok(body)
            yield client
        finally:
            client.close()


def test_a_request_without_a_token_is_refused_once_auth_is_on(raw: Raw) -> None:
    refused(raw.kv(Put(b"/app/a", b"x")), UserEmpty)
    refused(raw.kv(Range(b"/app/a")), UserEmpty)


def test_root_may_do_everything(raw: Raw) -> None:
    root = raw.login("root", "rootpw")
    raw.ok(Put(b"/other/c", b"3"), root)
    result = raw.ok(Range(b"\0", ALL_KEYS_END), root)
    assert {kv.key for kv in result.kvs} >= {b"/app/a", b"/other/b", b"/other/c"}


def test_a_read_only_user_reads_its_range_and_nothing_else(raw: Raw) -> None:
    reader = raw.login("reader", "readerpw")
    assert [kv.value for kv in raw.ok(Range(b"/app/a"), reader).kvs] == [b"1"]
    refused(raw.kv(Put(b"/app/a", b"x"), reader), PermissionDenied)
    refused(raw.kv(Range(b"/other/b"), reader), PermissionDenied)
    # A watch on a range it may not read is refused; on /app/ it is created.
    leader = raw.cluster.wait_for_leader()
    refused(raw.call(lambda rid: WatchCreateRequest(rid, 1, b"/other/", prefix_end(b"/other/"), token=reader),
                     leader), PermissionDenied)
    created = raw.call(lambda rid: WatchCreateRequest(rid, 2, b"/app/", prefix_end(b"/app/"), token=reader),
                       leader)
    assert isinstance(created, WatchFrame) and created.kind == "created", created


def test_every_member_knows_a_simple_token(raw: Raw) -> None:
    reader = raw.login("reader", "readerpw")
    for node in raw.cluster.spec.ids:
        time.sleep(0.2)  # followers apply the issue a moment later
        data = encode_command(Range(b"/app/a"))
        reply = raw.call(lambda rid: KvRequest(rid, data, True, reader), node)  # serializable: from that node
        assert isinstance(reply, KvReply), (node, reply)


def test_a_wrong_password_is_refused_and_counted(raw: Raw) -> None:
    leader = raw.cluster.wait_for_leader()
    before = raw.cluster.status_of(leader)["auth"]["auth_failed"]
    refused(raw.kv(Authenticate("reader", "wrong"), node=leader), AuthFailed)
    refused(raw.kv(Authenticate("nobody", "readerpw"), node=leader), AuthFailed)
    assert raw.cluster.status_of(leader)["auth"]["auth_failed"] == before + 2


def test_an_unknown_token_is_invalid(raw: Raw) -> None:
    refused(raw.kv(Range(b"/app/a"), "no-such.1"), InvalidAuthToken)


def test_tokens_expire_after_their_idle_ttl(raw: Raw) -> None:
    reader = raw.login("reader", "readerpw")
    raw.ok(Range(b"/app/a"), reader)
    time.sleep(TTL_S + 1.5)
    refused(raw.kv(Range(b"/app/a"), reader), InvalidAuthToken)


def test_a_revoked_permission_takes_effect_for_the_next_request(raw: Raw) -> None:
    root = raw.login("root", "rootpw")
    reader = raw.login("reader", "readerpw")
    raw.ok(Range(b"/app/a"), reader)
    raw.ok(RoleRevokePermission("app-reader", b"/app/", prefix_end(b"/app/")), root)
    refused(raw.kv(Range(b"/app/a"), reader), PermissionDenied)
    raw.ok(RoleGrantPermission("app-reader", Permission(PermType.READ, b"/app/", prefix_end(b"/app/"))), root)
    raw.ok(Range(b"/app/a"), reader)


def test_maintenance_is_root_only_and_members_stay_open(raw: Raw) -> None:
    leader = raw.cluster.wait_for_leader()
    reader = raw.login("reader", "readerpw")
    refused(raw.call(lambda rid: HashRequest(rid, token=reader), leader), PermissionDenied)
    root = raw.login("root", "rootpw")
    assert isinstance(raw.call(lambda rid: HashRequest(rid, token=root), leader), StatusReply)
    assert isinstance(raw.call(lambda rid: MembersRequest(rid), leader), MembersReply)


def test_drop_traffic_is_refused_for_non_root_and_without_the_config_switch(raw: Raw) -> None:
    leader = raw.cluster.wait_for_leader()
    other = next(i for i in raw.cluster.spec.ids if i != leader)
    reader = raw.login("reader", "readerpw")
    refused(raw.call(lambda rid: DropTrafficRequest(rid, (other,), 5.0, token=reader), leader), PermissionDenied)
    root = raw.login("root", "rootpw")
    before = raw.cluster.status_of(leader)["auth"]["fault_injection_refused"]
    reply = raw.call(lambda rid: DropTrafficRequest(rid, (other,), 5.0, token=root), leader)
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.INVALID_REQUEST and reply.reason == FAULTS_OFF
    status = raw.cluster.status_of(leader)
    assert status["dropping"] == {} and status["auth"]["fault_injection_refused"] == before + 1


def test_auth_disable_by_root_restores_open_access(raw: Raw) -> None:
    reader = raw.login("reader", "readerpw")
    refused(raw.kv(AuthDisable(), reader), PermissionDenied)
    root = raw.login("root", "rootpw")
    raw.ok(AuthDisable(), root)
    try:
        raw.ok(Put(b"/other/open", b"yes"))  # no token needed
        assert raw.ok(Range(b"/other/open")).kvs[0].value == b"yes"
        refused(raw.kv(Authenticate("root", "rootpw")), AuthNotEnabled)
    finally:
        raw.ok(AuthEnable())  # as the module found it
    refused(raw.kv(Range(b"/other/open")), UserEmpty)
