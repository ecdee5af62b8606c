"""A node joining a running cluster asks an existing member who is in it.

Before its log holds anything, a new member only knows the config's initial
members; the leader that will replicate to it may be a member added later. So a
node started with `--join` and an empty data directory first asks any member it
can reach (client protocol `members`, any node's view) for every member's
addresses, retrying until `timeout`. After that the log and snapshots keep its
address book current (node/address_book.py).

It speaks the client wire protocol (cluster/protocol.py) on its own DEALER
socket rather than through `cluster.client`: a server needs two requests
(`status`, to check the cluster id, then `members`), not a client library with
sessions, leases and watches. Each member gets `ATTEMPT_S` per request; a
`not-leader` naming the leader is followed, `no-leader-yet` and `busy` are
retried with a short backoff, and any other error is that member's answer.
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Sequence

import zmq

from cluster.protocol import (
    ClientRequest, ErrorCode, ErrorReply, MembersReply, MembersRequest, ProtocolError, Reply,
    StatusReply, StatusRequest, decode_replies, encode_request,
)
from node.address_book import Address

#: How long one member may take to answer one request.
ATTEMPT_S = 1.0
#: A member that is down refuses the connection at once; wait no longer than this
#: for the connection before moving on.
CONNECT_WAIT_S = 0.1
#: Pause between rounds over every endpoint.
ROUND_PAUSE_S = 0.2
#: Backoff while the asked member has no leader or is busy.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.01, 0.1
#: Codes after which asking again (soon, or the leader) may get an answer.
RETRYABLE = (ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET, ErrorCode.TOO_MANY_REQUESTS)


class JoinFailed(Exception):
    """No member answered in time."""


class MemberUnavailable(Exception):
    """One member gave no usable answer; the message says why (for JoinFailed's `last`)."""


def fetch_addresses(endpoints: Sequence[str], cluster_id: str, timeout: float,
                    log: logging.Logger) -> dict[int, Address]:
    deadline = time.monotonic() + timeout
    last = "no endpoint to ask"
    context = zmq.Context()
    try:
        while True:
            for endpoint in endpoints:
                try:
                    node_id, book = ask_member(context, endpoint, cluster_id)
                except MemberUnavailable as error:
                    last = str(error)
                    continue
                log.info("joining: node %s told us the addresses of members %s", node_id, sorted(book))
                return book
            if time.monotonic() >= deadline:
                raise JoinFailed(f"no member answered within {timeout:g} s (last: {last})")
            time.sleep(ROUND_PAUSE_S)
    finally:
        context.term()


def ask_member(context: zmq.Context[zmq.Socket[bytes]], endpoint: str,
               cluster_id: str) -> tuple[int, dict[int, Address]]:
    """The member at `endpoint`'s id and its view of every member's addresses, if it
    belongs to `cluster_id` and knows any; MemberUnavailable says why not."""
    line = MemberLine(context)
    try:
        status = line.ask(endpoint, StatusRequest(line.next_id()))
        if status is None:
            raise MemberUnavailable(f"{endpoint}: no status from {endpoint}")
        if not isinstance(status, StatusReply):
            raise MemberUnavailable(f"{endpoint}: {endpoint} answered a status request with {status!r}")
        if status.status.get("cluster_id") != cluster_id:
            raise MemberUnavailable(f"{endpoint} belongs to another cluster")
        members = members_view(line, endpoint)
    finally:
        line.close()
    # A member may have no client address (added through etcd's MemberAdd, which knows
    # peer URLs only); older members send no "grpc"/"gateway".
    book = {int(row["id"]): Address(str(row["peer"]), str(row.get("client") or ""), str(row.get("grpc") or ""),
                                    str(row.get("gateway") or ""))
            for row in members.members.get("members", []) if row.get("peer")}
    if not book:
        raise MemberUnavailable(f"{endpoint} knows no member addresses")
    return members.node_id, book


def members_view(line: MemberLine, endpoint: str) -> MembersReply:
    """Ask `endpoint` for its view of the membership until one `ATTEMPT_S` runs out,
    following a redirect to the leader and backing off while there is none."""
    request = MembersRequest(line.next_id(), leader_only=False)
    deadline = time.monotonic() + ATTEMPT_S
    target, last, backoff = endpoint, "no attempt made", BACKOFF_FIRST_S
    while (remaining := deadline - time.monotonic()) > 0:
        reply = line.ask(target, request, min(ATTEMPT_S, remaining))
        if reply is None:
            last = f"no answer from {target}"
            continue
        if isinstance(reply, MembersReply):
            return reply
        if not isinstance(reply, ErrorReply):
            raise MemberUnavailable(f"{endpoint}: {target} answered with {reply!r}")
        last = f"{target}: {reply.code.value}: {reply.reason}"
        if reply.code is ErrorCode.TIMEOUT:
            raise MemberUnavailable(f"{endpoint}: {target}: {reply.reason}")
        if reply.code not in RETRYABLE:
            raise MemberUnavailable(f"{endpoint}: {reply.reason}")
        if reply.code is ErrorCode.NOT_LEADER and reply.leader_client:
            target = reply.leader_client
            continue
        time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
        backoff = min(backoff * 2, BACKOFF_MAX_S)
    raise MemberUnavailable(f"{endpoint}: no definite answer within {ATTEMPT_S}s (last: {last})")


class MemberLine:
    """One DEALER socket to one member at a time, for request/reply exchanges. The
    socket is IMMEDIATE (writable only over a live connection), so a member that is
    down costs `CONNECT_WAIT_S`; a request left unanswered closes the socket, so its
    late reply can never be taken for the next one's."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        self._context = context
        self._socket: zmq.Socket[bytes] | None = None
        self._endpoint = ""
        # Random base: ids from two joining nodes (or two runs) never collide.
        self._ids = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)

    def next_id(self) -> int:
        return next(self._ids)

    def ask(self, endpoint: str, request: ClientRequest, timeout: float = ATTEMPT_S) -> Reply | None:
        """Send `request` to `endpoint` and wait up to `timeout` for its reply (None: none came)."""
        socket = self._connect(endpoint)
        if not socket.poll(max(1, int(min(timeout, CONNECT_WAIT_S) * 1000)), zmq.POLLOUT):
            self.close()
            return None
        try:
            socket.send(encode_request(request), zmq.NOBLOCK)
        except zmq.Again:
            self.close()
            return None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
                break
            try:
                replies = decode_replies(socket.recv(zmq.NOBLOCK))
            except (ProtocolError, zmq.Again):
                continue
            for reply in replies:
                if reply.request_id == request.request_id:
                    return reply
        self.close()
        return None

    def _connect(self, endpoint: str) -> zmq.Socket[bytes]:
        if self._socket is not None and self._endpoint == endpoint:
            return self._socket
        self.close()
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.IMMEDIATE, 1)
        socket.connect(endpoint)
        self._socket, self._endpoint = socket, endpoint
        return socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
