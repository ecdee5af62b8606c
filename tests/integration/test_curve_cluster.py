"""A `supervisor up 3 --secure` cluster (issue 15): CURVE on every native port.

One cluster for the module: who may connect to the client and peer ports, what a
spoofed peer frame costs (nothing but a counter), and the garbage test's throws
on every port of a secure member (plaintext, unknown-key and member-key CURVE
connections on the ZeroMQ ports; junk on the TLS faces), with no node crash."""
from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import zmq

from cluster.client import Client
from cluster.errors import ClientError
from cluster.curve_keys import CurveClient, curve_client_for, read_key_file
from cluster.discovery import ClusterState
from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.protocol import ErrorCode, ErrorReply, decode_watch_frames
from node import wire
from node.raft.messages import Heartbeat
from tests.integration import etcd_garbage
from tests.integration.native_garbage import garbage_frames, raw_tcp_garbage, spray
from tests.supervisor.harness import Session, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, ClusterState, str]]:
    session = Session(tmp_path_factory.mktemp("secure"))
    try:
        up = session.supervisor("up", "3", "--secure", "--detach")
        assert up.returncode == 0, up.stdout + up.stderr
        state = session.state()
        assert state is not None
        yield session, state, up.stdout
    finally:
        session.close()


def _client(state: ClusterState, **options: Any) -> Client:
    return Client(state.endpoints(), curve=curve_client_for(state.nodes), **options)


def _status(state: ClusterState, node_id: int) -> dict[str, Any]:
    with _client(state, timeout=5.0) as client:
        return client.status(state.node(node_id).client)


def _dropped(state: ClusterState, node_id: int, kind: str) -> int:
    return int(_status(state, node_id)["dropped"].get(kind, 0))


def _member_keys(session: Session, node_id: int) -> tuple[str, str]:
    return read_key_file(session.layout.root / "keys" / f"member-{node_id}.key")


def _curve(server_public: str, pair: tuple[bytes, bytes] | None = None) -> Callable[[zmq.Socket[bytes]], None]:
    """Socket set-up for a CURVE client of `server_public` with `pair` (or a fresh one)."""
    public, secret = pair or zmq.curve_keypair()

    def setup(s: zmq.Socket[bytes]) -> None:
        s.setsockopt(zmq.CURVE_SERVERKEY, server_public.encode())
        s.setsockopt(zmq.CURVE_PUBLICKEY, public)
        s.setsockopt(zmq.CURVE_SECRETKEY, secret)
    return setup


def _send_peer_frames(endpoint: str, frames: list[bytes], setup: Callable[[zmq.Socket[bytes]], None],
                      linger_ms: int = 1000) -> None:
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        setup(s)
        s.setsockopt(zmq.LINGER, linger_ms)
        s.connect(endpoint)
        for frame in frames:
            s.send(frame)
        time.sleep(0.5)
        s.close()
    finally:
        ctx.term()


def test_the_startup_lines_and_status_say_the_cluster_is_secure(secure: tuple[Session, ClusterState, str]) -> None:
    session, state, up_output = secure
    assert "security: SECURE" in up_output and state.ca in up_output
    status = session.supervisor("status")
    assert status.returncode == 0 and "security: SECURE" in status.stdout, status.stdout + status.stderr
    assert all(n.curve_public for n in state.nodes) and Path(state.ca).is_file()
    config = session.layout.config.read_text()
    assert "[curve]\nenabled = true" in config and "https://" in config
    for node_id in (1, 2, 3):
        key = session.layout.root / "keys" / f"member-{node_id}.key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert read_key_file(key)[1] not in up_output + status.stdout + config  # secrets are never shown


def test_a_curve_client_with_the_members_keys_works(secure: tuple[Session, ClusterState, str]) -> None:
    session, state, _ = secure
    with _client(state) as client:
        client.put("secure/a", "1")
        got = client.get("secure/a")
        assert got is not None and got.value == b"1"
    # The CLI finds the keys in the state file by itself.
    put = session.cli("put", "secure/b", "2")
    assert put.returncode == 0, put.stdout + put.stderr
    got_b = session.cli("get", "secure/b")
    assert got_b.returncode == 0 and "2" in got_b.stdout, got_b.stdout + got_b.stderr


def test_a_plaintext_client_or_a_wrong_server_key_gets_nothing(secure: tuple[Session, ClusterState, str]) -> None:
    _, state, _ = secure
    endpoint = state.node(1).client
    before = _dropped(state, 1, "curve-handshake-failed-client")
    replies = spray(endpoint, [[b"\x81\xa1v\x01"]], None, 1.0)  # plaintext
    assert replies == []
    assert wait_for(lambda: _dropped(state, 1, "curve-handshake-failed-client") > before, 10, "a counted refusal")
    wrong = CurveClient({endpoint: state.node(2).curve_public})  # node 2's key for node 1's port
    with Client([endpoint], curve=wrong, timeout=1.5, attempt_timeout=0.5) as client:
        with pytest.raises(ClientError):
            client.put("secure/never", "x")


def test_a_non_member_key_cannot_connect_to_the_peer_port(secure: tuple[Session, ClusterState, str]) -> None:
    _, state, _ = secure
    term = _status(state, 1)["term"]
    before = _dropped(state, 1, "curve-refused-peer")
    frame = wire.encode(state.cluster_id, Heartbeat(2, 1, term + 100, 0))  # would depose anyone it reached
    _send_peer_frames(state.node(1).peer, [frame] * 5, _curve(state.node(1).curve_public))
    assert wait_for(lambda: _dropped(state, 1, "curve-refused-peer") > before, 10, "a counted refusal")
    assert _status(state, 1)["term"] < term + 100


def test_a_frame_claiming_another_member_is_dropped_and_the_member_keeps_working(
        secure: tuple[Session, ClusterState, str]) -> None:
    session, state, _ = secure
    term = _status(state, 1)["term"]
    before = _dropped(state, 1, "peer-spoofed")
    public3, secret3 = _member_keys(session, 3)
    # Member 3's own key (a compromised member, or its key used by someone else),
    # claiming to be member 2.
    frame = wire.encode(state.cluster_id, Heartbeat(2, 1, term + 100, 0))
    _send_peer_frames(state.node(1).peer, [frame] * 3,
                      _curve(state.node(1).curve_public, (public3.encode(), secret3.encode())))
    assert wait_for(lambda: _dropped(state, 1, "peer-spoofed") >= before + 3, 10, "dropped spoofed frames")
    assert _status(state, 1)["term"] < term + 100
    # Members 2 and 3 are not displaced: the cluster commits and both apply.
    with _client(state) as client:
        revision = client.put("secure/after-spoof", "ok").revision
    for node_id in (1, 2, 3):
        assert wait_for(lambda: _status(state, node_id)["revision"] >= revision, 10, f"node {node_id} applies")


def _tls_context(state: ClusterState, endpoint: str) -> ssl.SSLContext | None:
    """A TLS context trusting the cluster's CA when the face at `endpoint` speaks
    TLS (the etcd faces' TLS comes with issue 15's face work), else None."""
    context = ssl.create_default_context(cafile=state.ca)
    context.load_cert_chain(state.client_cert, state.client_key)
    host, port = endpoint.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return context
    except (ssl.SSLError, OSError):
        return None


def _grpc_channel(state: ClusterState, endpoint: str) -> grpc.Channel:
    """A channel to a member's etcd gRPC face: TLS with the cluster's CA and root's
    certificate when the face speaks TLS, else plaintext."""
    if _tls_context(state, endpoint) is None:
        return grpc.insecure_channel(endpoint)
    credentials = grpc.ssl_channel_credentials(Path(state.ca).read_bytes(), Path(state.client_key).read_bytes(),
                                               Path(state.client_cert).read_bytes())
    return grpc.secure_channel(endpoint, credentials)


def test_every_etcd_face_reaches_the_leader_over_curve(secure: tuple[Session, ClusterState, str]) -> None:
    """A follower's face sends writes to the leader's client port: a CURVE
    connection holding the leader's key (node/etcd/link.py)."""
    _, state, _ = secure
    for node in state.nodes:
        with _grpc_channel(state, node.grpc.split("://", 1)[1]) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            key = f"secure/face-{node.id}".encode()
            kv.Put(rpc_pb2.PutRequest(key=key, value=b"via face"), timeout=10)
            got = kv.Range(rpc_pb2.RangeRequest(key=key), timeout=10)
            assert [kv_.value for kv_ in got.kvs] == [b"via face"]


def test_garbage_on_every_port_of_a_secure_member_crashes_nothing(
        secure: tuple[Session, ClusterState, str]) -> None:
    session, state, _ = secure
    pids = {n.id: n.pid for n in state.nodes}
    rng = random.Random(15)
    frames = garbage_frames(state.cluster_id, rng)
    public3, secret3 = _member_keys(session, 3)
    answered = 0
    for node in state.nodes:
        server = node.curve_public
        raw_tcp_garbage(node.client, rng)
        raw_tcp_garbage(node.peer, rng)
        spray(node.client, frames, None, 0.0)                         # plaintext: refused
        replies = spray(node.client, frames, b"2", 0.5, _curve(server))  # authenticated client: typed answers
        answered += sum(1 for r in replies for rep in decode_watch_frames(r)
                        if isinstance(rep, ErrorReply) and rep.code is ErrorCode.INVALID_REQUEST)
        spray(node.peer, frames, b"2", 0.0)                            # plaintext
        spray(node.peer, frames, b"2", 0.0, _curve(server))            # an unknown key
        if node.id != 3:                                               # a member's key: decoded and dropped
            spray(node.peer, frames, b"2", 0.0, _curve(server, (public3.encode(), secret3.encode())))
        for url in (node.grpc, node.gateway):
            endpoint = url.split("://", 1)[1]
            raw_tcp_garbage("tcp://" + endpoint, rng)
        grpc_endpoint, http_endpoint = node.grpc.split("://", 1)[1], node.gateway.split("://", 1)[1]
        etcd_garbage.raw_http2_garbage(grpc_endpoint, rng)
        with etcd_garbage.abandoned_connections(grpc_endpoint, http_endpoint), \
                etcd_garbage.slowloris(http_endpoint, 10) as drip:
            drip()
            if _tls_context(state, grpc_endpoint) is not None:
                with _grpc_channel(state, grpc_endpoint) as channel:  # the TLS handshake still works
                    grpc.channel_ready_future(channel).result(timeout=10)
            else:
                etcd_garbage.grpc_garbage(grpc_endpoint, rng)
            drip()
    assert answered > 0
    # Nobody died, and the cluster still serves.
    session.track()
    now = session.state()
    assert now is not None and {n.id: n.pid for n in now.nodes} == pids
    assert all(n.restarts == 0 for n in now.nodes)
    with _client(state) as client:
        client.put("secure/after-garbage", "ok")
    for node_id in pids:
        dropped = _status(state, node_id)["dropped"]
        assert dropped.get("curve-handshake-failed-client", 0) > 0, dropped
        assert dropped.get("curve-refused-peer", 0) > 0, dropped
        log = session.layout.node_log(node_id).read_text(errors="replace")
        assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
