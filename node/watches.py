"""Watches served by this node from its applied state (docs/watch.md).

Theory of operation
-------------------
A watch is a position in the MVCC history: `next_rev`, the first revision
whose events the watcher has not been sent. There is no per-watch event
buffer on the node: events are read from the state machine's change index
(`StateMachine.events`) when they can be sent, so a watch that is behind
(catching up from an old revision, or a slow reader) costs one integer here,
and history retention is the state machine's (compaction ends such a watch
with `compacted`). Catching up and following live writes are the same code
path with the same pointer, which is why an event is never skipped or sent
twice by a node.

`pump` runs once per loop turn, after the Ready is handled (so everything
applied in the turn is visible). Its work is bounded per turn for all watches
together (`turn_revisions` scanned, `turn_events` sent), starting from a
rotating position so one big catch-up cannot starve the others; a revision is
never split (a transaction's events go in one frame).

Flow control (no unbounded queue anywhere): every frame of a watch is numbered
(`seq`); the client acknowledges with `watch-progress ack=seq`. At most
`window_frames` frames / `window_bytes` bytes are in flight per watch, far
below the socket's high-water mark, so ZeroMQ's ROUTER never drops a watch
frame silently for a full queue (if one is lost anyway the client sees the gap
in `seq` and resumes by revision). A watch whose window has been full with no
acknowledgement for `stall_seconds` is a slow watcher: cancelled with
`watch-cancelled` "slow watcher, resume from revision N".

Liveness, both ways: an idle watch gets a progress frame every
`progress_ms` (its `rev` says every event up to it was sent); a watch whose
client has sent nothing (acks, progress requests) for `expiry_intervals`
progress intervals (at least `min_expiry_seconds`) is dropped: its client is
gone. The client acknowledges progress frames, so a live client keeps its
watches, and one that stops reading loses them and resumes by revision.

Pure bookkeeping: the clock is passed in, frames leave through `send`; tested
without sockets (tests/node/test_watches.py).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster.kv import Compacted
from cluster.protocol import (
    ErrorCode, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, encode_watch_frame,
)
from node.statemachine import StateMachine

#: (identity, frame) -> False if the frame was not queued.
Send = Callable[[bytes, bytes], bool]
#: A reply for a request that failed: (identity, request_id, code, reason).
Refuse = Callable[[bytes, int, ErrorCode, str], None]
#: (kind, message): one rate-limited log line.
Log = Callable[[str, str], None]

CANCELLED = ErrorCode.WATCH_CANCELLED.value
COMPACTED = ErrorCode.COMPACTED.value


@dataclass(frozen=True, slots=True)
class WatchLimits:
    max_watches: int = 10_000
    max_per_client: int = 1_000  # per client routing identity
    window_frames: int = 64
    window_bytes: int = 8 << 20
    frame_bytes: int = 256 << 10  # events per frame, roughly (a revision is never split)
    turn_revisions: int = 2_000  # scanned per loop turn, all watches together
    turn_events: int = 1_000  # sent per loop turn, all watches together (~5 ms of loop)
    stall_seconds: float = 10.0
    expiry_intervals: int = 5
    min_expiry_seconds: float = 5.0


@dataclass(slots=True)
class Watch:
    identity: bytes
    request_id: int
    watch_id: int
    key: bytes
    range_end: bytes
    prev_kv: bool
    interval: float
    next_rev: int
    heard: float  # the last time its client sent anything
    sent_at: float  # the last frame's time
    sent: int = 0  # frames sent; the next frame's seq
    acked: int = 0  # frames acknowledged (seq < acked)
    in_flight: deque[tuple[int, int]] = field(default_factory=deque)  # (seq, bytes) not yet acknowledged
    in_flight_bytes: int = 0
    full_since: float | None = None  # when the window filled up
    notify: bool = False  # a progress frame was asked for

    def window_open(self, limits: WatchLimits) -> bool:
        return self.sent - self.acked < limits.window_frames and self.in_flight_bytes < limits.window_bytes


@dataclass(slots=True)
class WatchStats:
    created: int = 0
    events_sent: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    cancelled_slow: int = 0
    cancelled_compacted: int = 0
    expired: int = 0


class WatchHub:
    """Every watch on this node, keyed by (client identity, watch id)."""

    def __init__(self, node_id: int, send: Send, refuse: Refuse, log: Log,
                 limits: WatchLimits = WatchLimits()) -> None:
        self.node_id = node_id
        self.send = send
        self.refuse = refuse
        self.log = log
        self.limits = limits
        self.watches: dict[tuple[bytes, int], Watch] = {}
        self.per_client: dict[bytes, int] = {}
        self.stats = WatchStats()
        self.busy = False  # the last pump stopped on its budget: pump again soon
        self._cursor = 0
        self._pumped_revision = -1
        self._next_due = 0.0
        self._dirty = False

    def __len__(self) -> int:
        return len(self.watches)

    # --- requests ------------------------------------------------------------------

    def on_request(self, identity: bytes, request: WatchRequest, sm: StateMachine, now: float) -> None:
        self._dirty = True
        match request:
            case WatchCreateRequest():
                self._create(identity, request, sm, now)
            case WatchCancelRequest(request_id, watch_id):
                watch = self.watches.get((identity, watch_id))
                if watch is not None:
                    self._cancel(watch, sm, CANCELLED, "cancelled by the client")
                else:
                    self._send_unknown(identity, request_id, watch_id, sm, "cancelled by the client")
            case WatchProgressRequest(request_id, watch_id, ack, notify):
                watch = self.watches.get((identity, watch_id))
                if watch is None:
                    self._send_unknown(identity, request_id, watch_id, sm,
                                       f"no such watch on node {self.node_id} (expired, cancelled or the node restarted)")
                    return
                watch.heard = now
                watch.notify = watch.notify or notify
                self._acknowledge(watch, ack)

    def _create(self, identity: bytes, request: WatchCreateRequest, sm: StateMachine, now: float) -> None:
        rid = request.request_id
        if (identity, request.watch_id) in self.watches:
            self.refuse(identity, rid, ErrorCode.INVALID_REQUEST, f"watch id {request.watch_id} is in use")
            return
        limit = sm.limits.max_key_bytes
        if len(request.key) > limit or len(request.range_end) > limit:
            self.refuse(identity, rid, ErrorCode.INVALID_REQUEST, f"watch key over max_key_bytes ({limit})")
            return
        if len(self.watches) >= self.limits.max_watches or \
                self.per_client.get(identity, 0) >= self.limits.max_per_client:
            self.refuse(identity, rid, ErrorCode.TOO_MANY_REQUESTS, f"{len(self.watches)} watches on this node")
            return
        start = request.start_revision or sm.revision + 1
        interval = request.progress_ms / 1000
        watch = Watch(identity, rid, request.watch_id, request.key, request.range_end, request.prev_kv,
                      interval, start, heard=now, sent_at=now)
        if start <= sm.compact_revision:
            self._frame(watch, sm, "cancelled", code=COMPACTED, compact=sm.compact_revision,
                        reason=f"revision {start} is compacted (compact revision {sm.compact_revision}): "
                               f"watch from {sm.compact_revision + 1} or later")
            self.stats.cancelled_compacted += 1
            return
        self.watches[(identity, request.watch_id)] = watch
        self.per_client[identity] = self.per_client.get(identity, 0) + 1
        self.stats.created += 1
        self._frame(watch, sm, "created", interval_ms=request.progress_ms)

    def _acknowledge(self, watch: Watch, ack: int) -> None:
        if ack < watch.acked or ack >= watch.sent:
            return  # old, or ahead of what was sent (garbage): ignore
        watch.acked = ack + 1
        while watch.in_flight and watch.in_flight[0][0] <= ack:
            watch.in_flight_bytes -= watch.in_flight.popleft()[1]
        watch.full_since = None

    def _send_unknown(self, identity: bytes, request_id: int, watch_id: int, sm: StateMachine, reason: str) -> None:
        self.send(identity, encode_watch_frame(request_id, self.node_id, watch_id, 0, "cancelled", 0, sm.revision,
                                               code=CANCELLED, reason=reason))

    # --- frames --------------------------------------------------------------------

    def _frame(self, watch: Watch, sm: StateMachine, kind: str, events: list[object] | None = None,
               code: str = "", reason: str = "", compact: int = 0, interval_ms: int = 0,
               revision: int | None = None) -> None:
        head = sm.revision
        if revision is None:
            revision = min(watch.next_rev - 1, head)
        data = encode_watch_frame(watch.request_id, self.node_id, watch.watch_id, watch.sent, kind, revision,
                                  head, events or [], compact, code, reason, interval_ms)
        if not self.send(watch.identity, data):
            self.stats.frames_dropped += 1  # the client sees the gap in seq and resumes
        watch.in_flight.append((watch.sent, len(data)))
        watch.in_flight_bytes += len(data)
        watch.sent += 1
        self.stats.frames_sent += 1

    def _cancel(self, watch: Watch, sm: StateMachine, code: str, reason: str, compact: int = 0) -> None:
        self._frame(watch, sm, "cancelled", code=code, reason=reason, compact=compact)
        self._remove(watch)

    def _remove(self, watch: Watch) -> None:
        del self.watches[(watch.identity, watch.watch_id)]
        left = self.per_client[watch.identity] - 1
        if left:
            self.per_client[watch.identity] = left
        else:
            del self.per_client[watch.identity]

    # --- the loop's turn -----------------------------------------------------------

    def pump(self, sm: StateMachine, now: float) -> None:
        """Send what is due: events applied since each watch's position (bounded per
        turn), progress frames, cancellations of slow and expiry of silent watches."""
        if not self.watches:
            self.busy = False
            return
        if not (self.busy or self._dirty or sm.revision != self._pumped_revision or now >= self._next_due):
            return
        self._dirty = False
        self._pumped_revision = sm.revision
        watches = list(self.watches.values())
        self._cursor = (self._cursor + 1) % len(watches)
        budget = [self.limits.turn_revisions, self.limits.turn_events]
        next_due = now + 60.0
        self.busy = False
        for watch in watches[self._cursor:] + watches[:self._cursor]:
            due = self._pump_one(watch, sm, now, budget)
            if due is not None:
                next_due = min(next_due, due)
        self._next_due = next_due

    def _pump_one(self, watch: Watch, sm: StateMachine, now: float, budget: list[int]) -> float | None:
        """One watch's share of the turn; returns when it next needs a look."""
        limits = self.limits
        expiry = max(limits.min_expiry_seconds, limits.expiry_intervals * watch.interval)
        if now - watch.heard > expiry:
            self.stats.expired += 1
            self.log("watch-expired", f"watch {watch.watch_id} expired: no word from its client for {expiry:g} s")
            self._remove(watch)
            return None
        if not watch.window_open(limits):
            if watch.full_since is None:
                watch.full_since = now
            elif now - watch.full_since > limits.stall_seconds:
                self.stats.cancelled_slow += 1
                self.log("watch-slow", f"watch {watch.watch_id} cancelled: slow watcher at revision {watch.next_rev}")
                self._cancel(watch, sm, CANCELLED, f"slow watcher, resume from revision {watch.next_rev}")
                return None
            return watch.full_since + limits.stall_seconds
        if watch.next_rev <= sm.revision:
            if budget[0] <= 0 or budget[1] <= 0:
                self.busy = True
                return now
            try:
                self._send_events(watch, sm, budget, now)
            except Compacted as error:
                self.stats.cancelled_compacted += 1
                self._cancel(watch, sm, COMPACTED, f"{error}: resume from {sm.compact_revision + 1} or later",
                             compact=sm.compact_revision)
                return None
            if watch.next_rev <= sm.revision and watch.window_open(limits):
                self.busy = True
        # Progress only when caught up (as etcd): its revision is then the head.
        if watch.next_rev > sm.revision and watch.window_open(limits) and \
                (watch.notify or now - watch.sent_at >= watch.interval):
            self._frame(watch, sm, "progress")
            watch.sent_at = now
            watch.notify = False
        return watch.sent_at + watch.interval

    def _send_events(self, watch: Watch, sm: StateMachine, budget: list[int], now: float) -> None:
        limits = self.limits
        start = watch.next_rev
        piece = sm.events(start, watch.key, watch.range_end, budget[0], budget[1])
        budget[0] -= piece.next_revision - start
        budget[1] -= piece.event_count
        frame: list[object] = []
        size = 0
        revisions = piece.revisions
        for i, (revision, events) in enumerate(revisions):
            for event in events:
                kv = event.kv
                size += len(kv.key) + len(kv.value) + 40
                if watch.prev_kv:
                    prev = event.prev_kv
                    if prev is not None:
                        size += len(prev.key) + len(prev.value) + 40
                    frame.append(event)
                else:
                    frame.append((event.type, kv, None))
            if size >= limits.frame_bytes and i + 1 < len(revisions):
                watch.next_rev = revision + 1
                self._send_batch(watch, sm, frame, revision, now)
                frame, size = [], 0
                if not watch.window_open(limits):
                    return  # the rest is read again when the window opens
        watch.next_rev = piece.next_revision
        if frame:
            self._send_batch(watch, sm, frame, piece.next_revision - 1, now)

    def _send_batch(self, watch: Watch, sm: StateMachine, events: list[object], revision: int, now: float) -> None:
        self._frame(watch, sm, "events", events, revision=revision)
        self.stats.events_sent += len(events)
        watch.sent_at = now  # progress frames are for idle watches

    # --- shutdown ------------------------------------------------------------------

    def close(self, sm: StateMachine) -> None:
        """Tell every watcher to resume elsewhere (the node is stopping)."""
        for watch in list(self.watches.values()):
            self._cancel(watch, sm, CANCELLED,
                         f"node {self.node_id} shutting down, resume from revision {watch.next_rev}")
