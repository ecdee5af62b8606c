"""Fault injection for chaos runs (`supervisor chaos --drop`): a client request
makes this node's transport drop peer frames, in one or both directions, for a
bounded time. The transport does the dropping; this object validates the request,
starts the fault, ends it when its time is up, and logs both for operators. The
client router lets a request this far only when the config enables fault
injection (`[faults] injection = true`) and, while auth is on, for root."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.protocol import DropTrafficRequest, ErrorCode, Reply, StatusReply
from node.answers import Answers
from node.eventlog import EventLog
from node.transport import Transport


class FaultInjection:
    def __init__(self, node_id: int, transport: Transport, answers: Answers, status: Callable[[], dict[str, Any]],
                 clock: Callable[[], float], log: EventLog) -> None:
        self.id = node_id
        self._transport = transport
        self._answers = answers
        self._status = status
        self._clock = clock
        self._log = log

    def drop_traffic(self, request: DropTrafficRequest) -> Reply:
        transport = self._transport
        unknown = [p for p in request.peers if p == self.id or p not in transport.dealers]
        if unknown:
            return self._answers.error(request.request_id, ErrorCode.INVALID_REQUEST,
                                       f"not a peer of node {self.id}: {unknown}")
        transport.block(request.peers, self._clock() + request.seconds, request.direction)
        transport.unblock_expired(self._clock())
        self._log.warning(f"fault injected: dropping traffic {request.direction} with peers "
                          f"{list(request.peers)} for {request.seconds:g} s")
        return StatusReply(request.request_id, self.id, self._status())

    def sweep(self, now: float) -> None:
        """End the faults whose time is up."""
        if self._transport.blocked:
            self._transport.unblock_expired(now)
