"""A stand-in for the stream side of NodeLink (node/etcd/link.py), for tests of the
watch machinery without a node (WatchStream in node/etcd/watch.py, the lock and
election services' KeyWatch): it records every request sent and keeps each stream's
callback by request id, so the test plays the node by calling it with frames."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class RecordingLink:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.streams: dict[int, Callable[[Any], None]] = {}
        self._ids = iter(range(1, 10**6))

    def next_id(self) -> int:
        return next(self._ids)

    def open_stream(self, callback: Callable[[Any], None]) -> int:
        request_id = self.next_id()
        self.streams[request_id] = callback
        return request_id

    def close_stream(self, request_id: int) -> None:
        self.streams.pop(request_id, None)

    async def send_local(self, request: Any) -> None:
        self.sent.append(request)

    async def fresh_term(self) -> None:
        """NodeLink re-reads the node's term here; the stand-in's term never changes."""
