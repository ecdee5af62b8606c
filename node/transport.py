"""ZeroMQ transport: moves frames, knows nothing about terms or logs.

* One ROUTER bound for peers. Peers connect to it with a DEALER; ZeroMQ gives each
  connection a routing identity of its own, so a frame arrives as [identity,
  payload]. The identity names a connection, not a member: the DEALERs set none,
  so nobody can claim a member's identity and displace (ROUTER_HANDOVER) or shadow
  its connection, and a restarted member's new connection never waits for the old
  one to be noticed dead. Who sent a frame is its envelope's `src`, and with CURVE
  the member whose key authenticated the connection (below).
* One ROUTER bound for clients: a frame arrives as [client identity, payload] and
  the reply goes back to that identity (unroutable replies are silently dropped by
  ZeroMQ: a client that left is not our problem).
* One DEALER per peer, connected to the peer's ROUTER. Membership changes add and
  remove them at run time (`add_peer`, `remove_peer`); a frame for a peer with no
  DEALER is refused like one for a peer that is down.

Every socket has high-water marks (bounded memory for a slow or dead peer),
LINGER=0 (close never blocks), a reconnect interval, and MAXMSGSIZE (ZeroMQ drops
the connection of anyone who sends a larger frame, before we ever see it). Sends
never block: a full queue raises EAGAIN, which we report as False so the actor can
tell the Raft core the peer is unreachable (Raft retries; dropping is safe).

With `[curve] enabled` (`curve` given) both ROUTERs are CURVE servers with the
member's key pair and the DEALERs CURVE clients holding each peer's public key. The
ZAP handler (node/zap.py) admits only members' keys on the peer port and any key on
the client port, and labels each peer connection with its member id: the peer
ROUTER's frames then come as [identity, payload, member id] (`receive_batch`).
Refused and failed handshakes are reported through `refused` (counted and logged
with the dropped frames).

A peer that stops answering (its link down, packets dropped silently: a real
partition, not a crash) leaves a TCP connection that looks alive: without more,
the DEALER keeps queueing frames into it up to the high-water mark, and when the
link returns the kernel's retransmission timer, backed off exponentially while
the link was down (0.2 s doubling, up to 120 s), decides when they flow again -
measured with `up --netns`: 6 s after a 20 s partition before the old leader
heard the new one, and longer for longer partitions. So each DEALER sends ZMTP
heartbeats (PING every `heartbeat_ivl_ms`; no answer within
`heartbeat_timeout_ms` closes the connection, discarding its stale queue) and
reconnects every `reconnect_ivl_ms`..`reconnect_ivl_max_ms` with each attempt
bounded by `connect_timeout_ms` (else a SYN into the void waits out the kernel's
own backoff, up to two minutes): a healed link carries frames again within about
two seconds, however long it was down. While the connection is gone, IMMEDIATE
makes sends fail at once and the Raft core hears the peer is unreachable.
Elections themselves never wait for the transport: followers campaign after an
election timeout of silence, and a leader cut off steps down by check-quorum.

For chaos testing, `block` drops frames to and/or from chosen peers until a
deadline, silently, like a network partition (the drop-traffic admin request).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq

from cluster.curve_keys import MemberKeys
from node.zap import CLIENT_DOMAIN, PEER_DOMAIN, HandshakeWatch, Refused, ZapHandler

#: Frames at least this big are sent without a copy; smaller ones are cheaper to
#: copy (pyzmq's own threshold: zero-copy needs a Frame and a release callback).
ZERO_COPY_BYTES = 65536
SNDMORE_NOBLOCK = zmq.SNDMORE | zmq.NOBLOCK


@dataclass(frozen=True, slots=True)
class TransportOptions:
    max_message_bytes: int = 16 << 20
    send_hwm: int = 10_000
    recv_hwm: int = 10_000
    reconnect_ivl_ms: int = 100
    reconnect_ivl_max_ms: int = 1000
    #: ZMTP heartbeats on the DEALERs to peers (below, "A peer that stops answering").
    heartbeat_ivl_ms: int = 500
    heartbeat_timeout_ms: int = 1500
    connect_timeout_ms: int = 1000


#: Plain ints: `&` on pyzmq's enum members is an Enum call (~1 us) per receive.
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)


def inproc_client_address(node_id: int) -> str:
    """Where a node's client ROUTER also listens inside its own process: the
    etcd face (node/etcd/link.py) talks to the actor through it."""
    return f"inproc://jangada-client-{node_id}"


class Transport:
    """The node's sockets. Not thread-safe: owned by the actor thread."""

    def __init__(self, node_id: int, peer_bind: str, client_bind: str, peers: dict[int, str],
                 options: TransportOptions, curve: MemberKeys | None = None,
                 refused: Refused | None = None) -> None:
        self.node_id = node_id
        self.options = options
        self.curve = curve
        self._refused: Refused = refused or _ignore
        # Injected faults (the drop-traffic admin request): peer -> (deadline, direction).
        self.blocked: dict[int, tuple[float, str]] = {}
        self.blocked_frames = 0
        self.ctx = zmq.Context()
        # Before any CURVE server socket exists: ZeroMQ asks the handler bound then.
        self.zap = ZapHandler(self.ctx, curve.members, self._refused) if curve is not None else None
        self.peer_router = self._socket(zmq.ROUTER)
        self.client_router = self._socket(zmq.ROUTER)
        self.dealers: dict[int, zmq.Socket[bytes]] = {}
        self.addresses: dict[int, str] = {}
        self._handshakes: list[HandshakeWatch] = []
        if curve is not None:
            self._serve_curve(self.peer_router, PEER_DOMAIN)
            self._serve_curve(self.client_router, CLIENT_DOMAIN)
            self._handshakes = [HandshakeWatch(self.peer_router, "curve-handshake-failed-peer", self._refused),
                                HandshakeWatch(self.client_router, "curve-handshake-failed-client", self._refused)]
        try:
            self.peer_router.bind(peer_bind)
            self.client_router.bind(client_bind)
            self.client_router.bind(inproc_client_address(node_id))
            for peer, address in sorted(peers.items()):
                self.add_peer(peer, address)
        except zmq.ZMQError:
            self.close()
            raise
        self.poller = zmq.Poller()
        self.polled: dict[Any, int] = {}
        self.poller.register(self.peer_router, zmq.POLLIN)
        self.poller.register(self.client_router, zmq.POLLIN)
        # The security sockets, polled with the others and handled inside `poll`.
        self._security: dict[zmq.Socket[bytes], ZapHandler | HandshakeWatch] = {}
        handlers: list[ZapHandler | HandshakeWatch] = [*self._handshakes]
        if self.zap is not None:
            handlers.append(self.zap)
        for handler in handlers:
            self._security[handler.socket] = handler
            self.poller.register(handler.socket, zmq.POLLIN)

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        s = self.ctx.socket(kind)
        o = self.options
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, o.send_hwm)
        s.setsockopt(zmq.RCVHWM, o.recv_hwm)
        s.setsockopt(zmq.MAXMSGSIZE, o.max_message_bytes)
        s.setsockopt(zmq.RECONNECT_IVL, o.reconnect_ivl_ms)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, o.reconnect_ivl_max_ms)
        if kind == zmq.DEALER:
            # Queue only for connected peers: messages to a peer that is down are
            # refused at once (EAGAIN) instead of piling up for its return.
            s.setsockopt(zmq.IMMEDIATE, 1)
            s.setsockopt(zmq.HEARTBEAT_IVL, o.heartbeat_ivl_ms)
            s.setsockopt(zmq.HEARTBEAT_TIMEOUT, o.heartbeat_timeout_ms)
            s.setsockopt(zmq.CONNECT_TIMEOUT, o.connect_timeout_ms)
        return s

    def _serve_curve(self, router: zmq.Socket[bytes], domain: bytes) -> None:
        assert self.curve is not None
        router.setsockopt(zmq.CURVE_SERVER, 1)
        router.setsockopt(zmq.CURVE_PUBLICKEY, self.curve.public.encode("ascii"))
        router.setsockopt(zmq.CURVE_SECRETKEY, self.curve.secret.encode("ascii"))
        router.setsockopt(zmq.ZAP_DOMAIN, domain)

    def _dial_curve(self, dealer: zmq.Socket[bytes], peer: int) -> bool:
        """Make `dealer` a CURVE client of `peer`; False if its key is unknown."""
        assert self.curve is not None
        key = self.curve.members.get(peer)
        if not key:
            return False
        dealer.setsockopt(zmq.CURVE_SERVERKEY, key.encode("ascii"))
        dealer.setsockopt(zmq.CURVE_PUBLICKEY, self.curve.public.encode("ascii"))
        dealer.setsockopt(zmq.CURVE_SECRETKEY, self.curve.secret.encode("ascii"))
        return True

    # -- peers (membership changes add and remove them at run time) -------------------

    def add_peer(self, peer: int, address: str) -> None:
        """Connect a DEALER to `peer` at `address` (a no-op if already connected
        there; a new address replaces the old connection). With CURVE, a peer whose
        public key is not in the config gets no connection (membership changes do
        not carry keys yet): it is reported as refused, and sends to it are dropped."""
        if self.addresses.get(peer) == address:
            return
        self.remove_peer(peer)
        dealer = self._socket(zmq.DEALER)
        try:
            if self.curve is not None and not self._dial_curve(dealer, peer):
                dealer.close(linger=0)
                self._refused("curve-unknown-peer-key", f"no CURVE public key for node {peer}: not connecting")
                return
            dealer.connect(address)
        except zmq.ZMQError:
            dealer.close(linger=0)
            raise
        self.dealers[peer] = dealer
        self.addresses[peer] = address

    def remove_peer(self, peer: int) -> None:
        """Close the connection to `peer`; later sends to it are dropped."""
        dealer = self.dealers.pop(peer, None)
        self.addresses.pop(peer, None)
        self.blocked.pop(peer, None)
        if dealer is not None:
            dealer.close(linger=0)

    # -- injected faults -------------------------------------------------------------

    def block(self, peers: Iterable[int], until: float, direction: str) -> None:
        """Silently drop frames to ("out"), from ("in") or both ways with `peers` until
        the monotonic time `until` -- a network partition, as chaos tests want it: the
        sender is not told, exactly as with lost packets."""
        for peer in peers:
            self.blocked[peer] = (until, direction)

    def unblock_expired(self, now: float) -> None:
        for peer in [p for p, (until, _) in self.blocked.items() if until <= now]:
            del self.blocked[peer]

    def _blocks(self, peer: int, direction: str) -> bool:
        entry = self.blocked.get(peer)
        if entry is None or entry[1] not in (direction, "both"):
            return False
        self.blocked_frames += 1
        return True

    def accepts_from(self, peer: int) -> bool:
        """Whether a frame from `peer` may be read (no injected partition from it)."""
        return not self.blocked or not self._blocks(peer, "in")

    # -- sending -------------------------------------------------------------------

    def send_peer(self, peer: int, frame: bytes) -> bool:
        """Queue `frame` for `peer`; False if it was dropped (queue full, peer down,
        or no connection to it: not a member, or its address is unknown)."""
        dealer = self.dealers.get(peer)
        if dealer is None:
            return False
        if self.blocked and self._blocks(peer, "out"):
            return True  # an injected partition: lost on the way, the sender never knows
        try:
            dealer.send(frame, zmq.NOBLOCK, copy=len(frame) < ZERO_COPY_BYTES)
        except zmq.Again:
            return False
        return True

    def send_client(self, identity: bytes, frame: bytes) -> bool:
        # Two plain sends instead of send_multipart: half the Python overhead per
        # reply (3.9 vs 8.6 us measured). A ROUTER never blocks: a full or unknown
        # client's message is dropped by ZeroMQ, and a peer's frame is never split.
        router = self.client_router
        try:
            router.send(identity, SNDMORE_NOBLOCK)
            router.send(frame, zmq.NOBLOCK, copy=len(frame) < ZERO_COPY_BYTES)
        except zmq.Again:
            return False
        return True

    # -- receiving -------------------------------------------------------------------

    def poll(self, timeout_ms: float) -> tuple[bool, bool]:
        """Wait up to `timeout_ms` for input; returns (peer ready, client ready).
        ZAP requests and handshake failures (CURVE) are handled here."""
        # Rounded up: rounded down, the loop wakes a fraction of a millisecond before
        # its deadline and then spins on zero-timeout polls until it is reached.
        events = dict(self.poller.poll(max(0, math.ceil(timeout_ms))))
        self.polled = events  # what the last poll found ready (other fds too: the WAL writer's)
        if self._security:
            for socket, handler in self._security.items():
                if socket in events:
                    handler.handle_pending()
        return self.peer_router in events, self.client_router in events

    def receive_batch(self, socket: zmq.Socket[bytes], limit: int) -> list[list[bytes]]:
        """Up to `limit` multipart messages already queued on `socket`. With CURVE,
        a peer frame gets a last element: the member id its connection
        authenticated as (the ZAP User-Id)."""
        if self.curve is not None and socket is self.peer_router:
            return self._receive_authenticated(limit)
        batch: list[list[bytes]] = []
        recv, get = socket.recv, socket.get
        # Stop when the socket says nothing more is queued (ZMQ_EVENTS): ending each
        # batch on a zmq.Again cost an exception (and pyzmq's error object) per batch.
        # The parts of a message by their Frame's `more` (recv_multipart asks the
        # socket's RCVMORE option instead, and pyzmq makes every option read an Enum
        # call: ~1 us; a message's parts arrive together, so they never raise Again).
        try:
            while len(batch) < limit:
                frame = recv(_NOBLOCK, copy=False)
                frames = [frame.bytes]
                while frame.more:
                    frame = recv(_NOBLOCK, copy=False)
                    frames.append(frame.bytes)
                batch.append(frames)
                if not get(_EVENTS) & _POLLIN:
                    break
        except zmq.Again:
            pass
        return batch

    def _receive_authenticated(self, limit: int) -> list[list[bytes]]:
        batch: list[list[bytes]] = []
        router = self.peer_router
        while len(batch) < limit:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            user = str(frames[-1].get("User-Id") or "")
            batch.append([f.bytes for f in frames] + [user.encode()])
            if not router.get(_EVENTS) & _POLLIN:
                break
        return batch

    def close(self) -> None:
        for handler in self._handshakes:
            handler.close()
        for s in [self.peer_router, self.client_router, *self.dealers.values()]:
            s.close(linger=0)
        if self.zap is not None:
            self.zap.close()
        self.ctx.term()


def _ignore(kind: str, detail: str) -> None:
    """`refused` when nobody counts (tests that build a bare transport)."""
