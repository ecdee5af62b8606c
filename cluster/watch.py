"""Client side of a watch (docs/watch.md): `Client.watch(...)` returns a `Watch`.

    with client.watch("app/", prefix=True) as watch:
        for response in watch:                 # blocks; one WatchResponse per frame
            for event in response.events:      # event.type_name "PUT"/"DELETE", .kv, .prev_kv
                print(event.type_name, event.kv.key, event.kv.value)

    watch.get(timeout=1.0)   # the next response, or None after `timeout` seconds
    watch.revision           # every event up to here has been yielded
    watch.request_progress() # ask the node for a progress notification now

Guarantees: events come in revision order, each exactly once, none skipped,
across node failures: the watch talks to one node on its own DEALER socket; when
that node dies, goes silent for 3 progress intervals, cancels the watch (slow
watcher, shutdown, expiry), or a frame is missing (a gap in the frame numbers),
it reconnects to the next endpoint and resumes from `revision + 1`. Events at or
below `revision` are never yielded again. A watch whose next revision was
compacted away raises `WatchCompactedError` (with `.compact_revision`).

A Watch is not thread-safe, but it is independent of its Client's request
socket: a thread may iterate a watch while another uses the client (the socket
is created by the first `get`, in the thread that iterates).
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import zmq

from cluster.curve_keys import CurveClient
from cluster.errors import InvalidRequestError, WatchCompactedError
from cluster.protocol import (
    ErrorCode, ErrorReply, ProtocolError, WatchCancelRequest, WatchCreateRequest, WatchEvent, WatchFrame,
    WatchProgressRequest, decode_watch_frames, encode_request,
)


class WatchHost(Protocol):
    """What a watch borrows from the `cluster.client.Client` that opened it: where to
    connect first (the leader, if the client knows it), where else to go, how long a
    node may take to answer a create, the ZeroMQ context, and request ids that never
    collide with the client's own. A Protocol, so this module needs no import of the
    client (which imports this module to build watches)."""

    @property
    def endpoints(self) -> Sequence[str]: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def attempt_timeout(self) -> float: ...

    @property
    def context(self) -> zmq.Context[zmq.Socket[bytes]]: ...

    @property
    def curve(self) -> CurveClient | None: ...

    def next_request_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class WatchResponse:
    """One frame's worth: `events` in revision order (a transaction's events are
    always in one response), or none for a progress notification. `revision`:
    every event of a revision <= it has been yielded."""

    revision: int
    events: tuple[WatchEvent, ...]
    progress: bool = False
    node_id: int = 0
    head: int = 0  # the serving node's applied revision when it sent this


#: Frames between acknowledgements (the node keeps at most 64 unacknowledged).
ACK_EVERY = 16


class Watch:
    def __init__(self, client: WatchHost, key: bytes, range_end: bytes, *, start_revision: int | None,
                 prev_kv: bool, progress_notify: bool, progress_interval: float) -> None:
        if start_revision is not None and start_revision < 1:
            raise InvalidRequestError(f"start revision must be >= 1, got {start_revision}")
        if not 0.02 <= progress_interval <= 60:
            raise InvalidRequestError(f"progress interval must be in [0.02, 60] s, got {progress_interval}")
        self.client = client
        self.key, self.range_end = key, range_end
        self.prev_kv = prev_kv
        self.progress_notify = progress_notify
        self.interval = progress_interval
        #: Every event up to here was yielded (None: "from now", before the first node said where now is).
        self.revision: int | None = None if start_revision is None else start_revision - 1
        self.reconnects = 0
        self.closed = False
        self._endpoints: Sequence[str] = client.endpoints
        self._rotation = itertools.cycle(range(len(self._endpoints)))
        self._endpoint = client.endpoint
        self._socket: zmq.Socket[bytes] | None = None
        self._watch_id = 0
        self._request_id = 0
        self._created = False
        self._expected = 0  # the next frame's seq
        self._acked = -1
        self._acked_at = 0.0
        self._heard = 0.0
        self._failures = 0

    # --- the public API --------------------------------------------------------

    def __iter__(self) -> Iterator[WatchResponse]:
        while not self.closed:
            response = self.get(timeout=None)
            if response is not None:
                yield response

    def get(self, timeout: float | None = None) -> WatchResponse | None:
        """The next response, or None if none came within `timeout` seconds (None: wait)."""
        if self.closed:
            raise ValueError("the watch is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._heard = max(self._heard, time.monotonic())  # queued frames are not silence
        while True:
            if self._socket is None:
                self._open()
            socket = self._socket
            assert socket is not None
            now = time.monotonic()
            silence = self._heard + self._silence_limit()
            wait = silence - now if deadline is None else min(silence, deadline) - now
            if wait > 0 and socket.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                response = self._receive(socket)
                if response is not None:
                    return response
                continue
            now = time.monotonic()
            if now >= silence:
                self._reconnect("silent")
            elif deadline is not None and now >= deadline:
                return None

    def request_progress(self) -> None:
        """Ask the node for a progress notification (yielded even if progress_notify is off)."""
        self._force_progress = True
        self._send(WatchProgressRequest(self.client.next_request_id(), self._watch_id, max(self._acked, 0), True))

    def cancel(self) -> None:
        """Stop watching (tells the node; idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._socket is not None and self._created:
            self._send(WatchCancelRequest(self.client.next_request_id(), self._watch_id))
            self._close_socket(linger_ms=100)  # let the cancel leave (a dead node: expiry covers it)
        self._close_socket()

    close = cancel

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.cancel()

    # --- frames ------------------------------------------------------------------

    _force_progress = False

    def _receive(self, socket: zmq.Socket[bytes]) -> WatchResponse | None:
        try:
            frames = decode_watch_frames(socket.recv(zmq.NOBLOCK))
        except (ProtocolError, zmq.Again):
            return None
        for item in frames:  # one watch frame, or replies (maybe a batch)
            if isinstance(item, ErrorReply) and item.request_id == self._request_id:
                self._refused(item)
            elif isinstance(item, WatchFrame) and item.watch_id == self._watch_id:
                return self._on_frame(item)
        return None  # nothing for us, or a previous connection's leftovers

    def _on_frame(self, frame: WatchFrame) -> WatchResponse | None:
        self._heard = time.monotonic()
        if frame.seq != self._expected:
            self._reconnect(f"frame {frame.seq} where {self._expected} was due")
            return None
        self._expected += 1
        if frame.kind == "cancelled":
            self._cancelled(frame)
            return None
        self._failures = 0
        if frame.kind == "created":
            self._created = True
            self.interval = frame.interval_ms / 1000 or self.interval
        start = self.revision
        events = frame.events if start is None else tuple(e for e in frame.events if e.kv.mod_revision > start)
        if start is None or frame.revision > start:
            self.revision = frame.revision
        self._maybe_ack(frame)
        if events:
            return WatchResponse(frame.revision, events, False, frame.node_id, frame.head)
        if frame.kind == "progress" and (self.progress_notify or self._force_progress):
            self._force_progress = False
            return WatchResponse(frame.revision, (), True, frame.node_id, frame.head)
        return None

    def _maybe_ack(self, frame: WatchFrame) -> None:
        now = time.monotonic()
        if (frame.kind == "progress" or frame.seq - self._acked >= ACK_EVERY
                or now - self._acked_at >= self.interval):
            self._acked, self._acked_at = frame.seq, now
            self._send(WatchProgressRequest(self.client.next_request_id(), self._watch_id, frame.seq, False))

    def _cancelled(self, frame: WatchFrame) -> None:
        if frame.code == ErrorCode.COMPACTED.value:
            self.cancel()
            raise WatchCompactedError(frame.reason, frame.compact_revision)
        self._reconnect(f"cancelled by node {frame.node_id}: {frame.reason}")

    def _refused(self, reply: ErrorReply) -> None:
        if reply.code is ErrorCode.INVALID_REQUEST:
            self.cancel()
            raise InvalidRequestError(reply.reason)
        self._reconnect(f"refused by node {reply.node_id}: {reply.code.value}: {reply.reason}")

    # --- connections -------------------------------------------------------------

    def _silence_limit(self) -> float:
        if not self._created:
            return self.client.attempt_timeout
        return 3 * self.interval + 0.5

    def _open(self) -> None:
        if self._failures:
            time.sleep(min(0.05 * 2 ** min(self._failures, 5), 1.0))
        socket = self.client.context.socket(zmq.DEALER)
        if self.client.curve is not None:
            self.client.curve.secure(socket, self._endpoint)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, 100_000)
        socket.connect(self._endpoint)
        self._socket = socket
        self._watch_id = int.from_bytes(os.urandom(7), "big")
        self._request_id = self.client.next_request_id()
        self._created = False
        self._expected = 0
        self._acked = -1
        self._acked_at = time.monotonic()
        self._heard = time.monotonic()
        start = 0 if self.revision is None else self.revision + 1
        self._send(WatchCreateRequest(self._request_id, self._watch_id, self.key, self.range_end, start,
                                      self.prev_kv, max(20, round(self.interval * 1000))))

    def _reconnect(self, why: str) -> None:
        """Leave this node (telling it, if it is still there) and resume elsewhere."""
        self.last_reconnect_reason = why
        self.reconnects += 1
        self._failures += 1
        if self._socket is not None and self._created:
            self._send(WatchCancelRequest(self.client.next_request_id(), self._watch_id))
        self._close_socket()
        if len(self._endpoints) > 1:
            current = self._endpoint
            for _ in range(len(self._endpoints)):
                self._endpoint = self._endpoints[next(self._rotation)]
                if self._endpoint != current:
                    break

    def _send(self, request: WatchCreateRequest | WatchCancelRequest | WatchProgressRequest) -> None:
        if self._socket is None:
            return
        try:
            self._socket.send(encode_request(request), zmq.NOBLOCK)
        except zmq.Again:
            pass  # nothing connected yet / queue full: silence detection covers it

    def _close_socket(self, linger_ms: int = 0) -> None:
        if self._socket is not None:
            self._socket.close(linger=linger_ms)
            self._socket = None
