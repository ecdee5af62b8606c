"""The client router's auth rules (node/client_routing.py, node/auth_gate.py,
node/password_requests.py), with small fakes for the core, the state machine and
the node's other collaborators: requests go in as client frames, and what the
router proposes, reads or answers comes out."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from cluster.kv import AutoCompact, LeaseKeepAlive, LimitExceeded, Put, Range, decode_command, decode_result, encode_command
from cluster.kv.auth import (
    AuthenticateResponse, AuthIssue, AuthStatus, Authenticate, UserAdd, UserChangePassword, UserList,
)
from cluster.kv.codec import with_user
from cluster.kv.errors import (
    AuthError, AuthFailed, AuthNotEnabled, InvalidAuthToken, PermissionDenied, UserEmpty,
)
from cluster.protocol import (
    DropTrafficRequest, ErrorCode, ErrorReply, HashRequest, KvReply, KvRequest, MembersReply, MembersRequest,
    Reply, SnapshotReadRequest, StatusReply, StatusRequest, TransferRequest, WatchCreateRequest, encode_request,
)
from cluster.spec import load_spec
from node.answers import Answers
from node.auth_gate import FACE_TOKEN_PREFIX, AuthGate, AuthRefusals
from node.auth_tokens import TokenTable
from node.client_routing import FAULTS_OFF, ClientRouter
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.password_requests import PasswordRequests
from node.password_work import PasswordWork
from node.raft import NotLeader, Role
from node.requests import PendingRequests

NOW = 1_700_000_000.0
FACE_SECRET = "f" * 64
CLIENT = b"client-1"


# --- fakes ---------------------------------------------------------------------------------


@dataclass
class FakeUser:
    name: str
    hashed: str
    roles: tuple[str, ...] = ()
    no_password: bool = False


@dataclass
class FakeAuth:
    """StateMachine.auth's interface: users, root, READ on prefixes."""

    enabled: bool = False
    revision: int = 1
    users: dict[str, FakeUser] = field(default_factory=dict)
    readable: dict[str, bytes] = field(default_factory=dict)  # user -> key prefix it may read

    def user(self, name: str) -> FakeUser | None:
        return self.users.get(name)

    def is_root(self, name: str) -> bool:
        user = self.users.get(name)
        return user is not None and "root" in user.roles

    def check_admin(self, name: str) -> None:
        if self.enabled and not self.is_root(name):
            raise UserEmpty() if not name else PermissionDenied()

    def check_read(self, name: str, key: bytes, range_end: bytes = b"") -> None:
        if not self.enabled or self.is_root(name):
            return
        prefix = self.readable.get(name)
        if prefix is None or not key.startswith(prefix):
            raise PermissionDenied()


@dataclass
class FakeSm:
    auth: FakeAuth
    revision: int = 5
    applied_index: int = 10
    events: list[tuple[Any, ...]] = field(default_factory=list)
    queried: list[bytes] = field(default_factory=list)

    def drain_auth_events(self) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        return events

    def query(self, data: bytes, decoded: Any = None) -> Any:
        # A command the router already decoded must be exactly these bytes decoded.
        assert decoded is None or decoded == decode_command(data)
        self.queried.append(data)
        return AuthenticateResponse(self.revision, "a query result")


@dataclass
class FakeReplica:
    sm: FakeSm


@dataclass
class FakeCore:
    role: Role = Role.LEADER
    lead: int = 1
    term: int = 3
    proposed: list[bytes] = field(default_factory=list)
    read_contexts: list[bytes] = field(default_factory=list)
    transfers: list[int] = field(default_factory=list)

    def propose(self, data: bytes) -> int:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        self.proposed.append(data)
        return 10 + len(self.proposed)

    def read_index(self, ctx: bytes) -> None:
        self.read_contexts.append(ctx)

    def transfer_leadership(self, to: int) -> None:
        self.transfers.append(to)


class FakeTransport:
    client_router = object()

    def __init__(self) -> None:
        self.frames: list[list[bytes]] = []

    def receive_batch(self, socket: object, limit: int) -> list[list[bytes]]:
        frames, self.frames = self.frames, []
        return frames


@dataclass
class FakeOutbox:
    sent: list[Reply] = field(default_factory=list)

    def reply(self, identity: bytes, reply: Reply) -> None:
        self.sent.append(reply)


@dataclass
class Recorder:
    """Stands in for leases, views, faults and watches: records what reaches it."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def query(self, request_id: int, request: Any) -> Reply:
        self.calls.append(("lease", request))
        return StatusReply(request_id, 1, {"lease": True})

    def status(self) -> dict[str, Any]:
        return {"node_id": 1}

    def members(self) -> dict[str, Any]:
        return {"voters": [1]}

    def drop_traffic(self, request: DropTrafficRequest) -> Reply:
        self.calls.append(("drop", request))
        return StatusReply(request.request_id, 1, {"dropping": {}})

    def on_request(self, identity: bytes, request: Any, sm: Any, now: float) -> None:
        self.calls.append(("watch", request))


def fake_hash(password: str, iterations: int) -> str:
    return f"hash${iterations}${password[::-1]}"


class Node:
    """A router wired to fakes, with the real gate, token table and password worker."""

    def __init__(self, *, auth_on: bool = True, injection: bool = False, token_kind: str = "simple") -> None:
        spec = load_spec("cluster-3")
        spec = replace(spec, faults=replace(spec.faults, injection=injection),
                       auth=replace(spec.auth, token=token_kind, password_iterations=7))
        self.auth = FakeAuth(enabled=auth_on, users={
            "root": FakeUser("root", fake_hash("rootpw", 7), ("root",)),
            "alice": FakeUser("alice", fake_hash("alicepw", 7), ("reader",)),
            "nopass": FakeUser("nopass", "", (), no_password=True),
        }, readable={"alice": b"/app/"})
        self.sm = FakeSm(self.auth)
        self.core = FakeCore()
        self.outbox = FakeOutbox()
        self.transport = FakeTransport()
        self.other = Recorder()
        self.verified: list[str] = []  # the hashes each verification ran against
        log = EventLog(lambda: "node=1")
        self.refusals = AuthRefusals(log)
        self.tokens = TokenTable(spec.auth.token_ttl_s)
        self.gate = AuthGate(FakeReplica(self.sm), self.tokens, self.refusals, FACE_SECRET,
                             wall_clock=lambda: NOW)
        self.work = PasswordWork(limit=4)
        answers = Answers(1, lambda node: f"tcp://node-{node}")
        replica = FakeReplica(self.sm)

        def verify(password: str, hashed: str) -> bool:
            self.verified.append(hashed)
            return fake_hash(password, 7) == hashed

        def passwords(router: ClientRouter) -> PasswordRequests:
            return PasswordRequests(self.gate, replica, self.work, answers, self.outbox.reply,
                                    router.propose_command, router.refuse_auth, 7, fake_hash, verify)

        self.router = ClientRouter(spec, 1, self.core, replica, PendingRequests(100), self.outbox, answers,
                                   self.other, self.other, self.other, self.other, self.transport,
                                   DroppedFrames(log), time.monotonic, log, disk=None, gate=self.gate,
                                   passwords=passwords)
        self._ids = iter(range(1, 10_000))

    def login(self, user: str) -> str:
        token = self.tokens.new_simple_token()
        self.tokens.apply([("issue", token, user, int(NOW * 1000))])
        return token

    def send(self, request: Any) -> None:
        self.transport.frames.append([CLIENT, encode_request(request)])
        self.router.drain()

    def kv(self, body: Any, token: str = "", *, user: str = "", serializable: bool = False,
           barrier: bool = True) -> bytes:
        """Send `body`; an Authenticate's read barrier is passed too unless `barrier` is False."""
        data = encode_command(body, 0, 0, user=user)
        self.send(KvRequest(next(self._ids), data, serializable, token))
        if barrier and isinstance(body, Authenticate):
            self.pass_barriers()
        return data

    def pass_barriers(self) -> None:
        """The read indexes asked for are known and applied; the actor loop then runs
        what waited on them (after syncing the auth state)."""
        for ctx in self.core.read_contexts:
            if ctx in self.router.requests.reads:
                self.router.requests.read_index_known(ctx, self.sm.applied_index)
        self.router.serve_reads()
        self.gate.sync()
        self.router.run_deferred()

    def settle(self) -> None:
        """Let the password worker finish what it has, as the actor's loop would."""
        deadline = time.monotonic() + 10
        while len(self.work) and time.monotonic() < deadline:
            self.work.finish()
            time.sleep(0.001)
        assert not len(self.work)

    def last(self) -> Reply:
        return self.outbox.sent[-1]

    def close(self) -> None:
        self.work.close()


@pytest.fixture
def node() -> Any:
    made: list[Node] = []

    def make(**options: Any) -> Node:
        made.append(Node(**options))
        return made[-1]

    yield make
    for n in made:
        n.close()


def refused_with(reply: Reply, error: type[AuthError]) -> None:
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.UNAUTHORIZED, reply
    assert type(decode_result(reply.kv_error)) is error
    assert reply.reason == error.message


# --- KV commands -----------------------------------------------------------------------------


def test_auth_off_ignores_tokens_and_proposes_the_bytes_unchanged(node: Any) -> None:
    n = node(auth_on=False)
    data = n.kv(Put(b"k", b"v"), token="no such token")
    assert n.core.proposed == [data] and not n.outbox.sent


def test_auth_off_drops_a_user_a_command_names(node: Any) -> None:
    n = node(auth_on=False)
    n.kv(Put(b"k", b"v"), user="root")
    assert decode_command(n.core.proposed[0]).user == ""


@pytest.mark.parametrize("auth_on", [False, True])
def test_auto_compact_is_the_nodes_own_and_refused_from_clients(node: Any, auth_on: bool) -> None:
    n = node(auth_on=auth_on)
    n.kv(AutoCompact(5), token=n.login("root") if auth_on else "")
    reply = n.last()
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.INVALID_REQUEST
    assert "proposed by the leader only" in reply.reason and n.core.proposed == []


def test_a_command_over_max_request_bytes_is_refused_before_it_is_proposed(node: Any) -> None:
    n = node(auth_on=False)
    data = n.kv(Put(b"k", b"v" * (1536 * 1024)))  # etcd's --max-request-bytes default: 1.5 MiB
    reply = n.last()
    assert isinstance(reply, ErrorReply) and n.core.proposed == []
    assert decode_result(reply.kv_error) == LimitExceeded("max_request_bytes", len(data), 1536 * 1024)


def test_a_tokens_user_is_spliced_into_a_command_naming_none(node: Any) -> None:
    n = node()
    data = n.kv(Put(b"/app/x", b"v"), token=n.login("alice"))
    assert n.core.proposed == [with_user(data, "alice")]


def test_a_command_naming_its_tokens_user_is_proposed_as_sent(node: Any) -> None:
    n = node()
    data = n.kv(Put(b"/app/x", b"v"), token=n.login("alice"), user="alice")
    assert n.core.proposed == [data]


def test_a_command_naming_a_user_its_token_does_not_prove_is_refused(node: Any) -> None:
    n = node()
    n.kv(Put(b"k", b"v"), token=n.login("alice"), user="root")
    refused_with(n.last(), InvalidAuthToken)
    n.kv(Put(b"k", b"v"), user="root")  # no token at all
    refused_with(n.last(), InvalidAuthToken)
    assert not n.core.proposed
    assert n.refusals.counts["invalid_token"] == 2


def test_an_unknown_or_expired_token_is_refused_and_counted(node: Any) -> None:
    n = node()
    n.tokens.apply([("issue", "old.1", "alice", int((NOW - 3600) * 1000))])
    for token in ("bogus", "old.1"):
        n.kv(Range(b"k"), token=token)
        refused_with(n.last(), InvalidAuthToken)
    assert not n.core.read_contexts and n.refusals.counts["invalid_token"] == 2


def test_without_a_token_the_command_goes_on_without_a_user(node: Any) -> None:
    """The state machine refuses it (UserEmpty) at apply time, against the auth
    state of that moment."""
    n = node()
    data = n.kv(Put(b"k", b"v"))
    assert n.core.proposed == [data]


def test_serializable_reads_carry_the_user_to_the_state_machines_query(node: Any) -> None:
    n = node()
    data = n.kv(Range(b"/app/x"), token=n.login("alice"), serializable=True)
    assert n.sm.queried == [with_user(data, "alice")]


def test_auth_reads_are_linearizable_reads_for_the_tokens_user(node: Any) -> None:
    n = node()
    n.kv(UserList(), token=n.login("root"))
    n.kv(AuthStatus(), token=n.login("alice"))
    assert len(n.core.read_contexts) == 2 and not n.core.proposed


def test_auth_issue_from_a_client_is_refused(node: Any) -> None:
    n = node()
    n.kv(AuthIssue("root", "forged.1", int(NOW * 1000)), token=n.login("root"))
    reply = n.last()
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.INVALID_REQUEST
    assert not n.core.proposed


# --- Authenticate ------------------------------------------------------------------------------


def test_authenticate_while_auth_is_off_is_auth_not_enabled(node: Any) -> None:
    n = node(auth_on=False)
    n.kv(Authenticate("root", "rootpw"))
    refused_with(n.last(), AuthNotEnabled)


def test_authenticate_waits_for_a_read_barrier_and_sees_the_state_applied_by_then(node: Any) -> None:
    """A follower's Authenticate right after an acknowledged AuthEnable must not find
    auth off because its replica had not applied it yet (etcd's is a raft request)."""
    n = node(auth_on=False)
    n.kv(Authenticate("alice", "alicepw"), barrier=False)
    assert len(n.core.read_contexts) == 1 and not n.outbox.sent and not len(n.work)
    n.auth.enabled = True  # AuthEnable applied up to the read index
    n.pass_barriers()
    assert n.gate.enabled and not n.outbox.sent  # the password check is on the worker
    n.settle()
    [data] = n.core.proposed
    assert decode_command(data).request.name == "alice"


def test_a_right_password_proposes_a_fresh_simple_token(node: Any) -> None:
    n = node()
    n.kv(Authenticate("alice", "alicepw"))
    assert not n.core.proposed  # the check runs on the worker
    n.settle()
    [data] = n.core.proposed
    issue = decode_command(data).request
    assert isinstance(issue, AuthIssue) and issue.name == "alice" and issue.issued_ms == int(NOW * 1000)
    assert issue.token.count(".") == 1 and b"alicepw" not in data


@pytest.mark.parametrize("name, password", [("alice", "wrong"), ("nobody", "x"), ("nopass", "")])
def test_a_wrong_password_an_unknown_user_or_a_passwordless_one_fail_alike(
        node: Any, name: str, password: str) -> None:
    n = node()
    n.kv(Authenticate(name, password))
    n.settle()
    refused_with(n.last(), AuthFailed)
    assert len(n.verified) == 1  # a hash was checked in every case: no user enumeration by time
    assert not n.core.proposed and n.refusals.counts["auth_failed"] == 1


def test_a_follower_redirects_authenticate_before_checking_the_password(node: Any) -> None:
    n = node()
    n.core.role, n.core.lead = Role.FOLLOWER, 2
    n.kv(Authenticate("alice", "alicepw"))
    reply = n.last()
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.NOT_LEADER and reply.leader_id == 2
    assert not len(n.work)


def test_the_face_token_authenticates_a_certificate_cn_without_a_password(node: Any) -> None:
    n = node()
    n.kv(Authenticate("alice", ""), token=FACE_TOKEN_PREFIX + FACE_SECRET)
    [data] = n.core.proposed
    assert decode_command(data).request.name == "alice" and not n.verified


@pytest.mark.parametrize("token, password", [
    (FACE_TOKEN_PREFIX + "0" * 64, ""),  # not the face's secret
    ("", ""),  # no token
])
def test_a_password_is_needed_without_the_face_token(node: Any, token: str, password: str) -> None:
    n = node()
    n.kv(Authenticate("alice", password), token=token)
    n.settle()
    refused_with(n.last(), AuthFailed)
    assert not n.core.proposed


def test_the_face_token_proves_nothing_else(node: Any) -> None:
    n = node()
    n.kv(Put(b"k", b"v"), token=FACE_TOKEN_PREFIX + FACE_SECRET)
    refused_with(n.last(), InvalidAuthToken)
    n.kv(Authenticate("alice", "wrong"), token=FACE_TOKEN_PREFIX + FACE_SECRET)  # with a password: checked
    n.settle()
    refused_with(n.last(), AuthFailed)


def test_jwt_authenticate_is_answered_at_once_with_a_token_that_resolves(node: Any, tmp_path: Any) -> None:
    n = node(token_kind="jwt")
    key = tmp_path / "hs.key"
    key.write_bytes(b"a secret of thirty-two bytes or more!!")
    n.tokens.jwt = TokenTable.from_spec(replace(load_spec("cluster-3").auth, token="jwt", jwt_key=str(key),
                                                jwt_sign_method="HS256"), key).jwt
    n.kv(Authenticate("alice", "alicepw"))
    n.settle()
    reply = n.last()
    assert isinstance(reply, KvReply) and not n.core.proposed
    result = decode_result(reply.result)
    assert isinstance(result, AuthenticateResponse) and n.gate.user_of(result.token) == "alice"


def test_too_many_password_checks_waiting_are_refused(node: Any) -> None:
    n = node()
    for _ in range(n.work.limit + 2):
        n.kv(Authenticate("alice", "alicepw"))
    busy = [r for r in n.outbox.sent if isinstance(r, ErrorReply) and r.code is ErrorCode.TOO_MANY_REQUESTS]
    assert len(busy) >= 2
    n.settle()


# --- password changes ----------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", [UserAdd, UserChangePassword])
def test_a_password_is_hashed_before_the_request_is_proposed(node: Any, request_type: type) -> None:
    n = node()
    n.kv(request_type("bob", password="s3cret-pw"), token=n.login("root"))
    n.settle()
    [data] = n.core.proposed
    command = decode_command(data)
    assert command.user == "root"
    assert command.request == request_type("bob", password="", hashed=fake_hash("s3cret-pw", 7))
    assert b"s3cret-pw" not in data


def test_a_non_root_password_change_is_refused_before_any_hashing(node: Any) -> None:
    n = node()
    n.kv(UserAdd("bob", password="pw"), token=n.login("alice"))
    refused_with(n.last(), PermissionDenied)
    assert not len(n.work) and not n.core.proposed
    assert n.refusals.counts["permission_denied"] == 1


# --- maintenance, fault injection, watches, leases ----------------------------------------------


def test_maintenance_needs_root_while_members_and_status_stay_open(node: Any) -> None:
    n = node()
    alice = n.login("alice")
    n.send(HashRequest(1, token=alice))
    refused_with(n.last(), PermissionDenied)
    n.send(TransferRequest(2, 2))
    refused_with(n.last(), UserEmpty)
    n.send(HashRequest(3, token="bogus"))
    refused_with(n.last(), InvalidAuthToken)
    n.send(TransferRequest(4, 2, token=n.login("root")))
    assert isinstance(n.last(), StatusReply) and n.core.transfers == [2]
    n.send(MembersRequest(5))
    assert isinstance(n.last(), MembersReply)
    n.send(StatusRequest(6))
    assert isinstance(n.last(), StatusReply)
    n.send(SnapshotReadRequest(7, 1, 0, token=alice))  # snapshot save's reads: root only, as etcd's Snapshot
    refused_with(n.last(), PermissionDenied)


def test_drop_traffic_is_refused_unless_the_config_enables_it(node: Any) -> None:
    n = node(auth_on=False)
    n.send(DropTrafficRequest(1, (2,), 1.0))
    reply = n.last()
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.INVALID_REQUEST and reply.reason == FAULTS_OFF
    assert not n.other.calls and n.refusals.counts["fault_injection_refused"] == 1


def test_drop_traffic_needs_root_while_auth_is_on(node: Any) -> None:
    n = node(injection=True)
    n.send(DropTrafficRequest(1, (2,), 1.0, token=n.login("alice")))
    refused_with(n.last(), PermissionDenied)
    n.send(DropTrafficRequest(2, (2,), 1.0, token=n.login("root")))
    assert isinstance(n.last(), StatusReply) and [kind for kind, _ in n.other.calls] == ["drop"]


def test_drop_traffic_from_a_non_root_user_is_refused_before_the_switch_is_looked_at(node: Any) -> None:
    n = node(injection=False)
    n.send(DropTrafficRequest(1, (2,), 1.0, token=n.login("alice")))
    refused_with(n.last(), PermissionDenied)
    n.send(DropTrafficRequest(2, (2,), 1.0, token=n.login("root")))
    assert n.last().code is ErrorCode.INVALID_REQUEST and n.last().reason == FAULTS_OFF
    assert n.refusals.counts == {"auth_failed": 0, "invalid_token": 0, "permission_denied": 1,
                                 "fault_injection_refused": 1}


def test_drop_traffic_with_the_switch_and_auth_off_is_open(node: Any) -> None:
    n = node(auth_on=False, injection=True)
    n.send(DropTrafficRequest(1, (2,), 1.0))
    assert isinstance(n.last(), StatusReply)


def test_a_watch_needs_read_on_its_range(node: Any) -> None:
    n = node()
    alice = n.login("alice")
    n.send(WatchCreateRequest(1, 1, b"/other/", b"/other0", token=alice))
    refused_with(n.last(), PermissionDenied)
    assert not n.other.calls
    n.send(WatchCreateRequest(2, 2, b"/app/", b"/app0", token=alice))
    assert [kind for kind, _ in n.other.calls] == ["watch"]


def test_lease_queries_need_a_valid_token_while_auth_is_on(node: Any) -> None:
    n = node()
    n.kv(LeaseKeepAlive(7))
    refused_with(n.last(), UserEmpty)
    n.kv(LeaseKeepAlive(7), token="bogus")
    refused_with(n.last(), InvalidAuthToken)
    n.kv(LeaseKeepAlive(7), token=n.login("alice"))
    assert [kind for kind, _ in n.other.calls] == ["lease"]


def test_the_gate_follows_the_applied_auth_events(node: Any) -> None:
    n = node(auth_on=False)
    n.auth.enabled = True
    n.sm.events = [("enabled",), ("issue", "t.1", "alice", int(NOW * 1000))]
    n.gate.sync()
    assert n.gate.enabled and n.gate.user_of("t.1") == "alice"
    n.auth.enabled = False
    n.sm.events = [("disabled",)]
    n.gate.sync()
    assert not n.gate.enabled and len(n.tokens) == 0
    assert n.gate.status() == {"enabled": False, "tokens": 0, "auth_failed": 0, "invalid_token": 0,
                               "permission_denied": 0, "fault_injection_refused": 0}


@pytest.mark.parametrize("auth_on", [False, True])
def test_a_proposal_carries_the_command_the_router_decoded_only_for_the_same_bytes(auth_on: bool) -> None:
    """The leader's apply takes the router's decoded command instead of decoding the
    entry again (node/applying.py): only for the very bytes proposed."""
    n = Node(auth_on=auth_on)
    token = n.login("alice") if auth_on else ""
    n.kv(Put(b"/app/x", b"v"), token=token)  # auth on: the token's user goes into the bytes
    n.kv(Put(b"/app/y", b"v"))  # no token: proposed as sent (the state machine judges it)
    x, y = [p.waiter for p in n.router.requests.writes.values()]
    assert [x.command, y.command] == n.core.proposed
    assert y.decoded == decode_command(y.command)
    if auth_on:  # with_user made new bytes: nothing decoded goes with them
        assert x.decoded is None and decode_command(x.command).user == "alice"
    else:
        assert x.decoded == decode_command(x.command)
