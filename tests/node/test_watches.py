"""The node's watch bookkeeping (node/watches.py) without sockets: a real state
machine, frames collected from a fake send, the clock passed in."""
from __future__ import annotations

from typing import Any

import pytest

from cluster.protocol import (
    ErrorCode, WatchCancelRequest, WatchCreateRequest, WatchFrame, WatchProgressRequest, decode_watch_frame,
)
from cluster.kv import Compact, DeleteRange, Put, Txn, encode_command
from node.statemachine import StateMachine
from node.watches import WatchHub, WatchLimits

ME = b"client-1"


class Harness:
    def __init__(self, **limits: Any) -> None:
        self.sm = StateMachine()
        self.index = 0
        self.now = 100.0
        self.frames: list[tuple[bytes, WatchFrame]] = []
        self.refused: list[tuple[bytes, int, ErrorCode, str]] = []
        self.logged: list[str] = []
        self.hub = WatchHub(1, self._send, lambda *r: self.refused.append(r), lambda k, m: self.logged.append(k),
                            WatchLimits(**limits))

    def _send(self, identity: bytes, data: bytes) -> bool:
        frame = decode_watch_frame(data)
        assert isinstance(frame, WatchFrame)
        self.frames.append((identity, frame))
        return True

    def run(self, request: object) -> None:
        self.index += 1
        self.sm.apply(self.index, encode_command(request))  # type: ignore[arg-type]

    def put(self, key: str, value: str = "v") -> None:
        self.run(Put(key.encode(), value.encode()))

    def request(self, request: object, identity: bytes = ME) -> None:
        self.hub.on_request(identity, request, self.sm, self.now)  # type: ignore[arg-type]

    def watch(self, wid: int = 7, key: bytes = b"a/", end: bytes = b"a0", start: int = 0, prev_kv: bool = False,
              progress_ms: int = 1000, identity: bytes = ME) -> None:
        self.request(WatchCreateRequest(1, wid, key, end, start, prev_kv, progress_ms), identity)

    def pump(self, advance: float = 0.0) -> list[WatchFrame]:
        self.now += advance
        before = len(self.frames)
        self.hub.pump(self.sm, self.now)
        return [f for _, f in self.frames[before:]]

    def take(self) -> list[WatchFrame]:
        out = [f for _, f in self.frames]
        self.frames.clear()
        return out

    def ack(self, frame: WatchFrame, notify: bool = False) -> None:
        self.request(WatchProgressRequest(2, frame.watch_id, frame.seq, notify))


def events_of(frames: list[WatchFrame]) -> list[tuple[int, bytes, bytes]]:
    return [(e.kv.mod_revision, e.kv.key, e.kv.value) for f in frames for e in f.events]


def test_a_watch_from_now_sees_later_writes_then_progress_when_idle() -> None:
    h = Harness()
    h.put("a/old")
    h.watch(progress_ms=200)
    [created] = h.take()
    assert (created.kind, created.seq, created.revision, created.interval_ms) == ("created", 0, 2, 200)
    h.put("a/1", "x")
    h.put("b/1")  # out of range
    h.run(Txn((), (Put(b"a/2", b"y"), DeleteRange(b"a/1")), ()))
    [frame] = h.pump()
    assert frame.kind == "events" and frame.seq == 1 and frame.revision == 5 == frame.head
    assert [(e.type_name, e.kv.key, e.kv.mod_revision) for e in frame.events] == [
        ("PUT", b"a/1", 3), ("PUT", b"a/2", 5), ("DELETE", b"a/1", 5)]
    assert frame.events[2].prev_kv is None  # not asked for
    assert h.pump(0.1) == []
    [progress] = h.pump(0.15)
    assert (progress.kind, progress.revision, progress.seq) == ("progress", 5, 2)


def test_prev_kv_and_a_start_revision_in_the_past() -> None:
    h = Harness()
    h.put("a/1", "1")
    h.put("a/1", "2")
    h.watch(start=2, prev_kv=True)
    assert h.take()[0].revision == 1
    frames = h.pump()
    assert events_of(frames) == [(2, b"a/1", b"1"), (3, b"a/1", b"2")]
    assert frames[0].events[1].prev_kv.value == b"1"


def test_catch_up_is_sliced_per_turn_in_order_without_gaps() -> None:
    h = Harness(turn_revisions=50, turn_events=30, window_frames=10_000)
    for i in range(400):
        h.put(f"a/{i % 7}", str(i))
    h.watch(start=1)
    h.take()
    turns = 0
    while True:
        frames = h.pump()
        if not frames:
            break
        turns += 1
        assert sum(len(f.events) for f in frames) <= 30 + 1  # one revision may overshoot
        assert h.hub.busy or h.hub.watches[(ME, 7)].next_rev > h.sm.revision
    got = events_of(h.take())
    assert [r for r, _, _ in got] == list(range(2, 402)) and turns >= 400 // 30


def test_frames_are_bounded_in_bytes_but_a_revision_is_never_split() -> None:
    h = Harness(frame_bytes=1000, window_frames=1000)
    h.run(Txn((), tuple(Put(b"a/%d" % i, b"x" * 300) for i in range(8)), ()))  # one revision, ~2.7 KB
    for i in range(10):
        h.put(f"a/{i}", "y" * 300)
    h.watch(start=1)
    h.take()
    frames = h.pump()
    assert len(frames[0].events) == 8 and len(frames) > 3
    assert [r for r, _, _ in events_of(frames)] == [2] * 8 + list(range(3, 13))
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert all(f.revision == f.events[-1].kv.mod_revision for f in frames)


def test_the_window_stops_an_unacknowledging_watcher_and_acks_reopen_it() -> None:
    h = Harness(window_frames=4, frame_bytes=1, stall_seconds=5, min_expiry_seconds=100)
    for i in range(20):
        h.put(f"a/{i}")
    h.watch(start=1)
    frames = h.take() + h.pump()
    assert len(frames) == 4 and h.pump() == []  # created + 3 event frames: the window is full
    assert not h.hub.busy  # a full window is not work: the loop may sleep
    h.ack(frames[-1])
    more = h.pump()
    assert len(more) == 4 and more[0].seq == 4
    assert events_of(frames + more) == [(r, b"a/%d" % (r - 2), b"v") for r in range(2, 9)]


def test_a_slow_watcher_is_cancelled_with_the_revision_to_resume_from() -> None:
    h = Harness(window_frames=3, frame_bytes=1, stall_seconds=5, min_expiry_seconds=100)
    for i in range(10):
        h.put(f"a/{i}")
    h.watch(start=1)
    sent = h.take() + h.pump()
    resume = sent[-1].revision + 1
    h.pump(1.0)
    assert h.pump(4.5) == []
    [cancel] = h.pump(1.0)
    assert cancel.kind == "cancelled" and cancel.code == ErrorCode.WATCH_CANCELLED.value
    assert cancel.reason == f"slow watcher, resume from revision {resume}"
    assert len(h.hub) == 0 and h.hub.stats.cancelled_slow == 1 and h.logged == ["watch-slow"]


def test_a_silent_client_expires_and_its_acks_keep_it_alive() -> None:
    h = Harness(expiry_intervals=5, min_expiry_seconds=2)
    h.watch(progress_ms=200)
    h.watch(wid=8, progress_ms=200)
    for _ in range(20):  # 4 s: only watch 7's client answers the progress frames
        for frame in h.pump(0.2):
            if frame.watch_id == 7:
                h.ack(frame)
    assert list(h.hub.watches) == [(ME, 7)] and h.hub.stats.expired == 1


def test_compaction_refuses_old_starts_and_ends_watches_it_overtakes() -> None:
    h = Harness(window_frames=3, frame_bytes=1)
    for i in range(10):
        h.put(f"a/{i}")
    h.run(Compact(5))
    h.watch(start=5)
    [refused] = h.take()
    assert refused.kind == "cancelled" and refused.code == "compacted" and refused.compact_revision == 5
    assert len(h.hub) == 0
    h.watch(start=6)
    frames = h.take() + h.pump()  # window full before the end
    h.run(Compact(10))
    h.ack(frames[-1])
    [cancel] = h.pump()
    assert cancel.kind == "cancelled" and cancel.code == "compacted" and cancel.compact_revision == 10


def test_requests_for_unknown_watches_say_so_and_bad_creates_are_refused() -> None:
    h = Harness(max_per_client=2)
    h.request(WatchProgressRequest(5, 99, 0, True))
    [unknown] = h.take()
    assert unknown.kind == "cancelled" and unknown.code == "watch-cancelled" and "no such watch" in unknown.reason
    h.watch(wid=1)
    h.watch(wid=1)
    h.watch(wid=2, key=b"k" * 9000, end=b"")
    h.watch(wid=3)
    h.watch(wid=4)
    assert [(code, reason[:12]) for _, _, code, reason in h.refused] == [
        (ErrorCode.INVALID_REQUEST, "watch id 1 i"), (ErrorCode.INVALID_REQUEST, "watch key ov"),
        (ErrorCode.TOO_MANY_REQUESTS, "2 watches on")]
    h.watch(wid=1, identity=b"another client")  # ids are per client
    assert len(h.hub) == 3
    h.take()
    h.request(WatchCancelRequest(9, 1))
    [bye] = h.take()
    assert bye.kind == "cancelled" and bye.reason == "cancelled by the client" and len(h.hub) == 2


def test_progress_on_request_and_a_restored_state_machine_continues_the_stream() -> None:
    h = Harness()
    h.watch(start=1)
    created = h.take()[0]
    h.put("a/1")
    h.pump()
    h.ack(created, notify=True)
    [progress] = h.pump()
    assert progress.kind == "progress" and progress.revision == 2
    h.put("a/2")
    h.sm = StateMachine.restore(h.sm.snapshot())  # a follower installs a snapshot
    h.index = h.sm.applied_index
    h.put("a/3")
    assert events_of(h.pump()) == [(3, b"a/2", b"v"), (4, b"a/3", b"v")]
    h.take()
    h.hub.close(h.sm)
    [bye] = h.take()
    assert bye.kind == "cancelled" and "shutting down, resume from revision 5" in bye.reason


@pytest.mark.parametrize("advance", [0.0, 0.3])
def test_an_idle_pump_sends_nothing_new(advance: float) -> None:
    h = Harness()
    h.watch()
    h.take()
    assert h.pump(advance) == []
