"""CURVE on the transport: who may connect to the peer and client ports, and the
member id a peer frame is labelled with (node/transport.py, node/zap.py,
node/peer_link.py's spoofing check)."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import zmq
import zmq.utils.z85

from cluster.curve_keys import MemberKeys, new_key_pair
from cluster.ports import free_ports
from node.address_book import Address, Membership
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.peer_link import PeerLink
from node.raft import ConfState
from node.raft.messages import Heartbeat
from node.transport import Transport, TransportOptions
from node.zap import CLIENT_DOMAIN, PEER_DOMAIN, ZapHandler
from node import wire

pytestmark = pytest.mark.timeout(30)
CLUSTER = "curve-test"
CLIENT_BINDS: dict[int, str] = {}


class Refusals:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, kind: str, detail: str) -> None:
        assert "secret" not in detail
        self.counts[kind] += 1


@pytest.fixture
def keys() -> dict[int, tuple[str, str]]:
    return {i: new_key_pair() for i in (1, 2, 3)}


def _transport(node_id: int, keys: dict[int, tuple[str, str]], refused: Refusals,
               members: tuple[int, ...] = (1, 2)) -> Transport:
    peer, client = free_ports(2)
    public, secret = keys[node_id]
    CLIENT_BINDS[node_id] = f"tcp://127.0.0.1:{client}"
    return Transport(node_id, f"tcp://127.0.0.1:{peer}", f"tcp://127.0.0.1:{client}", {}, TransportOptions(),
                     MemberKeys(node_id, public, secret, {m: keys[m][0] for m in members}), refused)


def _address(t: Transport, socket: zmq.Socket[bytes]) -> str:
    """The TCP address `socket` listens on (the client ROUTER's last bind is inproc)."""
    endpoints = socket.getsockopt_string(zmq.LAST_ENDPOINT)
    if endpoints.startswith("inproc://"):
        return CLIENT_BINDS[t.node_id]
    return endpoints


def _pump(t: Transport, seconds: float) -> list[list[bytes]]:
    """Run the transport's poll loop (ZAP included) for `seconds`; the peer frames seen."""
    got: list[list[bytes]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peer_ready, _ = t.poll(20)
        if peer_ready:
            got += t.receive_batch(t.peer_router, 100)
    return got


@pytest.fixture
def node1(keys: dict[int, tuple[str, str]]) -> Iterator[tuple[Transport, Refusals]]:
    refused = Refusals()
    t = _transport(1, keys, refused)
    yield t, refused
    t.close()


def test_a_member_connects_and_its_frames_carry_its_member_id(node1: tuple[Transport, Refusals],
                                                            keys: dict[int, tuple[str, str]]) -> None:
    t1, refused1 = node1
    t2 = _transport(2, keys, Refusals())
    try:
        t2.add_peer(1, _address(t1, t1.peer_router))
        deadline = time.monotonic() + 5
        got: list[list[bytes]] = []
        while not got and time.monotonic() < deadline:
            t2.send_peer(1, b"hello")
            got = _pump(t1, 0.1)
        assert got and got[0][1:] == [b"hello", b"2"]
        assert not refused1.counts
    finally:
        t2.close()


def test_a_non_member_key_cannot_connect_to_the_peer_port(node1: tuple[Transport, Refusals],
                                                          keys: dict[int, tuple[str, str]]) -> None:
    t1, refused1 = node1
    # Node 3 has a key pair but is not in node 1's config: refused by ZAP.
    t3 = _transport(3, keys, Refusals(), members=(1, 2, 3))
    try:
        t3.add_peer(1, _address(t1, t1.peer_router))
        end = time.monotonic() + 1.5
        got: list[list[bytes]] = []
        while time.monotonic() < end:
            t3.send_peer(1, b"let me in")
            got += _pump(t1, 0.05)
        assert got == []
        assert refused1.counts["curve-refused-peer"] >= 1
    finally:
        t3.close()


def test_a_plaintext_peer_cannot_talk_to_the_peer_port(node1: tuple[Transport, Refusals]) -> None:
    t1, refused1 = node1
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(_address(t1, t1.peer_router))
        s.send(b"plaintext")
        assert _pump(t1, 1.0) == []
        assert refused1.counts["curve-handshake-failed-peer"] >= 1
        s.close()
    finally:
        ctx.destroy(linger=0)


def test_the_client_port_takes_any_key_but_only_over_curve(node1: tuple[Transport, Refusals],
                                                           keys: dict[int, tuple[str, str]]) -> None:
    t1, refused1 = node1
    endpoint = _address(t1, t1.client_router)
    ctx = zmq.Context()
    try:
        plain = ctx.socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(endpoint)
        plain.send(b"plaintext")
        secure = ctx.socket(zmq.DEALER)
        secure.setsockopt(zmq.LINGER, 0)
        public, secret = zmq.curve_keypair()  # an ephemeral client key: any key passes
        secure.setsockopt(zmq.CURVE_SERVERKEY, keys[1][0].encode())
        secure.setsockopt(zmq.CURVE_PUBLICKEY, public)
        secure.setsockopt(zmq.CURVE_SECRETKEY, secret)
        secure.connect(endpoint)
        secure.send(b"encrypted")
        got: list[list[bytes]] = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            _, client_ready = t1.poll(20)
            if client_ready:
                got += t1.receive_batch(t1.client_router, 10)
        assert [frames[1] for frames in got] == [b"encrypted"]
        t1.send_client(got[0][0], b"reply")
        assert secure.poll(2000) and secure.recv() == b"reply"
        _pump(t1, 0.3)
        assert refused1.counts["curve-handshake-failed-client"] >= 1
        assert "curve-refused-client" not in refused1.counts
        plain.close()
        secure.close()
    finally:
        ctx.destroy(linger=0)


def test_a_peer_with_no_known_key_gets_no_connection(node1: tuple[Transport, Refusals]) -> None:
    t1, refused1 = node1
    t1.add_peer(7, "tcp://127.0.0.1:9")
    assert 7 not in t1.dealers and not t1.send_peer(7, b"x")
    assert refused1.counts["curve-unknown-peer-key"] == 1


# -- the spoofing check (node/peer_link.py) -------------------------------------------------


def _link(curve: bool) -> tuple[PeerLink, DroppedFrames]:
    transport = SimpleNamespace(curve=object() if curve else None, dealers={2: None, 3: None},
                                accepts_from=lambda peer: True)
    conf = ConfState((1, 2, 3))
    membership = Membership(1, {i: Address(f"tcp://h:{i}", "") for i in (1, 2, 3)}, conf)
    core = SimpleNamespace(conf=conf, lead=2)
    dropped = DroppedFrames(EventLog(lambda: "node=1"))
    link = PeerLink(1, transport, membership, core, CLUSTER, 1 << 20, 1 << 16,  # type: ignore[arg-type]
                    time.monotonic, dropped, EventLog(lambda: "node=1"))
    return link, dropped


def test_a_frame_claiming_another_member_over_an_authenticated_connection_is_dropped() -> None:
    link, dropped = _link(curve=True)
    from_2 = wire.encode(CLUSTER, Heartbeat(2, 1, 5, 0))
    assert link.receive([b"\x00conn", from_2, b"2"]) == Heartbeat(2, 1, 5, 0)  # the member itself
    assert link.receive([b"\x00conn", from_2, b"3"]) is None  # member 3 claiming to be 2
    assert link.receive([b"\x00conn", from_2, b""]) is None
    assert dropped.counts["peer-spoofed"] == 2
    assert link.receive([b"\x00conn", from_2, b"2"]) == Heartbeat(2, 1, 5, 0)  # still works


def test_without_curve_the_routing_identity_is_only_a_connection_name() -> None:
    link, dropped = _link(curve=False)
    from_2 = wire.encode(CLUSTER, Heartbeat(2, 1, 5, 0))
    assert link.receive([b"\x00\x80\x00\x00\x01", from_2]) == Heartbeat(2, 1, 5, 0)
    assert link.receive([b"\x00conn", from_2, b"2"]) is None
    assert dropped.counts == Counter({"peer-frame-count": 1})


def test_without_curve_a_connection_claiming_a_members_identity_displaces_nobody() -> None:
    """Issue 15's displacement: a DEALER with routing identity b"2" on the peer
    port used to take over member 2's connection (ROUTER_HANDOVER). Peer
    connections carry no identity now: member 2's frames keep arriving."""
    peer1, client1, peer2, client2 = free_ports(4)
    t1 = Transport(1, f"tcp://127.0.0.1:{peer1}", f"tcp://127.0.0.1:{client1}", {}, TransportOptions())
    t2 = Transport(2, f"tcp://127.0.0.1:{peer2}", f"tcp://127.0.0.1:{client2}", {}, TransportOptions())
    ctx = zmq.Context()
    try:
        t2.add_peer(1, f"tcp://127.0.0.1:{peer1}")
        deadline = time.monotonic() + 5
        while not _pump(t1, 0.05) and time.monotonic() < deadline:
            t2.send_peer(1, b"before")
        impostor = ctx.socket(zmq.DEALER)
        impostor.setsockopt(zmq.LINGER, 0)
        impostor.setsockopt(zmq.IDENTITY, b"2")
        impostor.connect(f"tcp://127.0.0.1:{peer1}")
        impostor.send(b"impostor")
        time.sleep(0.3)
        got = _pump(t1, 0.3)
        assert [f[1] for f in got] == [b"impostor"]
        t2.send_peer(1, b"after")
        got = _pump(t1, 0.5)
        assert [f[1] for f in got] == [b"after"] and got[0][0] != b"2"
        impostor.close()
    finally:
        ctx.destroy(linger=0)
        t1.close()
        t2.close()


def test_the_zap_handler_answers() -> None:
    refused = Refusals()
    ctx = zmq.Context()
    try:
        public, _ = new_key_pair()
        handler = ZapHandler(ctx, {2: public}, refused)
        raw = zmq.utils.z85.decode(public.encode())
        other = zmq.utils.z85.decode(new_key_pair()[0].encode())

        def ask(domain: bytes, mechanism: bytes, *credentials: bytes) -> list[bytes]:
            return handler.answer([b"1.0", b"7", domain, b"10.0.0.9", b"", mechanism, *credentials])

        assert ask(PEER_DOMAIN, b"CURVE", raw) == [b"1.0", b"7", b"200", b"OK", b"2", b""]
        assert ask(PEER_DOMAIN, b"CURVE", other)[2] == b"400"
        assert ask(PEER_DOMAIN, b"NULL")[2] == b"400"
        assert ask(CLIENT_DOMAIN, b"CURVE", other)[:5] == [b"1.0", b"7", b"200", b"OK", b""]
        assert ask(CLIENT_DOMAIN, b"NULL")[2] == b"400"
        assert ask(b"", b"CURVE", raw)[2] == b"400"
        assert handler.answer([b"2.0", b"8"])[:3] == [b"1.0", b"8", b"400"]
        assert handler.answer([])[2] == b"400"
        assert refused.counts == Counter({"curve-refused-peer": 2, "curve-refused-client": 2})
        handler.close()
    finally:
        ctx.destroy(linger=0)
