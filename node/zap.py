"""The ZAP handler: who may complete a CURVE handshake with this member.

ZeroMQ asks the handler (RFC 27, ZAP) over `inproc://zeromq.zap.01` of the socket's
context for every CURVE handshake on a server socket, naming the socket's ZAP
domain and the client's public key. Our two server sockets use two domains:

* `jangada-peer` (the peer ROUTER): only the members' public keys pass, and the
  reply's User-Id is the member id, so every frame arriving on that connection is
  labelled with the member who authenticated it (node/peer_link.py drops a frame
  whose sender says otherwise). A non-member's handshake fails: nothing it sends
  ever reaches the node.
* `jangada-client` (the client ROUTER): any key passes. Clients are told apart by
  auth tokens; CURVE gives them encryption and the proof they reached a member.

The handler is not a thread: the transport polls its socket in the actor's loop
(node/transport.py), so refusals are counted where the other dropped frames are,
without locks. The I/O thread waits for the answer, never the actor.

A handshake that fails before ZAP is asked (a plaintext client on a CURVE port, a
client holding the wrong server key) is seen on a socket monitor and counted too.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import zmq
import zmq.utils.z85

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
PEER_DOMAIN = b"jangada-peer"
CLIENT_DOMAIN = b"jangada-client"
#: Handshake failures a monitor reports that ZAP never hears of (a mechanism
#: mismatch, a HELLO that does not decrypt with our key). A ZAP refusal is also a
#: failed handshake (EVENT_HANDSHAKE_FAILED_AUTH): not watched, it is counted once
#: by the handler.
HANDSHAKE_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
#: ZAP requests answered per poll turn: bounds the actor's time on a handshake storm
#: (the rest wait in the socket for the next turn).
MAX_REQUESTS_PER_TURN = 64

Refused = Callable[[str, str], None]


class ZapHandler:
    """Answers ZAP requests for the sockets of one context (bind before them)."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], member_keys: Mapping[int, str],
                 refused: Refused) -> None:
        self._members = {zmq.utils.z85.decode(key.encode("ascii")): node_id
                         for node_id, key in member_keys.items()}
        self._refused = refused
        self.socket = ctx.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(ZAP_ENDPOINT)

    def handle_pending(self) -> None:
        """Answer the requests waiting (at most MAX_REQUESTS_PER_TURN)."""
        for _ in range(MAX_REQUESTS_PER_TURN):
            try:
                request = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.socket.send_multipart(self.answer(request))

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The reply frames for one ZAP request: 200 with a User-Id, or 400."""
        if len(request) < 6 or request[0] != b"1.0":
            # ZeroMQ itself always sends well-formed requests; refuse anything else.
            return [b"1.0", request[1] if len(request) > 1 else b"", b"400", b"malformed ZAP request", b"", b""]
        _, request_id, domain, address, _, mechanism, *credentials = request
        key = credentials[0] if mechanism == b"CURVE" and credentials else b""
        where = address.decode("ascii", "replace") or "?"
        if domain == PEER_DOMAIN:
            member = self._members.get(key)
            if member is not None:
                return [b"1.0", request_id, b"200", b"OK", str(member).encode(), b""]
            self._refused("curve-refused-peer", f"peer handshake from {where}: key {self._z85(key)} is not a member's")
            return [b"1.0", request_id, b"400", b"not a member's key", b"", b""]
        if domain == CLIENT_DOMAIN and key:
            return [b"1.0", request_id, b"200", b"OK", b"", b""]
        self._refused("curve-refused-client", f"handshake from {where}: domain {domain[:32]!r}, "
                      f"mechanism {mechanism[:16]!r}")
        return [b"1.0", request_id, b"400", b"refused", b"", b""]

    @staticmethod
    def _z85(key: bytes) -> str:
        return zmq.utils.z85.encode(key).decode("ascii") if len(key) == 32 else "(none)"

    def close(self) -> None:
        self.socket.close(linger=0)


class HandshakeWatch:
    """Counts failed handshakes on one server socket (through a socket monitor):
    the failures ZAP never hears of, e.g. a plaintext client on a CURVE port."""

    def __init__(self, socket: zmq.Socket[bytes], kind: str, refused: Refused) -> None:
        self.kind = kind
        self._refused = refused
        self.socket = socket.get_monitor_socket(HANDSHAKE_FAILURES)

    def handle_pending(self) -> None:
        for _ in range(MAX_REQUESTS_PER_TURN):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 2 and len(frames[0]) == 6:
                event = int.from_bytes(frames[0][:2], "little")
                self._refused(self.kind, f"handshake failed (event {event:#x}) from a connection to "
                              f"{frames[1].decode('ascii', 'replace')}")

    def close(self) -> None:
        self.socket.close(linger=0)
