"""Request batches on a real cluster: one frame of many requests is answered
element by element, in as few frames as the node's loop turns allow."""
from __future__ import annotations

from collections.abc import Callable

import msgpack
import zmq

from cluster.kv import OpenSession, Put, Range, SessionOpened, decode_result, encode_command
from cluster.protocol import (
    ErrorCode, ErrorReply, KvReply, KvRequest, StatusReply, StatusRequest, decode_replies, encode_requests,
)
from node.localcluster import LocalCluster

MakeCluster = Callable[..., LocalCluster]


def _exchange(endpoint: str, frame: bytes, expected: int, timeout_s: float = 20.0) -> tuple[list, int]:
    """Send one frame; return every reply that came back and in how many frames."""
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sock.send(frame)
        replies: list = []
        frames = 0
        while len(replies) < expected and sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            replies += decode_replies(sock.recv())
            frames += 1
        sock.close(linger=0)
        return replies, frames
    finally:
        ctx.term()


def test_a_batch_of_writes_reads_and_bad_elements_is_answered_element_by_element(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    leader = cluster.wait_for_leader()
    endpoint = cluster.spec.member(leader).client

    opened, _ = _exchange(endpoint, encode_requests([KvRequest(1, encode_command(OpenSession()))]), 1)
    session = decode_result(opened[0].result)
    assert isinstance(session, SessionOpened)

    puts = [KvRequest(100 + i, encode_command(Put(f"batch/{i}".encode(), b"v%d" % i), session.client_id, i + 1))
            for i in range(200)]
    replies, frames = _exchange(endpoint, encode_requests(puts), len(puts))
    assert sorted(r.request_id for r in replies) == [p.request_id for p in puts]
    assert all(isinstance(r, KvReply) for r in replies), replies[:3]
    assert frames < len(puts)  # answered in batches, not one frame per request

    mixed = msgpack.packb([
        {"v": 1, "id": 500, "op": "kv", "cmd": encode_command(Range(b"batch/", b"batch0")), "ser": False},
        {"v": 1, "id": 501, "op": "dance"},
        {"v": 1, "id": 502, "op": "status"},
        "not a request",
        {"v": 1, "id": 503, "op": "kv", "cmd": b"\x00garbage", "ser": True},
    ])
    replies, _ = _exchange(endpoint, mixed, 4)
    by_id = {r.request_id: r for r in replies}
    assert sorted(by_id) == [500, 501, 502, 503]
    read = decode_result(by_id[500].result)
    assert read.count == 200
    assert isinstance(by_id[501], ErrorReply) and by_id[501].code is ErrorCode.INVALID_REQUEST
    assert isinstance(by_id[502], StatusReply)
    assert isinstance(by_id[503], ErrorReply) and by_id[503].code is ErrorCode.INVALID_REQUEST
    assert sorted(cluster.running()) == list(cluster.spec.ids)
    assert cluster.client().range(b"batch/", prefix=True).count == 200
