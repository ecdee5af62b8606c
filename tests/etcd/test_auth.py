"""etcd's Auth service and tokens on the etcd face.

Without a cluster: each Auth RPC becomes the KV API's auth request (logged ones
to the leader, reads here), acting with the call's token from the metadata
("token" from etcd clients, "authorization" from the gateway); results become
etcd's responses and AuthErrors etcd's exact statuses; every service passes the
token on, streams included. With a cluster: one etcdctl script of users, roles,
permissions and `auth enable/disable` gives the same outputs against jangada
and a real etcd 3.4, and the gRPC stubs and the JSON gateway use tokens as
etcd's do."""
from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest

from cluster import kv
from cluster.etcdpb import auth_pb2, rpc_pb2, rpc_pb2_grpc
from cluster.kv import auth
from cluster.kv import errors as kv_errors
from node.etcd import credentials as credentials_module
from node.etcd import errors
from node.etcd.auth import AuthService
from node.etcd.credentials import Credentials
from node.etcd.gatewaycontext import GatewayContext
from node.etcd.header import Headers
from node.etcd.kv import KvService
from node.etcd.lease import LeaseService
from node.etcd.recipes import Store
from node.etcd.watch import Lanes
from node.localcluster import LocalCluster
from tests.etcd.conftest import ETCDCTL, etcdctl
from tests.etcd.readiness import every_face_up
from tests.etcd.reference_etcd import ReferenceEtcd
from tests.etcd.stubs import RPC_TIMEOUT, failure

pytestmark = pytest.mark.timeout(120)


# -- the service's own logic, over a fake link (no cluster) ----------------------------------


class FakeLink:
    """The NodeLink.kv calls the services make, answered from `answers` (by
    request type; an AuthError is answered as the node answers a refusal)."""

    node_id = 1
    term = 3
    request_timeout = 5.0

    def __init__(self, answers: dict[type, Any] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[tuple[Any, bool, str]] = []  # (request, leader_only, token)

    async def kv(self, command: bytes, *, serializable: bool = False, leader_only: bool = False,
                 token: str = "") -> bytes:
        request = kv.decode_command(command).request
        self.sent.append((request, leader_only, token))
        answer: Any = self.answers.get(type(request))
        if callable(answer):  # the node's logic for that request
            answer = answer(request, token)
        assert answer is not None, f"no answer for {request}"
        return kv.encode_result(answer)


def call(metadata: tuple[tuple[str, str], ...] = (), common_name: str = "") -> GatewayContext:
    """A call's context: its metadata, and a verified client certificate's CN."""
    return GatewayContext(metadata, "ipv4:127.0.0.1:1", auth={"x509_common_name": [common_name.encode()]}
                          if common_name else None)


def service(answers: dict[type, Any]) -> tuple[AuthService, FakeLink]:
    link = FakeLink(answers)
    return AuthService(link, Headers("c", 1, link)), link  # type: ignore[arg-type]


DONE = auth.AuthDone(revision=7, auth_revision=2)
CHANGES: list[tuple[str, Any, Any]] = [
    ("AuthEnable", rpc_pb2.AuthEnableRequest(), auth.AuthEnable()),
    ("AuthDisable", rpc_pb2.AuthDisableRequest(), auth.AuthDisable()),
    ("UserAdd", rpc_pb2.AuthUserAddRequest(name="u", password="pw"), auth.UserAdd("u", "pw")),
    ("UserAdd", rpc_pb2.AuthUserAddRequest(name="c", options=auth_pb2.UserAddOptions(no_password=True)),
     auth.UserAdd("c", no_password=True)),
    ("UserDelete", rpc_pb2.AuthUserDeleteRequest(name="u"), auth.UserDelete("u")),
    ("UserChangePassword", rpc_pb2.AuthUserChangePasswordRequest(name="u", password="p2"),
     auth.UserChangePassword("u", "p2")),
    ("UserGrantRole", rpc_pb2.AuthUserGrantRoleRequest(user="u", role="r"), auth.UserGrantRole("u", "r")),
    ("UserRevokeRole", rpc_pb2.AuthUserRevokeRoleRequest(name="u", role="r"), auth.UserRevokeRole("u", "r")),
    ("RoleAdd", rpc_pb2.AuthRoleAddRequest(name="r"), auth.RoleAdd("r")),
    ("RoleDelete", rpc_pb2.AuthRoleDeleteRequest(role="r"), auth.RoleDelete("r")),
    ("RoleGrantPermission", rpc_pb2.AuthRoleGrantPermissionRequest(
        name="r", perm=auth_pb2.Permission(permType=auth_pb2.Permission.READWRITE, key=b"a/", range_end=b"a0")),
     auth.RoleGrantPermission("r", auth.Permission(auth.PermType.READWRITE, b"a/", b"a0"))),
    ("RoleRevokePermission", rpc_pb2.AuthRoleRevokePermissionRequest(role="r", key=b"k", range_end=b"\0"),
     auth.RoleRevokePermission("r", b"k", b"\0")),
]


@pytest.mark.parametrize("method, message, expected", CHANGES, ids=[c[0] for c in CHANGES])
def test_each_change_is_its_auth_request_at_the_leader_with_the_calls_token(method: str, message: Any,
                                                                             expected: Any) -> None:
    auth_service, link = service({type(expected): DONE})
    response = asyncio.run(getattr(auth_service, method)(message, call((("token", "tok-1"),))))
    assert link.sent == [(expected, True, "tok-1")]
    assert (response.header.revision, response.header.member_id, response.header.raft_term) == (7, 1, 3)


def test_reads_are_served_here_and_their_results_become_etcds_responses() -> None:
    perms = (auth.Permission(auth.PermType.READ, b"/app/", b"/app0"), auth.Permission(auth.PermType.WRITE, b"k"))
    auth_service, link = service({
        auth.UserGet: auth.UserGetResponse(5, ("r1", "r2")),
        auth.UserList: auth.UserListResponse(5, ("alice", "root")),
        auth.RoleGet: auth.RoleGetResponse(6, perms),
        auth.RoleList: auth.RoleListResponse(6, ("r1", "root")),
    })
    gateway_call = call((("authorization", "tok-2"),))  # the gateway's Authorization header
    user = asyncio.run(auth_service.UserGet(rpc_pb2.AuthUserGetRequest(name="alice"), gateway_call))
    users = asyncio.run(auth_service.UserList(rpc_pb2.AuthUserListRequest(), gateway_call))
    role = asyncio.run(auth_service.RoleGet(rpc_pb2.AuthRoleGetRequest(role="r1"), gateway_call))
    roles = asyncio.run(auth_service.RoleList(rpc_pb2.AuthRoleListRequest(), gateway_call))
    assert (list(user.roles), list(users.users), list(roles.roles)) == (["r1", "r2"], ["alice", "root"],
                                                                        ["r1", "root"])
    assert [(p.permType, p.key, p.range_end) for p in role.perm] == \
        [(auth_pb2.Permission.READ, b"/app/", b"/app0"), (auth_pb2.Permission.WRITE, b"k", b"")]
    assert (user.header.revision, role.header.revision) == (5, 6)
    assert link.sent == [(auth.UserGet("alice"), False, "tok-2"), (auth.UserList(), False, "tok-2"),
                         (auth.RoleGet("r1"), False, "tok-2"), (auth.RoleList(), False, "tok-2")]


def test_authenticate_answers_the_token() -> None:
    auth_service, link = service({auth.Authenticate: auth.AuthenticateResponse(9, "tok.abc.1")})
    response = asyncio.run(auth_service.Authenticate(rpc_pb2.AuthenticateRequest(name="u", password="pw"), call()))
    assert (response.token, response.header.revision) == ("tok.abc.1", 9)
    assert link.sent == [(auth.Authenticate("u", "pw"), False, "")]  # to this member first


#: etcd 3.4's rpctypes/error.go, for each of the KV API's auth errors.
ETCD_STATUSES = {
    kv_errors.AuthNotEnabled: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"),
    kv_errors.AuthFailed: (grpc.StatusCode.INVALID_ARGUMENT,
                           "etcdserver: authentication failed, invalid user ID or password"),
    kv_errors.InvalidAuthToken: (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token"),
    kv_errors.PermissionDenied: (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied"),
    kv_errors.UserEmpty: (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty"),
    kv_errors.UserAlreadyExists: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: user name already exists"),
    kv_errors.UserNotFound: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: user name not found"),
    kv_errors.RoleAlreadyExists: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: role name already exists"),
    kv_errors.RoleNotFound: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: role name not found"),
    kv_errors.RoleEmpty: (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: role name is empty"),
    kv_errors.RoleNotGranted: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: role is not granted to the user"),
    kv_errors.PermissionNotGranted: (grpc.StatusCode.FAILED_PRECONDITION,
                                     "etcdserver: permission is not granted to the role"),
    kv_errors.RootUserNotExist: (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: root user does not exist"),
    kv_errors.RootRoleNotExist: (grpc.StatusCode.FAILED_PRECONDITION,
                                 "etcdserver: root user does not have root role"),
    kv_errors.InvalidAuthMgmt: (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: invalid auth management"),
    kv_errors.AuthOldRevision: (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"),
}


def test_every_auth_error_is_etcds_status() -> None:
    every = {cls for cls in vars(kv_errors).values()
             if isinstance(cls, type) and issubclass(cls, kv_errors.AuthError) and cls is not kv_errors.AuthError}
    assert every == set(ETCD_STATUSES)
    for cls, (code, message) in ETCD_STATUSES.items():
        error = errors.from_kv_error(cls())
        assert (error.code, error.message) == (code, message), cls


def test_a_refused_auth_request_fails_with_etcds_status() -> None:
    auth_service, _ = service({auth.UserAdd: kv_errors.UserAlreadyExists()})
    with pytest.raises(errors.EtcdError) as raised:
        asyncio.run(auth_service.UserAdd(rpc_pb2.AuthUserAddRequest(name="u", password="p"), call()))
    assert raised.value.status is errors.USER_ALREADY_EXISTS


def test_kv_and_lease_calls_carry_the_token_streams_included() -> None:
    link = FakeLink({kv.Range: kv.RangeResponse(4, (), 0, False), kv.Put: kv.PutResponse(5, None),
                     kv.LeaseKeepAlive: kv.LeaseKeepAliveResponse(5, 42, 10)})
    headers = Headers("c", 1, link)  # type: ignore[arg-type]
    kv_service = KvService(link, headers)  # type: ignore[arg-type]
    asyncio.run(kv_service.Range(rpc_pb2.RangeRequest(key=b"a"), call((("token", "t-r"),))))
    asyncio.run(kv_service.Put(rpc_pb2.PutRequest(key=b"a", value=b"1"), call((("authorization", "t-p"),))))
    lease = LeaseService(link, headers)  # type: ignore[arg-type]

    async def keepalives() -> list[Any]:
        async def requests() -> Any:
            for _ in range(2):
                yield rpc_pb2.LeaseKeepAliveRequest(ID=42)
        return [r async for r in lease.LeaseKeepAlive(requests(), call((("token", "t-k"),)))]

    assert [r.TTL for r in asyncio.run(keepalives())] == [10, 10]
    assert [(type(r).__name__, token) for r, _, token in link.sent] == \
        [("Range", "t-r"), ("Put", "t-p"), ("LeaseKeepAlive", "t-k"), ("LeaseKeepAlive", "t-k")]


def test_the_lock_and_election_recipes_act_with_their_callers_token() -> None:
    link = FakeLink({kv.Range: kv.RangeResponse(4, (), 0, False), kv.LeaseGrant: kv.LeaseGrantResponse(4, 9, 60)})
    headers = Headers("c", 1, link)  # type: ignore[arg-type]
    store = Store(KvService(link, headers), Lanes(link), headers)  # type: ignore[arg-type]

    async def steps() -> None:
        mine = await store.for_call(call((("token", "t-lock"),)))
        await mine.range(rpc_pb2.RangeRequest(key=b"lock/"))
        await mine.session_lease(0)

    asyncio.run(steps())
    assert [(type(r).__name__, t) for r, _, t in link.sent] == [("Range", "t-lock"), ("LeaseGrant", "t-lock")]


# -- certificate users (etcd's --client-cert-auth) ------------------------------------------


class CertNode:
    """The node's side of certificate users: Authenticate with the trusted face
    token gives a token per CN; `valid` says which tokens a request may use."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.issued = 0
        self.valid: set[str] = set()

    def authenticate(self, request: auth.Authenticate, token: str) -> Any:
        assert token == "jangada-face-s3cret" and request.password == ""
        if not self.enabled:
            return kv_errors.AuthNotEnabled()
        if request.name == "nobody":
            return kv_errors.AuthFailed()
        self.issued += 1
        issued = f"{request.name}-{self.issued}"
        self.valid.add(issued)
        return auth.AuthenticateResponse(3, issued)

    def put(self, request: kv.Put, token: str) -> Any:
        if not self.enabled:
            return kv.PutResponse(5, None)
        if not token:
            return kv_errors.UserEmpty()
        return kv.PutResponse(5, None) if token in self.valid else kv_errors.InvalidAuthToken()


def cert_service(node: CertNode, client_cert_auth: bool = True) -> tuple[KvService, FakeLink]:
    link = FakeLink({auth.Authenticate: node.authenticate, kv.Put: node.put})
    credentials = Credentials(link, "s3cret", client_cert_auth)  # type: ignore[arg-type]
    return KvService(link, Headers("c", 1, link), credentials), link  # type: ignore[arg-type]


def put(kv_service: KvService, context: GatewayContext) -> None:
    asyncio.run(kv_service.Put(rpc_pb2.PutRequest(key=b"k", value=b"v"), context))


def test_a_certificates_cn_gets_a_token_through_the_face_token_kept_and_renewed() -> None:
    node = CertNode()
    kv_service, link = cert_service(node)
    put(kv_service, call(common_name="alice"))
    put(kv_service, call(common_name="alice"))  # the kept token
    assert [(type(r).__name__, t) for r, _, t in link.sent] == \
        [("Authenticate", "jangada-face-s3cret"), ("Put", "alice-1"), ("Put", "alice-1")]
    node.valid.clear()  # e.g. expired: the node refuses it, the face gets a new one and asks again
    link.sent.clear()
    put(kv_service, call(common_name="alice"))
    assert [(type(r).__name__, t) for r, _, t in link.sent] == \
        [("Put", "alice-1"), ("Authenticate", "jangada-face-s3cret"), ("Put", "alice-2")]


def test_a_stream_gets_a_new_token_unless_the_kept_one_worked_recently(monkeypatch: pytest.MonkeyPatch) -> None:
    node = CertNode()
    kv_service, link = cert_service(node)
    put(kv_service, call(common_name="alice"))
    credentials = kv_service.credentials
    assert asyncio.run(credentials.token(call(common_name="alice"))) == "alice-1"  # worked just now
    monkeypatch.setattr(credentials_module, "STREAM_TOKEN_AGE", -1.0)  # as if it was long ago
    assert asyncio.run(credentials.token(call(common_name="alice"))) == "alice-2"
    assert asyncio.run(credentials.token(call((("token", "mine"),), common_name="alice"))) == "mine"


def test_a_certificate_naming_no_user_is_refused_as_etcd_refuses_it() -> None:
    kv_service, link = cert_service(CertNode())
    with pytest.raises(errors.EtcdError) as raised:
        put(kv_service, call(common_name="nobody"))
    assert raised.value.status is errors.PERMISSION_DENIED
    assert [type(r).__name__ for r, _, _ in link.sent] == ["Authenticate"]


def test_a_presented_token_wins_over_the_certificate() -> None:
    node = CertNode()
    node.valid.add("root-token")
    kv_service, link = cert_service(node)
    put(kv_service, call((("token", "root-token"),), common_name="alice"))
    assert [(type(r).__name__, t) for r, _, t in link.sent] == [("Put", "root-token")]


def test_certificates_name_nobody_while_auth_is_disabled_then_do_once_enabled() -> None:
    node = CertNode(enabled=False)
    kv_service, link = cert_service(node)
    put(kv_service, call(common_name="alice"))
    assert [t for _, _, t in link.sent] == ["jangada-face-s3cret", ""]
    node.enabled = True
    link.sent.clear()
    put(kv_service, call(common_name="alice"))  # "" is refused (user name is empty): get a token
    assert [(type(r).__name__, t) for r, _, t in link.sent] == \
        [("Put", ""), ("Authenticate", "jangada-face-s3cret"), ("Put", "alice-1")]


def test_without_client_cert_auth_the_cn_means_nothing() -> None:
    node = CertNode(enabled=False)
    kv_service, link = cert_service(node, client_cert_auth=False)
    put(kv_service, call(common_name="alice"))
    assert [(type(r).__name__, t) for r, _, t in link.sent] == [("Put", "")]


# -- etcdctl against jangada and etcd 3.4 ----------------------------------------------------

ROOT = "--user=root:rootpw"
ALICE = "--user=alice:alicepw"
#: The script: (etcdctl arguments, stdin). Root, auth on, a role reading a prefix, a
#: user with it (allowed, refused: write, other prefix, watch, txn), a revoked
#: permission taking effect, wrong credentials, auth off by root.
SCRIPT: list[tuple[tuple[str, ...], str | None]] = [
    (("--user=root:rootpw", "get", "/app/x"), None),  # auth off: clientv3 goes on without a token
    (("user", "add", "root", "--new-user-password=rootpw"), None),
    (("auth", "enable"), None),
    (("get", "/app/x"), None),  # no user while auth is on
    ((ROOT, "role", "add", "reader"), None),
    ((ROOT, "role", "add", "reader"), None),  # exists
    ((ROOT, "role", "grant-permission", "reader", "read", "/app/", "--prefix"), None),
    ((ROOT, "user", "add", "alice", "--new-user-password=alicepw"), None),
    ((ROOT, "user", "grant-role", "alice", "reader"), None),
    ((ROOT, "user", "grant-role", "alice", "nosuchrole"), None),
    ((ROOT, "put", "/app/x", "1"), None),
    ((ROOT, "put", "/other/y", "2"), None),
    ((ALICE, "get", "/app/x"), None),
    ((ALICE, "get", "/app/", "--prefix"), None),
    ((ALICE, "put", "/app/x", "2"), None),
    ((ALICE, "get", "/other/y"), None),
    ((ALICE, "watch", "/other/", "--prefix"), None),
    ((ALICE, "txn"), 'value("/app/x") = "1"\n\nput /other/z 3\n\n\n'),
    ((ALICE, "user", "add", "mallory", "--new-user-password=x"), None),
    (("--user=alice:wrong", "get", "/app/x"), None),
    ((ROOT, "user", "get", "alice"), None),
    ((ROOT, "user", "list"), None),
    ((ROOT, "role", "list"), None),
    ((ROOT, "role", "get", "reader"), None),
    ((ROOT, "user", "passwd", "alice", "--interactive=false"), "newpw\n"),
    ((ALICE, "get", "/app/x"), None),  # the old password
    (("--user=alice:newpw", "get", "/app/x"), None),
    ((ROOT, "role", "revoke-permission", "reader", "/app/", "--prefix"), None),
    (("--user=alice:newpw", "get", "/app/x"), None),  # the revoke holds on the next request
    ((ROOT, "role", "get", "reader"), None),
    ((ROOT, "user", "revoke-role", "root", "root"), None),  # etcd refuses to lock root out
    ((ROOT, "user", "delete", "root"), None),
    (("--user=alice:newpw", "auth", "disable"), None),
    ((ROOT, "auth", "disable"), None),
    (("get", "/other/y"), None),
]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_script(endpoint: str) -> list[tuple[tuple[str, ...], int, str, str]]:
    """Each command's exit code, output and error line (clientv3's retry warnings,
    logged with times and ids, are left out)."""
    out = []
    for args, stdin in SCRIPT:
        try:
            done = etcdctl(endpoint, *args, stdin=stdin, check=False, timeout=20)
            error = _last_line(done.stderr)
            outcome = (done.returncode, done.stdout, error if error.startswith(("Error", "watch")) else "")
        except subprocess.TimeoutExpired:  # a watch that was not refused waits for events
            outcome = (-1, "", "still watching")
        out.append((args, *outcome))
    return out


def test_etcdctl_auth_script_answers_as_etcd_does(etcd_cluster: LocalCluster, etcd_ref: ReferenceEtcd) -> None:
    if ETCDCTL is None:
        pytest.skip("etcdctl is not installed")
    leader = every_face_up(etcd_cluster)
    follower = next(i for i in etcd_cluster.ids if i != leader)
    ours = run_script(etcd_cluster.grpc_endpoint(follower))
    theirs = run_script(etcd_ref.endpoint)
    for mine, reference in zip(ours, theirs):
        assert mine == reference
    by_command: dict[str, tuple[int, str, str]] = {}  # the first run of each command
    for args, code, stdout, stderr in ours:
        by_command.setdefault(" ".join(args), (code, stdout, stderr))
    assert by_command[f"{ALICE} get /app/x"][:2] == (0, "/app/x\n1\n")
    assert by_command[f"{ALICE} put /app/x 2"] == (1, "", "Error: etcdserver: permission denied")
    assert by_command[f"{ALICE} watch /other/ --prefix"] == (5, "", "Error: watch is canceled by the server")
    assert by_command[f"{ALICE} txn"] == (1, "", "Error: etcdserver: permission denied")
    assert by_command["--user=alice:newpw get /app/x"][:2] == (0, "/app/x\n1\n")
    assert ours[-1][1:3] == (0, "/other/y\n2\n")  # auth off again


# -- tokens through the gRPC stubs and the gateway -------------------------------------------


def test_a_token_from_one_member_works_at_every_member_and_in_streams(shared_etcd_cluster: LocalCluster) -> None:
    cluster = shared_etcd_cluster
    leader = every_face_up(cluster)
    follower = next(i for i in cluster.ids if i != leader)
    other = next(i for i in cluster.ids if i not in (leader, follower))
    with grpc.insecure_channel(cluster.grpc_endpoint(follower)) as channel:
        auth_stub, kv_stub = rpc_pb2_grpc.AuthStub(channel), rpc_pb2_grpc.KVStub(channel)
        auth_stub.UserAdd(rpc_pb2.AuthUserAddRequest(name="root", password="rootpw"), timeout=RPC_TIMEOUT)
        auth_stub.RoleAdd(rpc_pb2.AuthRoleAddRequest(name="root"), timeout=RPC_TIMEOUT)
        auth_stub.UserGrantRole(rpc_pb2.AuthUserGrantRoleRequest(user="root", role="root"), timeout=RPC_TIMEOUT)
        auth_stub.AuthEnable(rpc_pb2.AuthEnableRequest(), timeout=RPC_TIMEOUT)
        token = ""
        try:
            token = auth_stub.Authenticate(rpc_pb2.AuthenticateRequest(name="root", password="rootpw"),
                                           timeout=RPC_TIMEOUT).token
            assert token
            assert failure(kv_stub.Put, rpc_pb2.PutRequest(key=b"/tok/a", value=b"1")) == \
                (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty")
            with pytest.raises(grpc.RpcError) as raised:
                kv_stub.Put(rpc_pb2.PutRequest(key=b"/tok/a", value=b"1"), timeout=RPC_TIMEOUT,
                            metadata=(("token", "bogus"),))
            assert (raised.value.code(), raised.value.details()) == \
                (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token")
            put = kv_stub.Put(rpc_pb2.PutRequest(key=b"/tok/a", value=b"1"), timeout=RPC_TIMEOUT,
                              metadata=(("token", token),))
            with grpc.insecure_channel(cluster.grpc_endpoint(other)) as other_channel:
                got = rpc_pb2_grpc.KVStub(other_channel).Range(rpc_pb2.RangeRequest(key=b"/tok/a"),
                                                               timeout=RPC_TIMEOUT, metadata=(("token", token),))
                assert [kv.value for kv in got.kvs] == [b"1"]
                watch = rpc_pb2_grpc.WatchStub(other_channel).Watch(
                    iter([rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
                        key=b"/tok/a", start_revision=put.header.revision))]),
                    timeout=RPC_TIMEOUT, metadata=(("token", token),))
                created = next(watch)
                assert created.created and not created.canceled
                events = next(watch)
                assert [e.kv.value for e in events.events] == [b"1"]
                watch.cancel()
            gateway_token_use(cluster.gateway_url(leader), token)
        finally:
            auth_stub.AuthDisable(rpc_pb2.AuthDisableRequest(), timeout=RPC_TIMEOUT, metadata=(("token", token),))
            auth_stub.UserDelete(rpc_pb2.AuthUserDeleteRequest(name="root"), timeout=RPC_TIMEOUT)
            auth_stub.RoleDelete(rpc_pb2.AuthRoleDeleteRequest(role="root"), timeout=RPC_TIMEOUT)


def _post(url: str, body: dict[str, Any], token: str = "") -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Authorization": token} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def gateway_token_use(gateway: str, token: str) -> None:
    """The gateway: Authenticate's token in the body, then the Authorization header."""
    status, body = _post(f"{gateway}/v3/auth/authenticate", {"name": "root", "password": "rootpw"})
    assert status == 200 and body["token"]
    assert _post(f"{gateway}/v3/kv/range", {"key": "L3Rvay9h"}, body["token"])[1]["kvs"][0]["value"] == "MQ=="
    status, refused = _post(f"{gateway}/v3/kv/range", {"key": "L3Rvay9h"})
    assert status == 400 and refused["error"] == "etcdserver: user name is empty"
    status, refused = _post(f"{gateway}/v3/kv/range", {"key": "L3Rvay9h"}, "bogus")
    assert status == 401 and refused["error"] == "etcdserver: invalid auth token"
    with urllib.request.urlopen(f"{gateway}/health", timeout=RPC_TIMEOUT) as health:  # no token: still healthy
        assert json.loads(health.read()) == {"health": "true"}
