"""NodeLink: how the etcd face reaches its node, and the leader.

The face speaks the native client protocol (cluster/protocol.py) to its own
node's actor over an in-process ZeroMQ DEALER connected to the node's client
ROUTER (`inproc_client_address`): to the actor a gRPC call is one more client
request, with no second path into the store.

etcd clients never follow redirects: a member that is not the leader carries a
write to the leader and answers the client itself. The native protocol answers
not-leader with the leader's client address instead, so the link does the
carrying: on not-leader it sends the same request to that address (one DEALER
per leader address it has met) and remembers the leader, so later writes go
there directly. Reads stay here: linearizable reads use ReadIndex from this
member (the node asks the leader for a read index, thesis §6.4) and
serializable ones its local state, as in etcd.

What the link retries is only what certainly did not happen: a not-leader or
no-leader-yet answer (nothing was proposed). A write whose outcome is unknown
(the leader died with it in flight) fails with etcd's timeout error, as etcd's
does; clients decide.

All of this runs on the face's event loop thread; ZeroMQ sockets are used from
that thread only.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from cluster.curve_keys import CurveClient
from cluster.protocol import (
    ClientRequest, ConfChangeRequest, ErrorCode, ErrorReply, HashRequest, KvReply, KvRequest, MAX_BATCH,
    MembersReply, MembersRequest, ProtocolError, Reply, SnapshotFileRequest, StatusReply, StatusRequest,
    TransferRequest, WatchFrame, decode_watch_frames, encode_requests,
)
from node.etcd import errors
from node.transport import inproc_client_address

#: How long to wait before asking again when no leader is known (an election
#: takes a few hundred milliseconds).
NO_LEADER_RETRY = 0.05
#: One attempt of a read, before it is asked again (the native client's attempt timeout).
READ_ATTEMPT_SECONDS = 1.0
#: How long a request waits for a connection to its destination.
CONNECT_TIMEOUT_MS = 1000
#: Sockets to leaders the link has not used for this long are closed.
IDLE_REMOTE_SECONDS = 60.0


class Unreachable(errors.EtcdError):
    """A request that never left: no live connection to its destination (a dead
    leader). Nothing was proposed, so it is safe to send again elsewhere."""


class _Connection:
    """One DEALER, the task reading its replies, and the requests waiting to leave.

    Requests made in the same event-loop iteration leave as one frame (a batch of
    the native protocol, at most MAX_BATCH each): under load the face costs the
    node one ZeroMQ message per turn, not one per call, as a pipelined native
    client does."""

    def __init__(self, link: NodeLink, ctx: zmq.asyncio.Context, address: str) -> None:
        self.address = address
        self._link = link
        self.socket: zmq.asyncio.Socket = ctx.socket(zmq.DEALER)
        _secure(self.socket, address, link.curve)
        self.socket.setsockopt(zmq.LINGER, 0)
        # Never queue a request for a peer that is not connected: a dead leader's
        # address must fail at once, not hold requests until it comes back.
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        self.socket.setsockopt(zmq.SNDHWM, 100_000)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.connect(address)
        self.used = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self.reader = self._loop.create_task(link.read(self))
        self._outgoing: list[ClientRequest] = []
        self._flush_scheduled = False
        # inproc connects at once; a TCP peer is writable only once connected
        self._connected = address.startswith("inproc://")
        self._connecting: asyncio.Task[None] | None = None

    def enqueue(self, request: ClientRequest) -> None:
        self._outgoing.append(request)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing:
            return
        if not self._connected:
            if self._connecting is None or self._connecting.done():
                self._connecting = self._loop.create_task(self._connect())
            return  # sent once connected (or failed if the peer never answers)
        batch, self._outgoing = self._outgoing, []
        for start in range(0, len(batch), MAX_BATCH):
            part = batch[start:start + MAX_BATCH]
            sent = self.socket.send(encode_requests(part), zmq.NOBLOCK)
            failure = sent.exception() if sent.done() else None
            if isinstance(failure, zmq.Again):  # IMMEDIATE: no live connection any more
                self._connected = False
                self._link.unreachable(self, [r.request_id for r in part])
            elif failure is not None:
                raise failure

    async def _connect(self) -> None:
        if await self.socket.poll(CONNECT_TIMEOUT_MS, zmq.POLLOUT):
            self._connected = True
            self._flush()
            return
        waiting, self._outgoing = self._outgoing, []
        self._link.unreachable(self, [r.request_id for r in waiting])

    def close(self) -> None:
        self.reader.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        self.socket.close(linger=0)


def _secure(socket: zmq.asyncio.Socket, address: str, curve: CurveClient | None) -> None:
    """In a `[curve]` cluster, a DEALER to another member's client port is a CURVE
    client holding that member's public key (our own node is reached over inproc,
    where ZeroMQ has no security mechanism and needs none)."""
    if curve is not None and not address.startswith("inproc://"):
        curve.secure(socket, address)


class NodeLink:
    def __init__(self, ctx: zmq.asyncio.Context, node_id: int, request_timeout: float,
                 max_frame_bytes: int = 256 << 20, *, curve: CurveClient | None = None) -> None:
        self.curve = curve
        self._ctx = ctx
        self.node_id = node_id
        self.request_timeout = request_timeout
        self._max_frame = max_frame_bytes
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._streams: dict[int, Callable[[WatchFrame | Reply], None]] = {}
        self._local: _Connection | None = None
        self._remotes: dict[str, _Connection] = {}
        self.leader_address = ""  # the leader's client address, once a redirect named it
        self.term = 0
        self.leader_id = 0
        self._term_read = 0.0
        self._term_refresh: asyncio.Task[None] | None = None
        self._first_leader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._local = _Connection(self, self._ctx, inproc_client_address(self.node_id))
        self._first_leader = asyncio.get_running_loop().create_task(self._until_a_leader())

    async def close(self) -> None:
        if self._first_leader is not None:
            self._first_leader.cancel()
        for connection in [self._local, *self._remotes.values()]:
            if connection is not None:
                connection.close()
        self._remotes.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(errors.EtcdError(errors.STOPPED))
        self._pending.clear()

    # -- the reply readers -------------------------------------------------------------

    async def read(self, connection: _Connection) -> None:
        socket = connection.socket
        while True:
            data = await socket.recv()
            try:
                messages = decode_watch_frames(data, self._max_frame)
            except ProtocolError:
                continue  # not from a node we know: nothing to answer
            for message in messages:
                stream = self._streams.get(message.request_id)
                if stream is not None:
                    stream(message)
                    continue
                future = self._pending.pop(message.request_id, None)
                if future is not None and not future.done() and not isinstance(message, WatchFrame):
                    future.set_result(message)

    def unreachable(self, connection: _Connection, request_ids: list[int]) -> None:
        """Requests that could not leave: their destination has no live connection."""
        status = errors.TIMEOUT_LEADER_FAIL if connection is not self._local else errors.STOPPED
        for request_id in request_ids:
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(Unreachable(status, f"cannot reach {connection.address}"))

    # -- one request -------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def _connection(self, address: str) -> _Connection:
        if not address:
            assert self._local is not None, "NodeLink.start() first"
            return self._local
        connection = self._remotes.get(address)
        if connection is None:
            self._close_idle()
            connection = self._remotes[address] = _Connection(self, self._ctx, address)
        connection.used = time.monotonic()
        return connection

    def _close_idle(self) -> None:
        now = time.monotonic()
        for address, connection in list(self._remotes.items()):
            if now - connection.used > IDLE_REMOTE_SECONDS:
                connection.close()
                del self._remotes[address]

    async def call(self, build: Callable[[int], ClientRequest], address: str = "",
                   timeout: float | None = None) -> Reply:
        """Send one request (to this node, or to `address`) and wait for its reply.
        Raises EtcdError(TIMEOUT) when none comes in time."""
        request_id = self.next_id()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._pending[request_id] = future
        self._connection(address).enqueue(build(request_id))
        expiry = loop.call_later(self.request_timeout + 1.0 if timeout is None else timeout,
                                 self._expire, request_id, address)
        try:
            return await future
        finally:
            expiry.cancel()
            self._pending.pop(request_id, None)

    def _expire(self, request_id: int, address: str) -> None:
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_exception(errors.EtcdError(errors.TIMEOUT_LEADER_FAIL if address else errors.TIMEOUT,
                                                  f"no answer from {address or 'this node'}"))

    # -- requests with etcd's routing -----------------------------------------------------

    async def kv(self, command: bytes, *, serializable: bool = False, leader_only: bool = False,
                 token: str = "") -> bytes:
        """The result bytes of a KV API command. Reads are served here; what only a
        leader does (writes, lease queries) is carried to the leader when this node
        is not it (`leader_only` sends it there directly once the leader is known).
        `token`: the client's auth token (node/etcd/credentials.py), for the node to check."""
        reply = await self.routed(lambda rid: KvRequest(rid, command, serializable, token), leader_only,
                                  idempotent=not leader_only)
        assert isinstance(reply, KvReply)
        return reply.result

    async def routed(self, build: Callable[[int], ClientRequest], leader_only: bool = True,
                     idempotent: bool = False) -> Reply:
        """`build`'s request answered by this node or, on not-leader, by the leader;
        retried while no leader is known, until the request timeout. An `idempotent`
        request (a read) is also asked again when an attempt gets no answer within
        READ_ATTEMPT_SECONDS: a ReadIndex request lost with a leader never gets one,
        and a read is always safe to repeat."""
        deadline = time.monotonic() + self.request_timeout
        address = self.leader_address if leader_only else ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.EtcdError(errors.TIMEOUT, "no leader before the request timeout")
            timeout = None if not address else remaining + 1.0
            if idempotent:
                timeout = min(READ_ATTEMPT_SECONDS, remaining)
            try:
                reply = await self.call(build, address, timeout)
            except Unreachable:
                if not address:
                    raise
                # the remembered leader is gone and nothing was sent: ask our node who leads now
                self.leader_address = address = ""
                await asyncio.sleep(min(NO_LEADER_RETRY, max(deadline - time.monotonic(), 0.0)))
                continue
            except errors.EtcdError as error:
                if address and address == self.leader_address:
                    self.leader_address = ""  # that leader is gone; ask our node who leads now
                if idempotent and error.status in (errors.TIMEOUT, errors.TIMEOUT_LEADER_FAIL) \
                        and deadline - time.monotonic() > 0:
                    address = ""
                    continue
                raise
            if not isinstance(reply, ErrorReply):
                await self.fresh_term()
                return reply
            if reply.code is ErrorCode.NOT_LEADER and reply.leader_client and reply.leader_client != address:
                self.leader_address = address = reply.leader_client
                continue
            if reply.code is ErrorCode.BUSY:
                # a membership change or transfer the leader cannot take yet (another is
                # pending): nothing happened; etcd queues such requests, so wait too
                await asyncio.sleep(min(NO_LEADER_RETRY, max(remaining, 0.0)))
                continue
            if reply.code in (ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET):
                if address:
                    self.leader_address = address = ""  # stale: ask our node again
                await asyncio.sleep(min(NO_LEADER_RETRY, max(remaining, 0.0)))
                continue
            raise errors.from_reply(reply)

    async def fresh_term(self) -> None:
        """Keep the term for response headers fresh: re-read at most once a second,
        and only while calls are being made (an idle face asks nothing). Unary
        calls do this after their reply; a stream before its first response."""
        if self.leader_id and time.monotonic() - self._term_read <= 1.0:
            return  # fresh enough (with no leader known, read it again: an election is on)
        if self._term_refresh is None or self._term_refresh.done():
            self._term_read = time.monotonic()
            self._term_refresh = asyncio.get_running_loop().create_task(self._refresh_term())
        await asyncio.shield(self._term_refresh)

    async def _refresh_term(self) -> None:
        try:
            await self.status()
        except (errors.EtcdError, zmq.ZMQError):
            pass  # the next call asks again; a face whose node failed to start is stopped anyway

    async def _until_a_leader(self) -> None:
        """At start, read the status until the node knows a leader, so the first
        headers (a watch's too) carry the term of a real election."""
        while not self.leader_id:
            await self._refresh_term()
            if not self.leader_id:
                await asyncio.sleep(NO_LEADER_RETRY * 4)

    async def status(self, token: str = "") -> dict[str, Any]:
        """This node's status (node/member_status.py)."""
        reply = await self.call(lambda rid: StatusRequest(rid, token), timeout=self.request_timeout)
        if isinstance(reply, ErrorReply):
            raise errors.from_reply(reply)
        assert isinstance(reply, StatusReply)
        status = reply.status
        self.term = int(status.get("term", self.term) or 0)
        self.leader_id = int(status.get("leader_id", status.get("leader", 0)) or 0)
        self._term_read = time.monotonic()
        return status

    async def members(self, leader_only: bool = False, token: str = "") -> dict[str, Any]:
        reply = await self.routed(lambda rid: MembersRequest(rid, leader_only, token), leader_only)
        assert isinstance(reply, MembersReply)
        return reply.members

    async def conf_change(self, change: str, node: int, token: str = "", **addresses: str) -> dict[str, Any]:
        reply = await self.routed(lambda rid: ConfChangeRequest(rid, change, node, **addresses, token=token), True)
        assert isinstance(reply, MembersReply)
        return reply.members

    async def transfer(self, to: int, token: str = "") -> dict[str, Any]:
        reply = await self.routed(lambda rid: TransferRequest(rid, to, token=token), True)
        assert isinstance(reply, StatusReply)
        return reply.status

    async def hash(self, revision: int = 0, whole: bool = False, token: str = "") -> dict[str, Any]:
        """This node's digest of its state ({"hash", "revision", "compact_revision"})."""
        reply = await self.call(lambda rid: HashRequest(rid, revision, whole, token=token),
                                timeout=self.request_timeout)
        if isinstance(reply, ErrorReply):
            raise errors.from_reply(reply)
        assert isinstance(reply, StatusReply)
        return reply.status

    async def snapshot_file(self, min_index: int, token: str = "") -> dict[str, Any]:
        """This node's newest snapshot file covering `min_index` ({"path", "index",
        "term", "size"}), waiting while the node writes one (until the request timeout)."""
        deadline = time.monotonic() + self.request_timeout
        while True:
            reply = await self.call(lambda rid: SnapshotFileRequest(rid, min_index, token=token),
                                    timeout=self.request_timeout)
            if isinstance(reply, StatusReply):
                return reply.status
            assert isinstance(reply, ErrorReply)
            if reply.code is not ErrorCode.BUSY:
                raise errors.from_reply(reply)
            if time.monotonic() >= deadline:
                raise errors.EtcdError(errors.TIMEOUT, reply.reason)
            await asyncio.sleep(NO_LEADER_RETRY)

    # -- streams (watches) -----------------------------------------------------------------

    def open_stream(self, on_message: Callable[[WatchFrame | Reply], None]) -> int:
        """A request id whose frames (a watch's pushed frames) go to `on_message`."""
        request_id = self.next_id()
        self._streams[request_id] = on_message
        return request_id

    def close_stream(self, request_id: int) -> None:
        self._streams.pop(request_id, None)

    def sibling(self) -> NodeLink:
        """Another link to this node with its own DEALER, so its own client identity
        (the node limits watches per identity); `start()` and `close()` it."""
        return NodeLink(self._ctx, self.node_id, self.request_timeout, self._max_frame, curve=self.curve)

    async def send_local(self, request: ClientRequest) -> None:
        """A request to this node whose answers arrive on a stream."""
        assert self._local is not None
        self._local.enqueue(request)
