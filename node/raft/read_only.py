"""The leader's bookkeeping for ReadIndex reads (thesis §6.4; etcd's readOnly).

A read registered at commit index c is safe to serve at c once a quorum has answered
a heartbeat sent after it was registered: at that moment no other leader can have
committed anything newer. Reads are confirmed in registration order, so an answer
for the newest context confirms every older one too.

Rounds: one heartbeat round confirms every read registered before it was sent; while
a round is out, new reads wait for it to end and then share the next one, so rounds
are as large as the reads that arrive in one round trip. (A lost round ends when any
later heartbeat, e.g. the periodic one, which carries the newest context, is
confirmed.)
"""
from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from .quorum import joint_has_quorum
from .types import Index, NodeId


@dataclass(slots=True)
class PendingRead:
    ctx: bytes
    index: Index  # the leader's commit index when the read was registered
    origin: NodeId  # the node that asked (the leader itself, or a follower)
    acks: set[NodeId]


class ReadOnly:
    __slots__ = ("pending", "queue", "awaiting_commit", "in_flight", "round_wanted")

    def __init__(self) -> None:
        self.pending: dict[bytes, PendingRead] = {}
        self.queue: deque[bytes] = deque()
        # Reads that arrived before the leader committed an entry of its term.
        self.awaiting_commit: list[tuple[bytes, NodeId]] = []
        # The context of the read round (heartbeat) sent and not yet confirmed by a
        # quorum: while one is out, reads that arrive wait for the next round, so a
        # round confirms every read that arrived during the previous one.
        self.in_flight: bytes | None = None
        # Reads are waiting for a round that has not been sent yet: when no round is
        # out (round_done), the caller sends one (start_round, then a heartbeat).
        self.round_wanted = False

    def add(self, ctx: bytes, index: Index, origin: NodeId, leader: NodeId) -> bool:
        """Register a read; False when `ctx` is already pending (ctx must be unique)."""
        if ctx in self.pending:
            return False
        self.pending[ctx] = PendingRead(ctx, index, origin, {leader})
        self.queue.append(ctx)
        self.round_wanted = True
        return True

    def round_done(self) -> bool:
        """No read round is waiting for its quorum (a confirmed or dropped one is over)."""
        if self.in_flight is not None and self.in_flight not in self.pending:
            self.in_flight = None
        return self.in_flight is None

    def start_round(self) -> None:
        """The heartbeat about to go out (carrying `last_ctx()`) is the next round."""
        self.round_wanted = False
        self.in_flight = self.last_ctx() or None

    def last_ctx(self) -> bytes:
        """The context to put in the next heartbeat."""
        return self.queue[-1] if self.queue else b""

    def ack(self, ctx: bytes, peer: NodeId, voters: Collection[NodeId],
            outgoing: Collection[NodeId] = ()) -> list[PendingRead]:
        """A heartbeat answer for `ctx` arrived from `peer`: the reads it confirms
        (while joint, once a majority of `voters` and one of `outgoing` answered)."""
        confirmed = self._confirm(ctx, peer, voters, outgoing)
        if self.queue and self.round_done():
            self.round_wanted = True  # reads that waited for this round
        return confirmed

    def _confirm(self, ctx: bytes, peer: NodeId, voters: Collection[NodeId],
                 outgoing: Collection[NodeId]) -> list[PendingRead]:
        read = self.pending.get(ctx)
        if read is None:
            return []
        read.acks.add(peer)
        if not joint_has_quorum(voters, outgoing, read.acks):
            return []
        confirmed = []
        while self.queue:
            head = self.pending.pop(self.queue.popleft())
            confirmed.append(head)
            if head.ctx == ctx:
                break
        return confirmed

    def take_awaiting_commit(self) -> list[tuple[bytes, NodeId]]:
        waiting, self.awaiting_commit = self.awaiting_commit, []
        return waiting

    def clear(self) -> None:
        """Leadership changed: every pending read is dropped (callers time out)."""
        self.pending.clear()
        self.queue.clear()
        self.awaiting_commit.clear()
        self.in_flight = None
        self.round_wanted = False
