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

from cluster.protocol import (
    ClientRequest, ConfChangeRequest, ErrorCode, ErrorReply, KvReply, KvRequest, MembersReply, MembersRequest,
    ProtocolError, Reply, StatusReply, StatusRequest, TransferRequest, WatchFrame, decode_watch_frames,
    encode_request,
)
from node.etcd import errors
from node.transport import inproc_client_address

#: How long to wait before asking again when no leader is known (an election
#: takes a few hundred milliseconds).
NO_LEADER_RETRY = 0.05
#: How long a request waits for a connection to its destination.
CONNECT_TIMEOUT_MS = 1000
#: Sockets to leaders the link has not used for this long are closed.
IDLE_REMOTE_SECONDS = 60.0


class _Connection:
    """One DEALER and the task reading its replies."""

    def __init__(self, link: NodeLink, ctx: zmq.asyncio.Context, address: str) -> None:
        self.address = address
        self.socket: zmq.asyncio.Socket = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # Never queue a request for a peer that is not connected: a dead leader's
        # address must fail at once, not hold requests until it comes back.
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        self.socket.setsockopt(zmq.SNDHWM, 100_000)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.connect(address)
        self.used = time.monotonic()
        self.reader = asyncio.get_running_loop().create_task(link.read(self))

    def close(self) -> None:
        self.reader.cancel()
        self.socket.close(linger=0)


class NodeLink:
    def __init__(self, ctx: zmq.asyncio.Context, node_id: int, request_timeout: float,
                 max_frame_bytes: int = 256 << 20) -> None:
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

    async def start(self) -> None:
        self._local = _Connection(self, self._ctx, inproc_client_address(self.node_id))
        self._term_refresh = asyncio.get_running_loop().create_task(self._refresh_term())

    async def close(self) -> None:
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
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            socket = self._connection(address).socket
            try:
                # IMMEDIATE: writable only once connected; a fresh socket to a live
                # leader connects within milliseconds, a dead one never does.
                if not await socket.poll(CONNECT_TIMEOUT_MS, zmq.POLLOUT):
                    raise zmq.Again()
                await socket.send(encode_request(build(request_id)), zmq.NOBLOCK)
            except zmq.Again:
                # IMMEDIATE: no connection to that address (a dead leader)
                raise errors.EtcdError(errors.TIMEOUT_LEADER_FAIL if address else errors.STOPPED,
                                       f"cannot reach {address or 'this node'}") from None
            try:
                return await asyncio.wait_for(future, self.request_timeout + 1.0 if timeout is None else timeout)
            except asyncio.TimeoutError:
                raise errors.EtcdError(errors.TIMEOUT_LEADER_FAIL if address else errors.TIMEOUT,
                                       f"no answer from {address or 'this node'}") from None
        finally:
            self._pending.pop(request_id, None)

    # -- requests with etcd's routing -----------------------------------------------------

    async def kv(self, command: bytes, *, serializable: bool = False, leader_only: bool = False) -> bytes:
        """The result bytes of a KV API command. Reads are served here; what only a
        leader does (writes, lease queries) is carried to the leader when this node
        is not it (`leader_only` sends it there directly once the leader is known)."""
        reply = await self.routed(lambda rid: KvRequest(rid, command, serializable), leader_only)
        assert isinstance(reply, KvReply)
        return reply.result

    async def routed(self, build: Callable[[int], ClientRequest], leader_only: bool = True) -> Reply:
        """`build`'s request answered by this node or, on not-leader, by the leader;
        retried while no leader is known, until the request timeout."""
        deadline = time.monotonic() + self.request_timeout
        address = self.leader_address if leader_only else ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.EtcdError(errors.TIMEOUT, "no leader before the request timeout")
            try:
                reply = await self.call(build, address, None if not address else remaining + 1.0)
            except errors.EtcdError:
                if address and address == self.leader_address:
                    self.leader_address = ""  # that leader is gone; ask our node who leads now
                raise
            if not isinstance(reply, ErrorReply):
                await self._note_node()
                return reply
            if reply.code is ErrorCode.NOT_LEADER and reply.leader_client and reply.leader_client != address:
                self.leader_address = address = reply.leader_client
                continue
            if reply.code in (ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET):
                if address:
                    self.leader_address = address = ""  # stale: ask our node again
                await asyncio.sleep(min(NO_LEADER_RETRY, max(remaining, 0.0)))
                continue
            raise errors.from_reply(reply)

    async def _note_node(self) -> None:
        """Keep the term for response headers fresh: re-read at most once a second,
        and only while calls are being made (an idle face asks nothing)."""
        if time.monotonic() - self._term_read <= 1.0:
            return
        if self._term_refresh is None or self._term_refresh.done():
            self._term_read = time.monotonic()
            self._term_refresh = asyncio.get_running_loop().create_task(self._refresh_term())
        await asyncio.shield(self._term_refresh)

    async def _refresh_term(self) -> None:
        try:
            await self.status()
        except errors.EtcdError:
            pass

    async def status(self) -> dict[str, Any]:
        """This node's status (node/member_status.py)."""
        reply = await self.call(lambda rid: StatusRequest(rid), timeout=self.request_timeout)
        if isinstance(reply, ErrorReply):
            raise errors.from_reply(reply)
        assert isinstance(reply, StatusReply)
        status = reply.status
        self.term = int(status.get("term", self.term) or 0)
        self.leader_id = int(status.get("leader_id", status.get("leader", 0)) or 0)
        self._term_read = time.monotonic()
        return status

    async def members(self, leader_only: bool = False) -> dict[str, Any]:
        reply = await self.routed(lambda rid: MembersRequest(rid, leader_only), leader_only)
        assert isinstance(reply, MembersReply)
        return reply.members

    async def conf_change(self, change: str, node: int, **addresses: str) -> dict[str, Any]:
        reply = await self.routed(lambda rid: ConfChangeRequest(rid, change, node, **addresses), True)
        assert isinstance(reply, MembersReply)
        return reply.members

    async def transfer(self, to: int) -> dict[str, Any]:
        reply = await self.routed(lambda rid: TransferRequest(rid, to), True)
        assert isinstance(reply, StatusReply)
        return reply.status

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
        return NodeLink(self._ctx, self.node_id, self.request_timeout, self._max_frame)

    async def send_local(self, request: ClientRequest) -> None:
        """A request to this node whose answers arrive on a stream."""
        assert self._local is not None
        await self._local.socket.send(encode_request(request))
