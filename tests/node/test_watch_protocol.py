"""The watch part of the client protocol: round trips, and malformed watch
requests or frames raise ProtocolError only (a node reads requests from anyone)."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from cluster.kv import KeyValue
from cluster.protocol import (
    ErrorCode, ErrorReply, ProtocolError, WatchCancelRequest, WatchCreateRequest, WatchEvent, WatchFrame,
    WatchProgressRequest, decode_request, decode_watch_frame, encode_reply, encode_request, encode_watch_frame,
)


@pytest.mark.parametrize("request_", [
    WatchCreateRequest(1, 2, b"k", b"", 0, False, 1000),
    WatchCreateRequest(2**64 - 1, 2**63 - 1, b"", b"\0", 2**62, True, 20),
    WatchCancelRequest(3, 0), WatchProgressRequest(4, 5, 6, True),
])
def test_watch_requests_round_trip(request_: object) -> None:
    assert decode_request(encode_request(request_)) == request_  # type: ignore[arg-type]


def test_frames_round_trip_with_events_and_prev_kvs() -> None:
    put = WatchEvent(0, KeyValue(b"k", b"v", 2, 3, 2, 0), KeyValue(b"k", b"u", 2, 2, 1, 0))
    delete = WatchEvent(1, KeyValue(b"k", b"", 0, 4, 0, 0))
    frame = WatchFrame(9, 1, 7, 3, "events", 4, 5, (put, delete))
    assert decode_watch_frame(encode_watch_frame(9, 1, 7, 3, "events", 4, 5, [put, delete])) == frame
    assert (put.type_name, delete.type_name) == ("PUT", "DELETE")
    cancel = decode_watch_frame(encode_watch_frame(9, 1, 7, 0, "cancelled", 0, 5, compact_revision=4,
                                                   code="compacted", reason="why"))
    assert isinstance(cancel, WatchFrame) and (cancel.compact_revision, cancel.code) == (4, "compacted")
    error = ErrorReply(9, 1, ErrorCode.WATCH_CANCELLED, "r")
    assert decode_watch_frame(encode_reply(error)) == error  # ordinary replies come on a watch socket too


def _watch(**fields: object) -> bytes:
    base = {"v": 1, "id": 1, "op": "watch", "wid": 1, "key": b"k", "end": b"", "start": 0, "prev_kv": False,
            "progress_ms": 1000}
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize("data", [
    _watch(key=b"", end=b""), _watch(key="text"), _watch(end=None), _watch(start=-1), _watch(start=True),
    _watch(start=2**63), _watch(wid=-1), _watch(wid=2**63), _watch(wid=...), _watch(prev_kv=1),
    _watch(progress_ms=0), _watch(progress_ms=10**9), _watch(progress_ms=1.5), _watch(progress_ms=...),
    msgpack.packb({"v": 1, "id": 1, "op": "watch-cancel"}),
    msgpack.packb({"v": 1, "id": 1, "op": "watch-progress", "wid": 1, "ack": -1, "notify": False}),
    msgpack.packb({"v": 1, "id": 1, "op": "watch-progress", "wid": 1, "ack": 1}),
    msgpack.packb({"v": 1, "id": 1, "op": "watch-progress", "wid": 1, "ack": "1", "notify": True}),
])
def test_malformed_watch_requests_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(data)


@pytest.mark.parametrize("events", [
    [[2, [b"k", b"v", 1, 1, 1, 0], None]], [[0, [b"k", b"v", 1, 1, 1], None]], [[0, ["k", b"v", 1, 1, 1, 0], None]],
    [[0, [b"k", b"v", 1, 1, 1, 0]]], [[0, [b"k", b"v", "1", 1, 1, 0], None]], ["event"], [[0, None, None]],
])
def test_malformed_frames_are_protocol_errors(events: list[object]) -> None:
    with pytest.raises(ProtocolError):
        decode_watch_frame(encode_watch_frame(1, 1, 1, 1, "events", 1, 1, events))
    with pytest.raises(ProtocolError):
        decode_watch_frame(encode_watch_frame(1, 1, 1, 1, "bogus", 1, 1))


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "id", "op", "wid", "key", "end", "start", "prev_kv", "progress_ms",
                                        "ack", "notify"]),
                       st.one_of(st.integers(-2**63, 2**64 - 1), st.binary(max_size=5), st.booleans(), st.none(),
                                 st.sampled_from(["watch", "watch-cancel", "watch-progress", 1]), st.floats())))
def test_random_watch_shaped_maps_raise_only_protocol_error(fields: dict[str, object]) -> None:
    try:
        decode_request(msgpack.packb({"v": 1, **fields}))
    except ProtocolError:
        pass


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "id", "node", "ok", "watch", "seq", "kind", "rev", "head", "events",
                                        "compact", "code", "reason", "interval_ms"]),
                       st.one_of(st.integers(-2**63, 2**64 - 1), st.binary(max_size=5), st.text(max_size=5),
                                 st.sampled_from(["events", "created"]), st.lists(st.lists(st.integers(0, 2)))),
                       min_size=3))
def test_random_frames_raise_only_protocol_error(fields: dict[str, object]) -> None:
    try:
        decode_watch_frame(msgpack.packb({"v": 1, **fields}))
    except ProtocolError:
        pass
