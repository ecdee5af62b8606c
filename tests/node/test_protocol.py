"""The client protocol codec: round trips, and garbage raises ProtocolError only."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from cluster.protocol import (
    MAX_BATCH, BadRequest, ErrorCode, ErrorReply, KvReply, KvRequest, ProtocolError, StatusReply,
    StatusRequest, decode_replies, decode_reply, decode_request, decode_requests, encode_replies,
    encode_reply, encode_request, encode_requests, peek_request_id,
)


@pytest.mark.parametrize("request_", [KvRequest(1, b"cmd"), KvRequest(2**64 - 1, b"", True), StatusRequest(7)])
def test_requests_round_trip(request_: object) -> None:
    assert decode_request(encode_request(request_)) == request_  # type: ignore[arg-type]


@pytest.mark.parametrize("reply", [
    KvReply(1, 2, b"result"), KvReply(1, 2, b"r", serializable=True),
    StatusReply(3, 1, {"role": "leader", "term": 4, "progress": {"2": "probe"}}),
    ErrorReply(4, 2, ErrorCode.NOT_LEADER, "node 1 is", 1, "tcp://h:1"),
    *[ErrorReply(5, 1, code, "why") for code in ErrorCode],
])
def test_replies_round_trip(reply: object) -> None:
    assert decode_reply(encode_reply(reply)) == reply  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"v": 2, "id": 1, "op": "status"}),
    msgpack.packb({"v": 1, "id": -1, "op": "status"}), msgpack.packb({"v": 1, "id": True, "op": "status"}),
    msgpack.packb({"v": 1, "id": 1, "op": "kv", "cmd": "text", "ser": False}),
    msgpack.packb({"v": 1, "id": 1, "op": "kv", "cmd": b"", "ser": 1}),
    msgpack.packb({"v": 1, "id": 1, "op": "dance"}), msgpack.packb({1: 2}),
])
def test_malformed_requests_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(data)


def test_oversized_frames_are_refused_and_ids_are_peeked_when_readable() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_request(encode_request(KvRequest(1, b"x" * 100)), max_bytes=50)
    assert peek_request_id(msgpack.packb({"v": 1, "id": 9, "op": "dance"})) == 9
    assert peek_request_id(b"\xc1") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    for decode in (decode_request, decode_reply, decode_requests, decode_replies):
        try:
            decode(data)
        except ProtocolError:
            pass


def test_a_batch_of_requests_round_trips_and_a_single_one_is_a_plain_frame() -> None:
    batch = [KvRequest(1, b"a"), StatusRequest(2), KvRequest(3, b"c", True)]
    assert decode_requests(encode_requests(batch)) == batch
    assert encode_requests(batch[:1]) == encode_request(batch[0])
    assert decode_requests(encode_request(batch[0])) == batch[:1]
    with pytest.raises(ValueError):
        encode_requests([])


def test_each_element_of_a_batch_is_decoded_on_its_own() -> None:
    data = msgpack.packb([{"v": 1, "id": 5, "op": "dance"}, {"v": 1, "id": 6, "op": "status"}, 7,
                          {"v": 1, "id": "x"}])
    got = decode_requests(data)
    assert got[1] == StatusRequest(6)
    assert isinstance(got[0], BadRequest) and got[0].request_id == 5 and "dance" in got[0].reason
    assert got[2] == BadRequest("not a msgpack map", None)
    assert isinstance(got[3], BadRequest) and got[3].request_id is None


@pytest.mark.parametrize("size", [0, MAX_BATCH + 1])
def test_empty_or_oversized_batches_are_refused_whole(size: int) -> None:
    with pytest.raises(ProtocolError, match="batch"):
        decode_requests(msgpack.packb([{"v": 1, "id": 1, "op": "status"}] * size))


def test_a_batch_of_replies_round_trips_and_one_reply_is_a_plain_frame() -> None:
    replies = [KvReply(1, 2, b"r"), ErrorReply(3, 2, ErrorCode.TIMEOUT, "t"), StatusReply(4, 2, {"a": 1})]
    assert decode_replies(encode_replies(replies)) == replies
    assert encode_replies(replies[:1]) == encode_reply(replies[0])
    assert decode_replies(encode_reply(replies[0])) == replies[:1]
    with pytest.raises(ProtocolError):
        decode_replies(msgpack.packb([{"v": 1, "id": 1}, 3]))
