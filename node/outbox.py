"""Replies on their way to clients.

Replies wait here until the end of the Ready or loop turn that made them, so a
pipelining client gets one frame per turn (see cluster.protocol) instead of one
per reply.
"""
from __future__ import annotations

from collections.abc import Callable

from cluster.protocol import MAX_BATCH, Reply, encode_replies
from node.dropped_frames import DroppedFrames


class Outbox:
    def __init__(self, send_client: Callable[[bytes, bytes], bool], dropped: DroppedFrames) -> None:
        """`send_client(identity, frame)`: the client socket's non-blocking send
        (False when that client's queue is full)."""
        self._send_client = send_client
        self._dropped = dropped
        self._queued: dict[bytes, list[Reply]] = {}

    def reply(self, identity: bytes, reply: Reply) -> None:
        queued = self._queued.get(identity)
        if queued is None:
            self._queued[identity] = [reply]
        else:
            queued.append(reply)

    def flush(self) -> None:
        """Send what is queued: at most MAX_BATCH replies per frame."""
        if not self._queued:
            return
        queued, self._queued = self._queued, {}
        send = self._send_client
        for identity, replies in queued.items():
            for start in range(0, len(replies), MAX_BATCH):
                if not send(identity, encode_replies(replies[start:start + MAX_BATCH])):
                    self._dropped.drop("client-reply-dropped", "client queue full")
