"""The client's resume rules (cluster/watch.py) against a scripted fake node: a
ROUTER socket in this thread, no processes. A gap in the frame numbers or a
cancellation makes it re-create the watch from its revision + 1; events at or
below its revision are never yielded twice; compaction is an error."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq

from cluster.client import Client, InvalidRequestError, WatchCompactedError
from cluster.protocol import (
    ErrorCode, ErrorReply, WatchCreateRequest, WatchProgressRequest, decode_request, encode_reply,
    encode_watch_frame,
)


class FakeNode:
    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.identity = b""
        self.create: WatchCreateRequest | None = None

    def expect_create(self) -> WatchCreateRequest:
        """The next create request (acknowledgements on the way are skipped)."""
        while True:
            assert self.router.poll(5000), "no request from the client"
            self.identity, data = self.router.recv_multipart()
            request = decode_request(data)
            if isinstance(request, WatchCreateRequest):
                self.create = request
                return request

    def push(self, seq: int, kind: str, revision: int, events: list[tuple[int, bytes, bytes]] = (),
             **extra: object) -> None:
        assert self.create is not None
        raw = [[0, [key, value, rev, rev, 1, 0], None] for rev, key, value in events]
        self.router.send_multipart([self.identity, encode_watch_frame(
            self.create.request_id, 1, self.create.watch_id, seq, kind, revision, revision, raw, **extra)])

    def close(self) -> None:
        self.router.close(linger=0)
        self.ctx.term()


@pytest.fixture
def node() -> Iterator[FakeNode]:
    fake = FakeNode()
    yield fake
    fake.close()


def revisions(response: object) -> list[int]:
    return [e.kv.mod_revision for e in response.events]  # type: ignore[attr-defined]


def test_gaps_and_cancellations_resume_from_the_last_revision_without_duplicates(node: FakeNode) -> None:
    with Client([node.endpoint], attempt_timeout=2) as client:
        watch = client.watch("a/", prefix=True, start_revision=5, progress_interval=5)
        assert watch.get(timeout=0.05) is None  # sends the create
        first = node.expect_create()
        assert (first.key, first.range_end, first.start_revision) == (b"a/", b"a0", 5)
        node.push(0, "created", 4, interval_ms=5000)
        node.push(1, "events", 6, [(5, b"a/1", b"x"), (6, b"a/2", b"y")])
        assert revisions(watch.get(timeout=5)) == [5, 6] and watch.revision == 6

        node.push(3, "events", 7, [(7, b"a/3", b"z")])  # frame 2 was lost
        assert watch.get(timeout=0.2) is None
        again = node.expect_create()
        assert again.start_revision == 7 and again.watch_id != first.watch_id and watch.reconnects == 1
        node.push(0, "created", 6, interval_ms=5000)
        node.push(1, "events", 7, [(6, b"a/2", b"y"), (7, b"a/3", b"z")])  # 6 again: dropped
        assert revisions(watch.get(timeout=5)) == [7]

        node.push(2, "cancelled", 7, code=ErrorCode.WATCH_CANCELLED.value, reason="slow watcher, resume from revision 8")
        assert watch.get(timeout=0.2) is None
        assert node.expect_create().start_revision == 8 and watch.reconnects == 2
        node.push(0, "created", 7, interval_ms=5000)
        node.push(1, "progress", 9)
        progress = watch.get(timeout=5)
        assert progress.progress and progress.revision == 9 == watch.revision and not progress.events
        node.push(2, "cancelled", 9, code="compacted", compact_revision=12, reason="compacted")
        with pytest.raises(WatchCompactedError) as error:
            watch.get(timeout=5)
        assert error.value.compact_revision == 12 and watch.closed


def test_a_watch_from_now_resumes_after_the_revision_the_node_named(node: FakeNode) -> None:
    with Client([node.endpoint], attempt_timeout=2) as client:
        watch = client.watch("k", progress_notify=False, progress_interval=5)
        watch.get(timeout=0.05)
        assert node.expect_create().start_revision == 0
        node.push(0, "created", 41, interval_ms=5000)
        node.push(1, "progress", 41)  # not yielded: progress_notify=False
        assert watch.get(timeout=0.3) is None and watch.revision == 41
        node.push(5, "progress", 41)
        watch.get(timeout=0.2)
        assert node.expect_create().start_revision == 42


def test_the_client_acknowledges_progress_frames(node: FakeNode) -> None:
    with Client([node.endpoint], attempt_timeout=2) as client:
        watch = client.watch("k", progress_interval=5)
        watch.get(timeout=0.05)
        node.expect_create()
        node.push(0, "created", 3, interval_ms=5000)
        node.push(1, "progress", 3)
        assert watch.get(timeout=5).progress
        assert node.router.poll(5000)
        _, data = node.router.recv_multipart()
        ack = decode_request(data)
        assert isinstance(ack, WatchProgressRequest) and ack.ack == 1 and not ack.notify


def test_a_refused_create_is_an_invalid_request(node: FakeNode) -> None:
    with Client([node.endpoint], attempt_timeout=2) as client:
        watch = client.watch("k")
        watch.get(timeout=0.05)
        create = node.expect_create()
        node.router.send_multipart([node.identity, encode_reply(
            ErrorReply(create.request_id, 1, ErrorCode.INVALID_REQUEST, "watch key over max_key_bytes"))])
        with pytest.raises(InvalidRequestError, match="max_key_bytes"):
            watch.get(timeout=5)
    with Client([node.endpoint]) as client, pytest.raises(InvalidRequestError):
        client.watch("")
