"""etcd's JSON gateway on a jangada member (node/etcd/gateway.py): the same HTTP
requests answered as etcd 3.4's gateway answers them.

Real clusters (`etcd_cluster`) for the KV calls, errors, health and version and
malformed HTTP; the same scripts against a real etcd 3.4 when its binary is
installed, compared after ids, revisions and terms are masked. The streaming
machinery (chunks, half-close, a client that leaves, an error mid-stream) is
checked in process against small services shaped like the real ones, since
the watch and lease services land on other branches; the cluster tests for
them run once those services are in `Services`.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.client
import json
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, v3election_pb2
from cluster.ports import free_ports
from node.etcd import errors, routes
from node.etcd.calls import guarded
from node.etcd.gateway import Gateway
from node.etcd.services import Services
from node.localcluster import LocalCluster
from tests.etcd.reference_etcd import ETCD, reference_etcd

ETCD_SOURCES = Path("/usr/share/gocode/src/go.etcd.io/etcd")
HTTP_TIMEOUT = 10.0
#: Values that differ between any two servers: masked before comparing.
MASKED = frozenset({"cluster_id", "member_id", "raft_term", "revision", "create_revision", "mod_revision", "ID",
                    "compact_revision"})

Call = Callable[[str, Any], tuple[int, Any]]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def http_request(url: str, path: str, body: Any = None, method: str = "POST",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=HTTP_TIMEOUT)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def caller(url: str) -> Call:
    def call(path: str, body: Any) -> tuple[int, Any]:
        status, _, data = http_request(url, path, body)
        return status, json.loads(data)
    return call


def masked(value: Any, also: frozenset[str] = frozenset()) -> Any:
    if isinstance(value, dict):
        return {key: "*" if key in MASKED or key in also else masked(item, also) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item, also) for item in value]
    return value


def lease_keys_masked(value: Any) -> Any:
    """Lock and election keys end in their lease's id (NAME/LEASE_HEX): masked like ids."""
    if isinstance(value, dict):
        return {key: _lease_key(item) if key == "key" else lease_keys_masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [lease_keys_masked(item) for item in value]
    return value


def _lease_key(encoded: str) -> str:
    return b64(re.sub(r"/[0-9a-f]+$", "/*", base64.b64decode(encoded).decode()))


def raw(url: str, data: bytes, close_after_send: bool = False) -> bytes:
    """Bytes sent on a fresh connection, and everything answered until it closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(data)
        if close_after_send:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def has_service(name: str) -> bool:
    return name in {field.name for field in dataclasses.fields(Services)}


# -- a real etcd 3.4 to compare with ---------------------------------------------------------------


@pytest.fixture(scope="module")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A single-member etcd 3.4 whose client URL serves its gateway; skipped without etcd."""
    with reference_etcd(tmp_path_factory.mktemp("etcd-gateway")) as etcd:
        yield etcd.url


# -- the jangada cluster --------------------------------------------------------------------------


@pytest.fixture
def etcd_cluster(shared_etcd_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster: the tests on it neither kill members nor change
    membership, auth or alarms, and keep to their own keys (the one that kills
    members makes its own)."""
    return shared_etcd_cluster


@pytest.fixture
def own_cluster(make_etcd_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return make_etcd_cluster()


# -- scripts run against both -------------------------------------------------------------------


def kv_script(call: Call, prefix: str) -> list[tuple[int, Any]]:
    key = b64(prefix + "a")
    out = [call("/v3/kv/put", {"key": key, "value": b64("one")}),
           call("/v3/kv/put", {"key": key, "value": b64("two"), "prev_kv": True}),
           call("/v3/kv/put", {"key": b64(prefix + "b"), "value": b64("<&>\u00e9")}),
           call("/v3/kv/range", {"key": key}),
           call("/v3beta/kv/range", {"key": key, "keys_only": True}),
           call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1)),
                                 "limit": 1, "sort_order": "DESCEND", "sort_target": "KEY"}),
           call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1)),
                                 "count_only": True}),
           call("/v3/kv/range", {"key": b64(prefix + "missing")}),
           call("/v3/kv/deleterange", {"key": key, "prev_kv": True}),
           call("/v3/kv/deleterange", {"key": key})]
    status, put = call("/v3/kv/put", {"key": key, "value": b64("three")})
    revision = int(put["header"]["revision"])
    out += [(status, put),
            call("/v3/kv/compaction", {"revision": str(revision)}),
            call("/v3/kv/compaction", {"revision": revision}),
            call("/v3/kv/range", {"key": key, "revision": str(revision - 1)}),
            call("/v3/kv/range", {"key": key, "revision": revision + 1000})]
    return out


def txn_script(call: Call, prefix: str) -> list[tuple[int, Any]]:
    key = b64(prefix + "t")
    compare = [{"key": key, "result": "EQUAL", "target": "VALUE", "value": b64("v1")}]
    txn = {"compare": compare,
           "success": [{"request_put": {"key": key, "value": b64("v2"), "prev_kv": True}}],
           "failure": [{"request_range": {"key": key}}]}
    return [call("/v3/kv/put", {"key": key, "value": b64("v1")}), call("/v3/kv/txn", txn), call("/v3/kv/txn", txn),
            call("/v3/kv/txn", {"compare": [{"key": key, "target": "VERSION", "result": "GREATER", "version": 1}],
                                "success": [{"request_delete_range": {"key": key, "prev_kv": True}}]})]


#: Requests etcd refuses, with the part of the answer compared: ("all") the whole
#: error body, or ("code") status and gRPC code only, where the message is Go's
#: JSON decoder's own wording (see the report for the differences).
ERROR_CASES: list[tuple[str, bytes, str]] = [
    ("/v3/kv/range", b"", "all"),
    ("/v3/kv/range", b'{"key":""}', "all"),
    ("/v3/kv/put", b'{"value":"YQ=="}', "all"),
    ("/v3/kv/range", b'{"key":"!!!"}', "all"),
    ("/v3/kv/range", b'{"key":"Zm9v","sort_order":"NOPE"}', "all"),
    ("/v3/kv/range", b"[1]", "all"),
    ("/v3/kv/range", b'{"key":"', "all"),
    ("/v3/kv/range", b'{"key":5}', "code"),
    ("/v3/kv/range", b'{"key":"Zm9v","limit":"x"}', "code"),
    ("/v3/kv/range", b"{nope", "code"),
]


def error_answers(url: str) -> list[tuple[int, Any]]:
    answers = []
    for path, body, compared in ERROR_CASES:
        status, headers, data = http_request(url, path, body)
        assert headers["content-type"] == "application/json"
        reply = json.loads(data)
        answers.append((status, reply if compared == "all" else reply["code"]))
    return answers


# -- against a jangada cluster ----------------------------------------------------------------


@pytest.mark.timeout(120)
def test_kv_calls_answer_as_etcds_gateway(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    ours = kv_script(caller(etcd_cluster.gateway_url(2)), "gw/kv/")
    statuses = [status for status, _ in ours]
    assert statuses == [200] * 12 + [400, 400, 400], ours
    put, second, _, got = ours[0], ours[1], ours[2], ours[3]
    assert set(put[1]["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert second[1]["prev_kv"]["value"] == b64("one")
    assert got[1]["kvs"][0]["value"] == b64("two") and got[1]["count"] == "1"
    assert ours[12][1]["code"] == grpc.StatusCode.OUT_OF_RANGE.value[0]
    if ETCD is not None:
        theirs = kv_script(caller(request.getfixturevalue("etcd_url")), "gw/kv/")
        assert masked(ours) == masked(theirs)


@pytest.mark.timeout(120)
def test_txn_answers_as_etcds_gateway(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    ours = txn_script(caller(etcd_cluster.gateway_url(1)), "gw/txn/")
    assert [status for status, _ in ours] == [200] * 4, ours
    assert ours[1][1]["succeeded"] is True and "succeeded" not in ours[2][1]
    if ETCD is not None:
        theirs = txn_script(caller(request.getfixturevalue("etcd_url")), "gw/txn/")
        assert masked(ours) == masked(theirs)


@pytest.mark.timeout(120)
def test_errors_have_etcds_status_and_body(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    ours = error_answers(etcd_cluster.gateway_url(3))
    assert ours[1] == (400, {"error": errors.EMPTY_KEY.message, "message": errors.EMPTY_KEY.message, "code": 3})
    assert all(status == 400 for status, _ in ours), ours
    if ETCD is not None:
        assert ours == error_answers(request.getfixturevalue("etcd_url"))


@pytest.mark.timeout(120)
def test_health_version_and_plain_http_answers(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    def answers(url: str) -> list[tuple[int, bytes]]:
        out = []
        for path, method in [("/health", "GET"), ("/health", "POST"), ("/version", "GET"),
                             ("/v3/kv/range", "GET"), ("/v3/kv/nothing", "POST"), ("/v3alpha/kv/range", "POST"),
                             ("/nothing", "GET")]:
            status, headers, body = http_request(url, path, b"{}" if method == "POST" else None, method)
            out.append((status, body))
        return out

    ours = answers(etcd_cluster.gateway_url(1))
    assert ours[0] == (200, b'{"health":"true"}')
    assert ours[2] == (200, b'{"etcdserver":"3.4.0","etcdcluster":"3.4.0"}')
    if ETCD is not None:
        theirs = answers(request.getfixturevalue("etcd_url"))
        assert ours[:2] + ours[3:] == theirs[:2] + theirs[3:]
        assert json.loads(theirs[2][1]).keys() == json.loads(ours[2][1]).keys()


@pytest.mark.timeout(120)
def test_health_is_false_without_a_quorum(own_cluster: LocalCluster) -> None:
    etcd_cluster = own_cluster
    etcd_cluster.kill(2)
    etcd_cluster.kill(3)
    status, _, body = http_request(etcd_cluster.gateway_url(1), "/health", method="GET")
    assert (status, body) == (503, b'{"health":"false"}\n')


@pytest.mark.timeout(120)
def test_malformed_http_gets_4xx_and_the_node_stays_up(etcd_cluster: LocalCluster) -> None:
    url = etcd_cluster.gateway_url(1)
    running = etcd_cluster.running()
    head = b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\n"
    cases = [
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 "),
        (b"GET /health HTTP/2.0\r\n\r\n", b"HTTP/1.1 505 "),
        (b"GET /health HTTP/1.1\r\nX-Long: " + b"x" * 20000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", b"HTTP/1.1 431 "),
        (b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", b"HTTP/1.1 400 "),
        (head + b"Content-Length: abc\r\n\r\n", b"HTTP/1.1 400 "),
        (head + b"Content-Length: 100000000\r\n\r\n", b"HTTP/1.1 413 "),
        (head + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", b"HTTP/1.1 400 "),
        (head + b"Transfer-Encoding: gzip\r\n\r\n", b"HTTP/1.1 501 "),
        (head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"HTTP/1.1 400 "),
        (head + b"Connection: close\r\nContent-Length: 10\r\n\r\n[1,2,3,4]x", b"HTTP/1.1 400 "),
        (head + b"Connection: close\r\nContent-Length: 6\r\n\r\n\xff\xfe\x00{}}", b"HTTP/1.1 400 "),
    ]
    for data, expected in cases:
        assert raw(url, data).startswith(expected), data[:60]
    assert raw(url, head + b"Content-Length: 100\r\n\r\n{\"key\":", close_after_send=True) == b""  # truncated
    # A chunked body is read whole; a connection carries several requests (keep-alive).
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"key\r\n9\r\n\":\"Zm9v\"}\r\n0\r\n\r\n"
    two = raw(url, chunked + b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert two.startswith(b"HTTP/1.1 200 ") and two.count(b"HTTP/1.1 200 ") == 2 and b"3.4.0" in two
    huge = json.dumps({"key": b64("k"), "value": base64.b64encode(b"x" * 2_200_000).decode()}).encode()
    status, _, body = http_request(url, "/v3/kv/put", huge)
    assert status == 429 and json.loads(body)["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert etcd_cluster.running() == running
    assert http_request(url, "/health", method="GET")[0] == 200
    assert http_request(url, "/v3/kv/range", {"key": b64("k")})[0] == 200


def stream_lines(url: str, path: str, body: Any, count: int, between: Callable[[], Any] | None = None
                 ) -> tuple[int, list[Any]]:
    """The status and first `count` JSON lines of a streaming call; `between` runs
    after the first line (e.g. a put a watch should see)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=HTTP_TIMEOUT)
    try:
        connection.request("POST", path, body=json.dumps(body))
        reply = connection.getresponse()
        assert reply.getheader("Transfer-Encoding") == "chunked"
        lines = [json.loads(reply.readline())]
        if between is not None:
            between()
        lines += [json.loads(reply.readline()) for _ in range(count - 1)]
        return reply.status, lines
    finally:
        connection.close()


def watch_script(url: str, prefix: str) -> tuple[int, list[Any]]:
    key = b64(prefix + "w")
    return stream_lines(url, "/v3/watch", {"create_request": {"key": key, "prev_kv": True}}, 3, lambda: [
        http_request(url, "/v3/kv/put", {"key": key, "value": b64("seen")}),
        http_request(url, "/v3/kv/deleterange", {"key": key})])


def lease_script(url: str) -> list[Any]:
    status, _, body = http_request(url, "/v3/lease/grant", {"TTL": 30})
    lease = json.loads(body)
    keepalive = stream_lines(url, "/v3/lease/keepalive", {"ID": lease["ID"]}, 1)
    ttl_status, ttl = caller(url)("/v3/kv/lease/timetolive", {"ID": lease["ID"]})
    assert 25 <= int(ttl.pop("TTL")) <= 30  # the seconds left: a matter of timing
    return [(status, lease), keepalive, (ttl_status, ttl),
            caller(url)("/v3/lease/revoke", {"ID": lease["ID"]}),
            caller(url)("/v3/lease/revoke", {"ID": lease["ID"]})]


@pytest.mark.timeout(120)
@pytest.mark.skipif(not has_service("watch"), reason="the watch service is not in Services yet")
def test_a_watch_stream_sees_a_put(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    status, (created, put, deleted) = watch_script(etcd_cluster.gateway_url(2), "gw/watch/")
    assert status == 200 and created["result"]["created"] is True
    assert put["result"]["events"][0]["kv"]["value"] == b64("seen")
    assert deleted["result"]["events"][0]["type"] == "DELETE"
    if ETCD is not None:
        theirs = watch_script(request.getfixturevalue("etcd_url"), "gw/watch/")
        assert masked((status, [created, put, deleted])) == masked(theirs)


@pytest.mark.timeout(120)
@pytest.mark.skipif(not has_service("lease"), reason="the lease service is not in Services yet")
def test_lease_grant_keepalive_and_time_to_live(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    ours = lease_script(etcd_cluster.gateway_url(3))
    (status, lease), keepalive, ttl, revoked, again = ours
    assert status == 200 and lease["TTL"] == "30" and int(lease["ID"]) > 0
    assert keepalive[1][0]["result"]["ID"] == lease["ID"]
    assert ttl[1]["grantedTTL"] == "30" and revoked[0] == 200
    assert again == (404, {"error": errors.LEASE_NOT_FOUND.message, "message": errors.LEASE_NOT_FOUND.message,
                           "code": grpc.StatusCode.NOT_FOUND.value[0]})
    if ETCD is not None:
        assert masked(ours) == masked(lease_script(request.getfixturevalue("etcd_url")))


def auth_script(url: str) -> list[tuple[int, Any]]:
    call = caller(url)
    return [call("/v3/auth/authenticate", {"name": "root", "password": "x"}), call("/v3/auth/user/list", {}),
            call("/v3/auth/role/list", {}), call("/v3/auth/user/get", {"name": "nobody"}),
            call("/v3/auth/role/get", {"role": "nobody"}), call("/v3/auth/disable", {})]


@pytest.mark.timeout(120)
@pytest.mark.skipif(not has_service("auth"), reason="the auth service is not in Services yet")
def test_auth_calls_answer_as_etcds_gateway(etcd_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    ours = auth_script(etcd_cluster.gateway_url(1))
    assert ours[0][0] == 412 and ours[0][1]["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    if ETCD is not None:
        assert masked(ours) == masked(auth_script(request.getfixturevalue("etcd_url")))


def lock_election_script(url: str, prefix: str) -> list[Any]:
    call = caller(url)
    _, lease = call("/v3/lease/grant", {"TTL": 30})
    name = b64(prefix + "e")
    status, locked = call("/v3/lock/lock", {"name": b64(prefix + "l"), "lease": lease["ID"]})
    out: list[Any] = [(status, locked), call("/v3/lock/unlock", {"key": locked["key"]})]
    status, campaign = call("/v3/election/campaign", {"name": name, "lease": lease["ID"], "value": b64("me")})
    out += [(status, campaign), call("/v3/election/leader", {"name": name}),
            stream_lines(url, "/v3/election/observe", {"name": name}, 1),
            call("/v3/election/proclaim", {"leader": campaign["leader"], "value": b64("again")}),
            call("/v3/election/resign", {"leader": campaign["leader"]}),
            call("/v3/election/leader", {"name": name})]
    return out


@pytest.mark.timeout(120)
@pytest.mark.skipif(not (has_service("lock") and has_service("election") and has_service("lease")),
                    reason="the lock, election and lease services are not all in Services yet")
def test_lock_and_election_answer_as_etcds_gateway(etcd_cluster: LocalCluster,
                                                   request: pytest.FixtureRequest) -> None:
    ours = lock_election_script(etcd_cluster.gateway_url(2), "gw/le/")
    # etcd's "election: no leader" is not a gRPC status error: grpc-gateway's Unknown, 500.
    assert [answer[0] for answer in ours] == [200] * 7 + [500], ours
    assert ours[4][1][0]["result"]["kv"]["value"] == b64("me")
    if ETCD is not None:
        theirs = lock_election_script(request.getfixturevalue("etcd_url"), "gw/le/")
        ids = frozenset({"lease", "rev"})
        assert masked(lease_keys_masked(ours), ids) == masked(lease_keys_masked(theirs), ids)


# -- the route table ----------------------------------------------------------------------------


def test_routes_are_etcds_annotated_paths() -> None:
    """Every `post: "/v3/..."` annotation in etcd 3.4's protos is a route, and no other."""
    files = [ETCD_SOURCES / "etcdserver/etcdserverpb/rpc.proto",
             ETCD_SOURCES / "etcdserver/api/v3lock/v3lockpb/v3lock.proto",
             ETCD_SOURCES / "etcdserver/api/v3election/v3electionpb/v3election.proto"]
    if not all(path.exists() for path in files):
        pytest.skip("etcd 3.4's sources are not installed")
    annotated = set()
    for path in files:
        text = path.read_text()
        for service, body in re.findall(r"service (\w+) \{(.*?)\n\}", text, re.S):
            for method, paths in re.findall(r"rpc (\w+)\(.*?\{(.*?)\};?\s*\}", body, re.S):
                annotated |= {(p, service, method) for p in re.findall(r'post: "/v3/([^"]+)"', paths)}
    ours = {(path, service, method) for path, _, service, method in routes.ROUTES_3_4}
    # HashKV's annotation repeats Hash's path; grpc-gateway registers Hash first, so etcd never routes to HashKV.
    assert ours == annotated - {("maintenance/hash", "Maintenance", "HashKV")}


def test_routes_follow_the_services_present() -> None:
    @dataclasses.dataclass
    class OnlyKv:
        kv: object

    table = routes.build_routes(OnlyKv(object()))
    assert sorted(table) == ["kv/compaction", "kv/deleterange", "kv/put", "kv/range", "kv/txn"]
    assert table["kv/range"].request_class is rpc_pb2.RangeRequest


# -- streams, in process ------------------------------------------------------------------------


class FakeKv:
    async def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        if not request.key:
            raise errors.EtcdError(errors.EMPTY_KEY)
        return rpc_pb2.RangeResponse(count=len(request.key))


class FakeWatch:
    """Shaped like a watch servicer: an async generator over the request stream."""

    def __init__(self) -> None:
        self.requests: list[rpc_pb2.WatchRequest] = []
        self.ended = asyncio.Event()

    async def Watch(self, requests: AsyncIterator[rpc_pb2.WatchRequest], context: Any
                    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        try:
            async for watch in requests:
                self.requests.append(watch)
                yield rpc_pb2.WatchResponse(watch_id=len(self.requests), created=True)
            yield rpc_pb2.WatchResponse(watch_id=99)  # never reached: the request side stays open
        finally:
            self.ended.set()


class FakeLease:
    async def LeaseKeepAlive(self, requests: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest], context: Any
                             ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        async for keepalive in requests:
            yield rpc_pb2.LeaseKeepAliveResponse(ID=keepalive.ID, TTL=7)


class FakeElection:
    """Written in grpc.aio's write() style, failing after one result."""

    async def Observe(self, request: v3election_pb2.LeaderRequest, context: Any) -> None:
        await context.write(v3election_pb2.LeaderResponse(kv={"key": request.name}))
        await context.abort(grpc.StatusCode.NOT_FOUND, "election: no leader")


class FakeLock:
    """A lock that is never free: Lock waits until its call is cancelled."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.abandoned = asyncio.Event()

    async def Lock(self, request: Any, context: Any) -> Any:
        self.waiting.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.abandoned.set()


@dataclasses.dataclass
class FakeServices:
    kv: Any
    watch: FakeWatch
    lease: FakeLease
    election: FakeElection
    lock: FakeLock


async def _exchange(port: int, data: bytes, results: int | None = None) -> bytes:
    """Send `data`; read until the connection closes, or until `results` stream results arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        if results is None:
            return await asyncio.wait_for(reader.read(), HTTP_TIMEOUT)
        received = b""
        while received.count(b"}\n\r\n") < results:  # a result chunk ends with grpc-gateway's "\n"
            received += await asyncio.wait_for(reader.read(4096), HTTP_TIMEOUT)
        return received
    finally:
        writer.close()


def post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def chunks(received: bytes) -> list[bytes]:
    """The chunked body's chunks."""
    body = received.split(b"\r\n\r\n", 1)[1]
    out = []
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        out.append(rest[:length])
        body = rest[length + 2:]
    return out


def run_gateway(scenario: Callable[[Gateway, int, FakeServices], Any]) -> Any:
    async def main() -> Any:
        services = FakeServices(guarded(FakeKv()), FakeWatch(), FakeLease(), FakeElection(), FakeLock())
        port = free_ports(1)[0]
        gateway = Gateway(services, f"127.0.0.1:{port}")
        await gateway.start()
        try:
            return await scenario(gateway, port, services)
        finally:
            await gateway.stop()
    return asyncio.run(main())


@pytest.mark.timeout(30)
def test_watch_streams_results_and_ends_when_the_client_leaves() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> None:
        body = b'{"create_request":{"key":"YQ=="}}\n{"create_request":{"key":"Yg=="}}'
        received = await _exchange(port, post("/v3/watch", body), results=2)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked" in received
        assert [json.loads(chunk) for chunk in chunks(received)] == [
            {"result": {"watch_id": "1", "created": True}}, {"result": {"watch_id": "2", "created": True}}]
        assert all(chunk.endswith(b"\n") for chunk in chunks(received))
        await asyncio.wait_for(services.watch.ended.wait(), 5)  # the client closed: the call ended
        assert [w.create_request.key for w in services.watch.requests] == [b"a", b"b"]

    run_gateway(scenario)


@pytest.mark.timeout(30)
def test_a_bad_first_watch_request_is_grpc_gateways_500() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> bytes:
        return await _exchange(port, post("/v3/watch", b'{"create_request":{"key":5}}'))

    received = run_gateway(scenario)
    assert received.startswith(b"HTTP/1.1 500 ")
    reply = json.loads(received.split(b"\r\n\r\n", 1)[1])
    assert reply["code"] == 2 and reply["error"] == reply["message"]


@pytest.mark.timeout(30)
def test_keepalive_answers_each_request_then_ends_with_the_body() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> bytes:
        return await _exchange(port, post("/v3/lease/keepalive", b'{"ID":"5"} {"ID":6}'))

    received = run_gateway(scenario)
    assert received.endswith(b"0\r\n\r\n")
    assert [json.loads(chunk) for chunk in chunks(received)] == [
        {"result": {"ID": "5", "TTL": "7"}}, {"result": {"ID": "6", "TTL": "7"}}]


@pytest.mark.timeout(30)
def test_an_error_after_a_result_is_grpc_gateways_error_chunk() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> bytes:
        return await _exchange(port, post("/v3/election/observe", b'{"name":"ZQ=="}'))

    received = run_gateway(scenario)
    first, error = chunks(received)
    assert json.loads(first) == {"result": {"kv": {"key": "ZQ=="}}}
    assert json.loads(error) == {"error": {"grpc_code": 5, "http_code": 404, "message": "election: no leader",
                                           "http_status": "Not Found"}}


@pytest.mark.timeout(30)
def test_a_lock_waiter_whose_client_leaves_is_cancelled() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post("/v3/lock/lock", b'{"name":"bA=="}'))
        await asyncio.wait_for(services.lock.waiting.wait(), 5)
        writer.close()
        await asyncio.wait_for(services.lock.abandoned.wait(), 5)

    run_gateway(scenario)


@pytest.mark.timeout(30)
def test_unary_errors_from_guarded_services_and_keep_alive() -> None:
    async def scenario(gateway: Gateway, port: int, services: FakeServices) -> bytes:
        return await _exchange(port, post("/v3/kv/range", b"{}") + post("/v3/kv/range", b'{"key":"YWI="}')
                               + b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")

    received = run_gateway(scenario)
    assert received.count(b"HTTP/1.1 ") == 3
    assert b'{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}' \
        in received
    assert b'{"count":"2"}' in received


# -- a gateway client ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_etcd3gw_client_works_unchanged(etcd_cluster: LocalCluster) -> None:
    """etcd3gw (a Python client of etcd's gateway) discovers /v3/ from /version and
    reads and writes keys through any member."""
    etcd3gw = pytest.importorskip("etcd3gw")
    parts = urlsplit(etcd_cluster.gateway_url(3))
    client = etcd3gw.Etcd3Client(host=parts.hostname, port=parts.port, timeout=HTTP_TIMEOUT)
    assert client.put("gw/client/a", "1") and client.put("gw/client/b", b"\x00two")
    assert client.get("gw/client/a") == [b"1"]
    value, meta = client.get("gw/client/b", metadata=True)[0]
    assert value == b"\x00two" and meta["key"] == b"gw/client/b" and int(meta["mod_revision"]) > 1
    assert sorted(value for value, _ in client.get_prefix("gw/client/")) == [b"\x00two", b"1"]
    assert client.delete("gw/client/a") and not client.delete("gw/client/a")
    assert client.get("gw/client/a") == [] and client.api_path == "/v3/"
    assert client.delete_prefix("gw/client/") and client.get_prefix("gw/client/") == []


@pytest.mark.timeout(120)
@pytest.mark.skipif(not (has_service("cluster") and has_service("maintenance")),
                    reason="the cluster and maintenance services are not in Services yet")
def test_cluster_and_maintenance_through_the_gateway(etcd_cluster: LocalCluster) -> None:
    call = caller(etcd_cluster.gateway_url(1))
    status, listed = call("/v3/cluster/member/list", {})
    assert status == 200 and sorted(int(member["ID"]) for member in listed["members"]) == etcd_cluster.ids
    status, state = call("/v3/maintenance/status", {})
    assert status == 200 and state["version"].startswith("3.4.") and int(state["leader"]) in etcd_cluster.ids
    status, alarms = call("/v3/maintenance/alarm", {"action": "GET"})
    assert status == 200 and "alarms" not in alarms
    status, hashed = call("/v3/maintenance/hash", {})
    assert status == 200 and "hash" in hashed
