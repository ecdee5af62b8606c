"""node/etcd/watch.py's stream logic against a scripted node: acknowledgements,
resumption after a lost frame or an expired native watch, the node's cancellations."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cluster.etcdpb import rpc_pb2
from cluster.kv import KeyValue
from cluster.protocol import (
    EVENT_PUT, WatchCancelRequest, WatchCreateRequest, WatchEvent, WatchFrame, WatchProgressRequest,
)
from node.etcd import errors
from node.etcd.header import Headers
from node.etcd.watch import WatchService, WatchStream
from tests.etcd.recording_link import RecordingLink

pytestmark = pytest.mark.timeout(30)


class ScriptedLink(RecordingLink):
    """What WatchStream uses of NodeLink, with the node played by the test."""

    request_timeout = 1.0
    term = 4

    async def status(self) -> dict[str, Any]:
        return {"revision": 42}

    def deliver(self, create: WatchCreateRequest, seq: int, kind: str, revision: int, head: int,
                events: tuple[WatchEvent, ...] = (), **fields: Any) -> None:
        self.streams[create.request_id](WatchFrame(create.request_id, 1, create.watch_id, seq, kind, revision, head,
                                                   events, **fields))

    def last(self, kind: type) -> Any:
        return [r for r in self.sent if isinstance(r, kind)][-1]


class Context:
    def __init__(self) -> None:
        self.written: list[rpc_pb2.WatchResponse] = []
        self.aborted: errors.EtcdError | None = None

    async def write(self, response: rpc_pb2.WatchResponse) -> None:
        self.written.append(response)

    async def abort(self, code: Any, message: str) -> None:
        self.aborted = errors.EtcdError(errors.EtcdStatus(code, message))
        raise asyncio.CancelledError()


def put_event(revision: int) -> WatchEvent:
    return WatchEvent(EVENT_PUT, KeyValue(b"k", b"v%d" % revision, 1, revision, revision, 0))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def start() -> tuple[ScriptedLink, Context, asyncio.Queue[rpc_pb2.WatchRequest], asyncio.Task[None]]:
    link = ScriptedLink()
    service = WatchService(link, Headers("c", 1, link), progress_ms=1000)  # type: ignore[arg-type]
    context = Context()
    requests: asyncio.Queue[rpc_pb2.WatchRequest] = asyncio.Queue()

    async def iterate() -> AsyncIterator[rpc_pb2.WatchRequest]:
        while True:
            yield await requests.get()

    task = asyncio.get_running_loop().create_task(WatchStream(service, context).run(iterate()))
    return link, context, requests, task


def create(key: bytes, **fields: Any) -> rpc_pb2.WatchRequest:
    return rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=key, **fields))


def test_acks_lost_frames_and_expiry_resume_the_native_watch() -> None:
    async def scenario() -> None:
        link, context, requests, task = await start()
        await requests.put(create(b"k", start_revision=5))
        await settle()
        first = link.last(WatchCreateRequest)
        assert first.start_revision == 5
        link.deliver(first, 0, "created", 4, 10)
        link.deliver(first, 1, "events", 10, 10, tuple(put_event(r) for r in range(5, 11)))
        await settle()
        assert context.written[0].created and context.written[0].header.revision == 10
        assert [e.kv.mod_revision for e in context.written[1].events] == list(range(5, 11))
        assert link.last(WatchProgressRequest).ack == 1  # acknowledged once written
        link.deliver(first, 3, "events", 12, 12, (put_event(12),))  # seq 2 was lost
        await settle()
        assert link.last(WatchCancelRequest).watch_id == first.watch_id
        second = link.last(WatchCreateRequest)
        assert second.start_revision == 11 and second.watch_id != first.watch_id
        link.deliver(second, 0, "created", 10, 12)
        link.deliver(second, 1, "events", 12, 12, (put_event(11), put_event(12)))
        await settle()
        # not a second created; the caught-up watch gets one response per revision
        assert [(r.header.revision, [e.kv.mod_revision for e in r.events]) for r in context.written[2:]] == [
            (11, [11]), (12, [12])]
        link.deliver(second, 0, "cancelled", 0, 12, code="watch-cancelled",
                     reason="no such watch on node 1 (expired, cancelled or the node restarted)")
        await settle()
        third = link.last(WatchCreateRequest)
        assert third.start_revision == 13 and len(context.written) == 4
        link.deliver(third, 0, "created", 12, 12)
        link.deliver(third, 1, "cancelled", 12, 12, code="watch-cancelled",
                     reason="slow watcher, resume from revision 13")
        await settle()
        assert (context.written[-1].canceled, context.written[-1].cancel_reason) == (
            True, "slow watcher, resume from revision 13")
        task.cancel()

    asyncio.run(scenario())


def test_a_node_shutting_down_ends_the_stream_unavailable() -> None:
    async def scenario() -> None:
        link, context, requests, task = await start()
        await requests.put(create(b"k"))
        await settle()
        native = link.last(WatchCreateRequest)
        link.deliver(native, 0, "created", 7, 7)
        link.deliver(native, 1, "cancelled", 7, 7, code="watch-cancelled",
                     reason="node 1 shutting down, resume from revision 8")
        await settle()
        assert context.aborted is not None and context.aborted.message == errors.STOPPED.message
        assert task.done()

    asyncio.run(scenario())
