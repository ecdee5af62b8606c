"""The native Client's authentication against a fake node (a ZeroMQ ROUTER in a
thread that answers as a node would): Authenticate before the first request, the
token on every request, the user in every command, one re-authentication when the
token expires, etcd's auth errors raised with etcd's messages, and the password
never shown."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import zmq

from cluster.client import Client
from cluster.kv import OpenSession, Put, PutResponse, Range, RangeResponse, SessionOpened, decode_command, encode_result
from cluster.kv.auth import (
    AuthDone, AuthEnable, Authenticate, AuthenticateResponse, Permission, PermType, RoleGrantPermission, UserAdd,
    UserList, UserListResponse,
)
from cluster.kv.errors import AuthFailed, AuthNotEnabled, InvalidAuthToken, KvError, PermissionDenied
from cluster.protocol import (
    ClientRequest, ErrorCode, ErrorReply, KvReply, KvRequest, MembersReply, MembersRequest, Reply,
    WatchCreateRequest, decode_requests, encode_reply,
)

pytestmark = pytest.mark.timeout(20)

Seen = tuple[ClientRequest, object]  # the request and, for a KvRequest, its decoded Command


class FakeNode:
    """Answers KvRequests with `answer(command, token)` (a Result or a KvError to
    refuse with UNAUTHORIZED), members requests with an empty membership; records
    every request it got."""

    def __init__(self, answer: Callable[[object, str], object],
                 watch_answer: Callable[[WatchCreateRequest], KvError | None] = lambda request: None) -> None:
        self.answer = answer
        self.watch_answer = watch_answer
        self.seen: list[Seen] = []
        self._ctx = zmq.Context()
        self._socket = self._ctx.socket(zmq.ROUTER)
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(20):
                continue
            peer, frame = self._socket.recv_multipart()
            for request in decode_requests(frame):
                reply = self._reply(request)  # type: ignore[arg-type]
                if reply is not None:
                    self._socket.send_multipart([peer, encode_reply(reply)])

    def _reply(self, request: ClientRequest) -> Reply | None:
        if isinstance(request, KvRequest):
            command = decode_command(request.command)
            self.seen.append((request, command))
            result = self.answer(command, request.token)
            if isinstance(result, KvError):
                return ErrorReply(request.request_id, 1, ErrorCode.UNAUTHORIZED, str(result),
                                  kv_error=encode_result(result))
            return KvReply(request.request_id, 1, encode_result(result))  # type: ignore[arg-type]
        self.seen.append((request, None))
        if isinstance(request, WatchCreateRequest):
            refusal = self.watch_answer(request)
            if refusal is None:
                return None  # created: the fake sends no frames
            return ErrorReply(request.request_id, 1, ErrorCode.UNAUTHORIZED, str(refusal),
                              kv_error=encode_result(refusal))
        if isinstance(request, MembersRequest):
            return MembersReply(request.request_id, 1, {"members": []})
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close(linger=0)
        self._ctx.term()


class Cluster:
    """Auth state for the fake: users' passwords, live tokens, what a token proves."""

    def __init__(self) -> None:
        self.passwords = {"alice": "pw-alice"}
        self.tokens: dict[str, str] = {}
        self.issued = 0
        self.enabled = True
        self.denied: set[bytes] = set()

    def answer(self, command: object, token: str) -> object:
        request = command.request  # type: ignore[attr-defined]
        if isinstance(request, Authenticate):
            if not self.enabled:
                return AuthNotEnabled()
            if self.passwords.get(request.name) != request.password:
                return AuthFailed()
            self.issued += 1
            new = f"token-{self.issued}"
            self.tokens[new] = request.name
            return AuthenticateResponse(1, new)
        if self.enabled and token not in self.tokens:
            return InvalidAuthToken()
        if isinstance(request, OpenSession):
            return SessionOpened(77)
        if isinstance(request, Put):
            return PermissionDenied() if request.key in self.denied else PutResponse(11)
        if isinstance(request, Range):
            return RangeResponse(11, (), 0, False)
        if isinstance(request, UserList):
            return UserListResponse(11, ("alice", "root"))
        return AuthDone(12, 5)

    def watch_answer(self, request: WatchCreateRequest) -> KvError | None:
        if request.token not in self.tokens:
            return InvalidAuthToken()
        return PermissionDenied() if request.key in self.denied else None


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def node(cluster: Cluster) -> Iterator[FakeNode]:
    fake = FakeNode(cluster.answer, cluster.watch_answer)
    try:
        yield fake
    finally:
        fake.close()


def kv_seen(node: FakeNode) -> list[tuple[type, str, str]]:
    """(request type, token, command user) of every KvRequest, in order."""
    return [(type(command.request), request.token, command.user)  # type: ignore[attr-defined]
            for request, command in node.seen if isinstance(request, KvRequest)]


def test_authenticates_first_then_carries_token_and_user(node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        client.put("k", "v")
        client.get("k")
    assert kv_seen(node) == [(Authenticate, "", ""), (OpenSession, "token-1", "alice"),
                             (Put, "token-1", "alice"), (Range, "token-1", "alice")]


def test_admin_and_watch_requests_carry_the_token(node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5, attempt_timeout=0.3) as client:
        client.members()
        watch = client.watch("k")
        watch.get(timeout=0.3)  # sends the create (the fake never answers it)
        watch.close()
    members = [r for r, _ in node.seen if isinstance(r, MembersRequest)]
    creates = [r for r, _ in node.seen if isinstance(r, WatchCreateRequest)]
    assert members and all(r.token == "token-1" for r in members)
    assert creates and all(r.token == "token-1" for r in creates)


def test_an_expired_token_is_renewed_once_without_the_caller_noticing(cluster: Cluster, node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        client.put("a", "1")
        cluster.tokens.clear()  # every token expired
        assert client.put("b", "2") == PutResponse(11)
        assert client.user_list().users == ("alice", "root")
    seen = kv_seen(node)
    put_b = [(token, user) for kind, token, user in seen if kind is Put][1:]
    assert put_b == [("token-1", "alice"), ("token-2", "alice")]  # refused, then resent with the new token
    assert [kind for kind, _, _ in seen].count(Authenticate) == 2
    # the resent write is the very same command: the session deduplicates it
    puts = [command for request, command in node.seen
            if isinstance(request, KvRequest) and isinstance(command.request, Put)]  # type: ignore[attr-defined]
    assert puts[1] == puts[2]


def test_a_token_refused_twice_raises(cluster: Cluster, node: FakeNode) -> None:
    cluster.answer = lambda command, token: (  # type: ignore[method-assign]
        AuthenticateResponse(1, "t") if isinstance(command.request, Authenticate)  # type: ignore[attr-defined]
        else InvalidAuthToken())
    node.answer = cluster.answer
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        with pytest.raises(InvalidAuthToken, match="etcdserver: invalid auth token"):
            client.get("k")


def test_a_token_alone_is_sent_and_not_renewed(cluster: Cluster, node: FakeNode) -> None:
    cluster.tokens["given"] = "alice"
    with Client([node.endpoint], token="given", timeout=5) as client:
        client.get("k")
        cluster.tokens.clear()
        with pytest.raises(InvalidAuthToken):
            client.get("k")
    assert kv_seen(node) == [(Range, "given", ""), (Range, "given", "")]


def test_permission_denied_is_raised_with_etcds_message(cluster: Cluster, node: FakeNode) -> None:
    cluster.denied.add(b"secret")
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        with pytest.raises(PermissionDenied) as refused:
            client.put("secret", "x")
    assert str(refused.value) == "etcdserver: permission denied"


def test_with_auth_disabled_a_client_with_a_user_goes_on_without_a_token(cluster: Cluster, node: FakeNode) -> None:
    """As etcd's clientv3 (etcdctl --user on such a cluster succeeds); asking
    explicitly (`authenticate`) raises the cluster's answer."""
    cluster.enabled = False
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        client.get("k")
        client.put("k", "v")
        with pytest.raises(AuthNotEnabled, match="etcdserver: authentication is not enabled"):
            client.authenticate("alice", "pw-alice")
    assert kv_seen(node) == [(Authenticate, "", ""), (Range, "", "alice"), (OpenSession, "", "alice"),
                             (Put, "", "alice"), (Authenticate, "", "")]


def test_wrong_password_fails_without_showing_it(node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="not-the-password", timeout=5) as client:
        with pytest.raises(AuthFailed) as failed:
            client.get("k")
        assert "not-the-password" not in str(failed.value) + repr(failed.value)
        assert "not-the-password" not in repr(client) + str(vars(client).get("user"))


def test_auth_methods_build_etcds_requests(node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5) as client:
        assert client.user_add("bob", "pw-bob") == AuthDone(12, 5)
        client.role_grant_permission("r", "readwrite", "/app/", "/app0")
        client.auth_enable()
    requests = [command.request for request, command in node.seen  # type: ignore[attr-defined]
                if isinstance(request, KvRequest)]
    assert UserAdd("bob", "pw-bob") in requests
    assert RoleGrantPermission("r", Permission(PermType.READWRITE, b"/app/", b"/app0")) in requests
    assert AuthEnable() in requests


def test_a_password_needs_a_user() -> None:
    with pytest.raises(ValueError, match="a password needs a user"):
        Client(["tcp://127.0.0.1:1"], password="x")


def test_without_auth_nothing_changes(cluster: Cluster, node: FakeNode) -> None:
    cluster.enabled = False
    with Client([node.endpoint], timeout=5) as client:
        client.put("k", "v")
    assert kv_seen(node) == [(OpenSession, "", ""), (Put, "", "")]


def test_a_watch_renews_an_expired_token_and_creates_again(cluster: Cluster, node: FakeNode) -> None:
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5, attempt_timeout=0.5) as client:
        client.get("k")
        cluster.tokens.clear()
        with client.watch("k") as watch:
            assert watch.get(timeout=1.0) is None  # refused, renewed, created again: no events
    creates = [r.token for r, _ in node.seen if isinstance(r, WatchCreateRequest)]
    assert creates[:2] == ["token-1", "token-2"]


def test_a_watch_without_read_permission_raises_permission_denied(cluster: Cluster, node: FakeNode) -> None:
    cluster.denied.add(b"secret")
    with Client([node.endpoint], user="alice", password="pw-alice", timeout=5, attempt_timeout=0.5) as client:
        watch = client.watch("secret")
        with pytest.raises(PermissionDenied):
            watch.get(timeout=2.0)
        assert watch.closed
