"""A native watch on this member's node, read from the face's event loop.

The lock and election services wait the way etcd's concurrency recipes do: by
watching a key (or a prefix) from a revision. They do it with the node's own
watches (node/watches.py) through the link: a `WatchCreateRequest` on one of
the Watch service's `Lanes` (the link's inproc DEALER, or a sibling when it
holds as many watches as the node allows one client), frames delivered to a
stream callback. As in
cluster/watch.py, frames are acknowledged (a `WatchProgressRequest` with
`ack=seq`) on every progress frame and every `ACK_EVERY` frames: a node stops
sending to a watch whose window is full and expires one it never hears from.

The node is in this process, so there is no reconnecting elsewhere: a watch the
node cancels for a reason other than compaction (a slow watcher), or whose
frames show a gap, is created again from the next revision it has not yet
delivered. A compacted start revision is etcd's ErrCompacted.
"""
from __future__ import annotations

import asyncio
import os
from types import TracebackType

from cluster.protocol import (
    ErrorCode, ErrorReply, Reply, WatchCancelRequest, WatchCreateRequest, WatchEvent, WatchFrame,
    WatchProgressRequest,
)
from cluster.watch import ACK_EVERY
from node.etcd import errors
from node.etcd.link import NodeLink
from node.etcd.watch import Lanes

#: How often the node sends progress frames to an idle watch (each one is acknowledged).
PROGRESS_MS = 1000


class KeyWatch:
    """Events on `key` (with `range_end`, etcd's convention) from `start_revision`,
    as `(revision, events)` batches: `async with KeyWatch(...) as w: await w.next()`."""

    def __init__(self, lanes: Lanes, key: bytes, range_end: bytes, start_revision: int, token: str = "") -> None:
        """`token`: the auth token the watch acts with (its caller's)."""
        self._lanes = lanes
        self._token = token
        self._link: NodeLink | None = None
        self._key, self._range_end = key, range_end
        #: Every event of a revision <= this one has been delivered.
        self.revision = start_revision - 1
        self._queue: asyncio.Queue[WatchFrame | Reply] = asyncio.Queue()
        self._request_id = 0
        self._watch_id = 0
        self._expected = 0
        self._acked = -1
        self._sends: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> KeyWatch:
        self._link = await self._lanes.acquire()
        try:
            await self._create()
        except BaseException:
            self._lanes.release(self._link)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._drop()
        assert self._link is not None
        self._lanes.release(self._link)

    @property
    def link(self) -> NodeLink:
        assert self._link is not None, "async with KeyWatch(...) first"
        return self._link

    async def _create(self) -> None:
        self._request_id = self.link.open_stream(self._queue.put_nowait)
        self._watch_id = int.from_bytes(os.urandom(7), "big")
        self._expected, self._acked = 0, -1
        await self.link.send_local(WatchCreateRequest(self._request_id, self._watch_id, self._key,
                                                       self._range_end, self.revision + 1, False, PROGRESS_MS,
                                                       token=self._token))

    def _drop(self) -> None:
        """Cancel this watch on the node (without waiting: the handler may be ending)."""
        if self._request_id:
            self.link.close_stream(self._request_id)
            self._send(WatchCancelRequest(self.link.next_id(), self._watch_id))
            self._request_id = 0
        self._queue = asyncio.Queue()

    def _send(self, request: WatchCancelRequest | WatchProgressRequest) -> None:
        task = asyncio.get_running_loop().create_task(self.link.send_local(request))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _recreate(self) -> None:
        self._drop()
        await self._create()

    async def next(self) -> tuple[int, tuple[WatchEvent, ...]]:
        """The next batch of events (all of one or more revisions, in order)."""
        while True:
            message = await self._queue.get()
            if isinstance(message, ErrorReply):
                raise errors.from_reply(message)
            if not isinstance(message, WatchFrame) or message.watch_id != self._watch_id:
                continue
            if message.seq != self._expected:
                await self._recreate()  # a frame was lost: resume after what we have
                continue
            self._expected += 1
            if message.kind == "cancelled":
                if message.code == ErrorCode.COMPACTED.value:
                    self.link.close_stream(self._request_id)
                    self._request_id = 0  # the node removed it: nothing to cancel
                    raise errors.EtcdError(errors.COMPACTED, message.reason)
                await self._recreate()
                continue
            if message.kind == "progress" or message.seq - self._acked >= ACK_EVERY:
                self._acked = message.seq
                self._send(WatchProgressRequest(self.link.next_id(), self._watch_id, message.seq, False))
            events = tuple(e for e in message.events if e.kv.mod_revision > self.revision)
            self.revision = max(self.revision, message.revision)
            if events:
                return message.revision, events
