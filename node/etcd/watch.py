"""The etcdserverpb.Watch service: etcd's watch stream on the node's native watches.

One gRPC stream multiplexes many etcd watches (etcd's serverWatchStream,
etcdserver/api/v3rpc/watch.go). Each etcd watch is one native watch
(docs/watch.md) on this member's own state, reached through the link's local
socket: etcd serves watches from the member the client talks to, and so do we.

What the face adds to a native watch, as etcd 3.4 does it:
- watch ids chosen per stream (0 = the next free id, counting from 0), "duplicate
  watch ID" and "watcher range is empty" refusals as created+canceled responses
  with watch_id -1; filters (NOPUT, NODELETE) applied here, a response left
  without events is not sent; fragments (`sendFragments`) at etcd's request limit.
- the response header's revision: a watch that starts in the past gets its
  history in batches headed by the store's revision at the time (etcd's
  unsynced watchers, `syncWatchers`), a caught-up watch one response per
  revision headed by that revision (`notify`); compacted: created, then
  compact_revision + canceled with header revision 0 (etcd's `chooseAll` sends
  a WatchResponse with no revision).
- WatchProgressRequest: one response, watch_id -1, headed by the member's
  current revision (etcd 3.4 answers at once from its store revision).
- progress_notify: the native progress frames are forwarded as empty
  responses. Their interval is PROGRESS_MS (etcd: 10 minutes; the native
  protocol allows at most 60 s, so 60 s; `JANGADA_ETCD_WATCH_PROGRESS_MS` sets it,
  as etcd's --experimental-watch-progress-notify-interval does). Native watches
  without progress_notify get the same frames, acknowledged but not forwarded.

Flow control: the face acknowledges a native frame (`watch-progress ack=seq`)
only after the gRPC stream took its responses (`context.write` returned), so a
client that does not read stalls its watches at the node's window (64 frames)
and the node's slow-watcher rule ends them; the face's queue per stream is
bounded by those windows. While a frame waits for the gRPC writer the face
re-sends its last acknowledgement every KEEPALIVE_SECONDS, so the node sees a
slow reader (window full: cancelled "slow watcher") rather than a vanished one
(expiry, with no word to anyone).

A native frame lost (a gap in `seq`) or a native watch the node no longer
knows ("no such watch": expired) is resumed from the next revision with a new
native watch, invisibly to the etcd client, as the native client does.

The node limits watches per client identity (WatchLimits.max_per_client); the
face is one process for all its streams, so it spreads native watches over
`Lanes`: the link's own DEALER, then sibling DEALERs (each its own identity)
opened when the others are full and closed when empty. The node's total limit
still applies: a create it refuses is answered created+canceled with etcd's
"etcdserver: too many requests" as the cancel reason.

Streams opened with clientv3.WithRequireLeader (metadata hasleader=true; etcdctl
watch uses it) are refused, and later ended, with "etcdserver: no leader" when
this member knows no leader (`LeaderMonitor`, etcd's stream interceptor and
monitorLeader): otherwise served from local state, a partitioned member's watch
would stall without telling the client to move.

A stream that ends (client cancel, disconnect) cancels its native watches. The
face stops with its node (etcd's server stop ends every stream: the client sees
UNAVAILABLE and reconnects elsewhere); a native "shutting down" cancellation
that arrives first ends the stream the same way.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster import kv
from cluster.etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc
from cluster.protocol import (
    EVENT_DELETE, EVENT_PUT, MAX_PROGRESS_MS, MIN_PROGRESS_MS, ErrorCode, ErrorReply, Reply, WatchCancelRequest,
    WatchCreateRequest, WatchEvent, WatchFrame, WatchProgressRequest,
)
from node.etcd import calls, convert, errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink
from node.watches import WatchLimits

#: The size over which a watch that asked for `fragment` gets its responses in
#: pieces: etcd's --max-request-bytes default (1.5 MiB) plus its gRPC overhead
#: allowance (512 KiB), as its watch server uses (node/etcd/face.py's figures).
FRAGMENT_BYTES = 3 * 512 * 1024 + 512 * 1024
#: The progress interval of the native watches (see the module docstring).
PROGRESS_ENV = "JANGADA_ETCD_WATCH_PROGRESS_MS"
DEFAULT_PROGRESS_MS = MAX_PROGRESS_MS
#: Acknowledge at least every this many frames (and whenever the watch's queue is empty).
ACK_EVERY = 16
#: How often a watch whose frames wait for the gRPC writer tells the node it is alive.
KEEPALIVE_SECONDS = 1.0
#: Responses queued for the writer beyond which the request reader waits (etcd's ctrlStream holds 16).
CONTROL_BACKLOG = 16
#: etcd's clientv3.InvalidWatchID: a refused create, a progress response for the stream.
INVALID_WATCH_ID = -1
#: The reasons the node gives (node/watches.py) that the face acts on.
NODE_SHUTTING_DOWN = "shutting down"
NO_SUCH_WATCH = "no such watch"

#: clientv3.WithRequireLeader's metadata (rpctypes.MetadataRequireLeaderKey, MetadataHasLeader).
REQUIRE_LEADER_KEY, HAS_LEADER = "hasleader", "true"
#: etcd's monitorLeader: a check per election timeout (etcd's default 1 s), streams
#: ended after this many checks in a row found no leader (maxNoLeaderCnt).
ELECTION_SECONDS = 1.0
NO_LEADER_CHECKS = 3

DUPLICATE_ID_REASON = "mvcc: duplicate watch ID provided on the WatchStream"
EMPTY_RANGE_REASON = "mvcc: watcher range is empty"

_native_ids = itertools.count(1)


def progress_ms_from(environ: Mapping[str, str]) -> int:
    """The native progress interval: PROGRESS_ENV if set (clamped to the protocol's bounds)."""
    text = environ.get(PROGRESS_ENV, "")
    if not text:
        return DEFAULT_PROGRESS_MS
    return max(MIN_PROGRESS_MS, min(MAX_PROGRESS_MS, int(text)))


class Lanes:
    """DEALERs to this node, each its own client identity with at most
    `per_lane` native watches: the first is the face's link itself."""

    def __init__(self, link: NodeLink, per_lane: int = WatchLimits().max_per_client) -> None:
        self._main = link
        self._per_lane = per_lane
        self._count: dict[NodeLink, int] = {link: 0}
        self._closing: set[asyncio.Task[None]] = set()

    async def acquire(self) -> NodeLink:
        for lane, count in self._count.items():
            if count < self._per_lane:
                self._count[lane] = count + 1
                return lane
        lane = self._main.sibling()
        self._count[lane] = 1
        await lane.start()
        return lane

    def release(self, lane: NodeLink) -> None:
        left = self._count.get(lane, 0) - 1
        if left > 0 or lane is self._main:
            self._count[lane] = max(left, 0)
            return
        self._count.pop(lane, None)
        task = asyncio.get_running_loop().create_task(lane.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def __len__(self) -> int:
        return len(self._count)


@dataclass(eq=False, slots=True)
class _Native:
    """One native watch serving an etcd watch (a resumed etcd watch gets a new one)."""
    watch: _Watch
    lane: NodeLink
    request_id: int
    wid: int
    expected: int = 0  # the next frame's seq
    acked: int = -1  # the last seq acknowledged to the node
    queued: int = 0  # its frames waiting for the gRPC writer
    live: bool = True


@dataclass(eq=False, slots=True)
class _Watch:
    """One etcd watch of a stream."""
    watch_id: int
    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    progress_notify: bool
    fragment: bool
    dropped: frozenset[int]  # event types filtered out
    next_rev: int = 0  # every event before it was queued for the client (0: unknown yet)
    native: _Native | None = None
    created_sent: bool = False
    synced: bool = False
    cancelling: bool = False
    ended: bool = False
    preamble: list[WatchEvent] = field(default_factory=list)  # the compact revision's events (see below)
    compact_replayed: bool = False
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # created (or refused) was queued


@dataclass(slots=True)
class _Item:
    """What the writer sends: responses, then the acknowledgement of a native frame."""
    responses: list[rpc_pb2.WatchResponse]
    fragment: bool = False
    native: _Native | None = None
    seq: int = -1
    end: errors.EtcdError | None = None  # end the stream with this status instead


@dataclass(slots=True)
class _Tasks:
    running: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return task


def event_pb(event: WatchEvent) -> kv_pb2.Event:
    message = kv_pb2.Event(type=kv_pb2.Event.EventType.ValueType(event.type), kv=convert.keyvalue(event.kv))
    if event.prev_kv is not None:
        message.prev_kv.CopyFrom(convert.keyvalue(event.prev_kv))
    return message


def _varint_size(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def fragments(response: rpc_pb2.WatchResponse, max_bytes: int) -> list[rpc_pb2.WatchResponse]:
    """etcd's sendFragments: a response of `max_bytes` or more with two events or
    more goes in pieces marked `fragment` (the last one not), each under
    `max_bytes` unless one event alone is larger."""
    if len(response.events) < 2 or response.ByteSize() < max_bytes:
        return [response]
    base = rpc_pb2.WatchResponse()
    base.CopyFrom(response)
    del base.events[:]
    base.fragment = True
    base_size = base.ByteSize()
    pieces: list[rpc_pb2.WatchResponse] = []
    events = list(response.events)
    index = 0
    while index < len(events):
        piece = rpc_pb2.WatchResponse()
        piece.CopyFrom(base)
        size = base_size
        while index < len(events):
            event_size = events[index].ByteSize()
            size += 1 + _varint_size(event_size) + event_size  # field 11: a one-byte tag
            if len(piece.events) >= 1 and size >= max_bytes:
                break
            piece.events.append(events[index])
            index += 1
        pieces.append(piece)
    pieces[-1].fragment = False
    return pieces


class WatchStream:
    """One gRPC Watch stream: its etcd watches, their native watches, the writer's queue."""

    def __init__(self, service: WatchService, context: Any, token: str = "") -> None:
        """`token`: the stream's (its metadata at the start), every watch's on it."""
        self._service = service
        self._token = token
        self._headers = service.headers
        self._lanes = service.lanes
        self._context = context
        self._watches: dict[int, _Watch] = {}  # by etcd watch id
        self._natives: set[_Native] = set()
        self._next_id = 0
        self._out: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = asyncio.Event()
        self._tasks = _Tasks()
        self._closed = False

    # --- the stream ----------------------------------------------------------------

    async def run(self, requests: AsyncIterator[rpc_pb2.WatchRequest]) -> None:
        reader = self._tasks.spawn(self._read(requests))
        writer = asyncio.current_task()
        assert writer is not None
        # etcd: a receive error ends the stream (the client is gone); the end of
        # the client's requests (half-close) does not.
        reader.add_done_callback(lambda task: writer.cancel() if not task.cancelled() and task.exception() else None)
        keepalive = self._tasks.spawn(self._keepalive())
        try:
            await self._write()
        finally:
            self._closed = True
            reader.cancel()
            keepalive.cancel()
            self._service.tasks.spawn(self._cancel_all())

    async def _write(self) -> None:
        while True:
            item = await self._out.get()
            self._room.set()
            if item.end is not None:
                await calls.abort(self._context, item.end)
                return
            for response in item.responses:
                for piece in fragments(response, FRAGMENT_BYTES) if item.fragment else (response,):
                    await self._context.write(piece)
            if item.native is not None:
                await self._consumed(item.native, item.seq)

    def end(self, error: errors.EtcdError) -> None:
        """End the stream with `error`'s status (after what is already queued)."""
        self._push(_Item([], end=error))

    def _push(self, item: _Item) -> None:
        if item.native is not None:
            item.native.queued += 1
        self._out.put_nowait(item)

    async def _consumed(self, native: _Native, seq: int) -> None:
        """The gRPC stream took a native frame's responses: acknowledge it."""
        native.queued -= 1
        if native.live and (native.queued == 0 or seq - native.acked >= ACK_EVERY):
            native.acked = seq
            await self._send(native, WatchProgressRequest(native.lane.next_id(), native.wid, seq))

    async def _keepalive(self) -> None:
        """Frames waiting for a slow gRPC reader: the node must see the watch as slow
        (its window stays full), not gone (no word for its expiry time)."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            for native in list(self._natives):
                if native.live and native.queued > 0:
                    await self._send(native, WatchProgressRequest(native.lane.next_id(), native.wid,
                                                                  max(native.acked, 0)))

    async def _send(self, native: _Native, request: Any) -> None:
        try:
            await native.lane.send_local(request)
        except Exception:  # noqa: BLE001 - the link is closing: the stream ends with the face
            native.live = False

    # --- requests --------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[rpc_pb2.WatchRequest]) -> None:
        async for request in requests:
            while self._out.qsize() > CONTROL_BACKLOG:
                self._room.clear()
                await self._room.wait()
            which = request.WhichOneof("request_union")
            if which == "create_request":
                await self._create(request.create_request)
            elif which == "cancel_request":
                await self._cancel(request.cancel_request.watch_id)
            elif which == "progress_request":
                await self._progress()
        # etcd: the client closing its side ends nothing; the stream lives until the call ends.

    async def _create(self, create: rpc_pb2.WatchCreateRequest) -> None:
        key = create.key or b"\0"
        range_end = create.range_end
        if range_end not in (b"", b"\0") and key >= range_end:
            self._refuse(EMPTY_RANGE_REASON)
            return
        watch_id = create.watch_id
        if watch_id == 0:
            while self._next_id in self._watches:
                self._next_id += 1
            watch_id = self._next_id
            self._next_id += 1
        elif watch_id in self._watches:
            self._refuse(DUPLICATE_ID_REASON)
            return
        filters = {rpc_pb2.WatchCreateRequest.NOPUT: EVENT_PUT, rpc_pb2.WatchCreateRequest.NODELETE: EVENT_DELETE}
        watch = _Watch(watch_id, key, range_end, create.start_revision, create.prev_kv, create.progress_notify,
                       create.fragment, frozenset(filters[f] for f in create.filters if f in filters))
        # etcd: 0 = from now; a revision below 1 replays everything retained.
        watch.next_rev = max(create.start_revision, 1) if create.start_revision != 0 else 0
        self._watches[watch_id] = watch
        await self._service.link.fresh_term()  # the created response's header carries the term
        await self._start_native(watch)
        # etcd answers creates in the order they came (its recvLoop queues each
        # created response before reading on): wait for this one's answer.
        try:
            await asyncio.wait_for(watch.answered.wait(), self._service.link.request_timeout + 1.0)
        except asyncio.TimeoutError:
            pass

    def _refuse(self, reason: str) -> None:
        self._push(_Item([rpc_pb2.WatchResponse(header=self._headers.make(self._service.revision),
                                                watch_id=INVALID_WATCH_ID, created=True, canceled=True,
                                                cancel_reason=reason)]))

    async def _start_native(self, watch: _Watch) -> None:
        lane = await self._lanes.acquire()
        if self._closed or watch.ended:
            self._lanes.release(lane)
            return
        native = _Native(watch, lane, 0, next(_native_ids))
        native.request_id = lane.open_stream(lambda message: self._on_message(native, message))
        watch.native = native
        self._natives.add(native)
        await self._send(native, WatchCreateRequest(native.request_id, native.wid, watch.key, watch.range_end,
                                                    watch.next_rev, watch.prev_kv, self._service.progress_ms,
                                                    token=self._token))

    def _end_native(self, native: _Native, tell_node: bool) -> None:
        if native.watch.native is native:
            native.watch.native = None
        if native not in self._natives:
            return
        self._natives.discard(native)
        native.lane.close_stream(native.request_id)
        if tell_node and native.live:
            self._tasks.spawn(self._send(native, WatchCancelRequest(native.lane.next_id(), native.wid)))
        native.live = False
        self._lanes.release(native.lane)

    async def _cancel(self, watch_id: int) -> None:
        watch = self._watches.pop(watch_id, None)
        if watch is None:
            return  # etcd answers nothing for an unknown id
        watch.cancelling = True
        native = watch.native
        if native is not None and native.live:
            await self._send(native, WatchCancelRequest(native.lane.next_id(), native.wid))
        else:  # between two native watches (resuming): nothing to ask the node
            self._finish(watch)
            self._push(_Item([self._canceled(watch, self._service.revision)]))

    async def _progress(self) -> None:
        try:
            revision = int((await self._service.link.status()).get("revision", 0))
            self._service.revision = max(self._service.revision, revision)
        except errors.EtcdError:
            revision = self._service.revision
        self._push(_Item([rpc_pb2.WatchResponse(header=self._headers.make(revision),
                                                watch_id=INVALID_WATCH_ID)]))

    async def _cancel_all(self) -> None:
        for watch in list(self._watches.values()):
            watch.ended = True
        for native in list(self._natives):
            self._end_native(native, tell_node=True)
        self._watches.clear()

    # --- native frames ------------------------------------------------------------------

    def _on_message(self, native: _Native, message: WatchFrame | Reply) -> None:
        watch = native.watch
        if self._closed or native.watch.native is not native or watch.ended:
            return
        if isinstance(message, ErrorReply):
            self._end_native(native, tell_node=False)
            reason = errors.from_reply(message).message
            if message.code is ErrorCode.TOO_MANY_REQUESTS:
                reason = errors.TOO_MANY_REQUESTS.message
            self._finish(watch)
            if watch.created_sent:
                self._push(_Item([self._canceled(watch, self._service.revision, reason)]))
            else:
                self._refuse(reason)
            return
        if not isinstance(message, WatchFrame):
            return
        frame = message
        self._service.revision = max(self._service.revision, frame.head)
        if frame.kind == "cancelled":
            self._on_cancelled(native, frame)
            return
        if frame.seq != native.expected:  # a frame was lost: resume where the client is
            self._resume(native)
            return
        native.expected += 1
        responses: list[rpc_pb2.WatchResponse] = []
        if frame.kind == "created":
            watch.next_rev = frame.revision + 1
            if not watch.created_sent:
                watch.created_sent = True
                watch.synced = watch.start_revision == 0 or watch.start_revision > frame.head
                watch.answered.set()
                responses.append(rpc_pb2.WatchResponse(header=self._headers.make(frame.head),
                                                       watch_id=watch.watch_id, created=True))
                if watch.preamble and frame.revision >= frame.head:  # nothing after it to batch it with
                    responses.append(self._batch(watch, watch.preamble, frame.head))
                    watch.preamble = []
                elif watch.preamble:  # batched with the first history events, or sent once caught up
                    self._tasks.spawn(self._send(native, WatchProgressRequest(native.lane.next_id(), native.wid,
                                                                              0, notify=True)))
        elif frame.kind == "events":
            watch.next_rev = frame.revision + 1
            responses = self._event_responses(watch, frame)
        elif frame.kind == "progress":
            watch.next_rev = max(watch.next_rev, frame.revision + 1)
            watch.synced = True
            if watch.preamble:
                responses.append(self._batch(watch, watch.preamble, frame.head))
                watch.preamble = []
            elif watch.progress_notify:
                responses.append(rpc_pb2.WatchResponse(header=self._headers.make(frame.head),
                                                       watch_id=watch.watch_id))
        self._push(_Item(responses, watch.fragment, native, frame.seq))

    def _event_responses(self, watch: _Watch, frame: WatchFrame) -> list[rpc_pb2.WatchResponse]:
        events = [e for e in frame.events if e.type not in watch.dropped] if watch.dropped else frame.events
        if watch.preamble:
            events = [*watch.preamble, *events]
            watch.preamble = []
        if not watch.synced:
            # etcd's unsynced watcher: a batch of history headed by the store's revision
            watch.synced = frame.revision >= frame.head
            return [self._batch(watch, events, frame.head)] if events else []
        responses: list[rpc_pb2.WatchResponse] = []
        for revision, group in itertools.groupby(events, key=lambda e: e.kv.mod_revision):
            responses.append(rpc_pb2.WatchResponse(header=self._headers.make(revision), watch_id=watch.watch_id,
                                                   events=[event_pb(e) for e in group]))
        return responses

    def _batch(self, watch: _Watch, events: Any, revision: int) -> rpc_pb2.WatchResponse:
        return rpc_pb2.WatchResponse(header=self._headers.make(revision), watch_id=watch.watch_id,
                                     events=[event_pb(e) for e in events])

    def _on_cancelled(self, native: _Native, frame: WatchFrame) -> None:
        watch = native.watch
        if frame.code == ErrorCode.COMPACTED.value and not watch.created_sent and not watch.compact_replayed \
                and watch.next_rev == frame.compact_revision:
            self._end_native(native, tell_node=False)
            watch.compact_replayed = True
            self._tasks.spawn(self._from_compact_revision(watch, frame))
        elif frame.code == ErrorCode.COMPACTED.value:
            self._end_native(native, tell_node=False)
            self._finish(watch)
            responses = []
            if not watch.created_sent:
                watch.created_sent = True
                responses.append(rpc_pb2.WatchResponse(header=self._headers.make(frame.head),
                                                       watch_id=watch.watch_id, created=True))
            responses.append(rpc_pb2.WatchResponse(header=self._headers.make(0), watch_id=watch.watch_id,
                                                   compact_revision=frame.compact_revision, canceled=True))
            self._push(_Item(responses))
        elif watch.cancelling:
            self._end_native(native, tell_node=False)
            self._push(_Item([self._canceled(watch, frame.head)]))
        elif NODE_SHUTTING_DOWN in frame.reason:
            self._end_native(native, tell_node=False)
            self.end(errors.EtcdError(errors.STOPPED, frame.reason))
        elif frame.reason.startswith(NO_SUCH_WATCH) or frame.seq != native.expected:
            self._resume(native)  # expired, or the reply to an ack for a watch the node lost
        else:  # a slow watcher, or another cancellation by the node
            self._end_native(native, tell_node=False)
            self._finish(watch)
            self._push(_Item([self._canceled(watch, frame.head, frame.reason)]))

    async def _from_compact_revision(self, watch: _Watch, refusal: WatchFrame) -> None:
        """etcd accepts a watch from the compact revision itself (only revisions
        below it are gone: `chooseAll`); the node wants compact + 1, because
        compaction dropped deletes made at exactly that revision. etcd's
        compaction drops those tombstones too, so what etcd sends from there is
        the compact revision's puts that survived: the keys whose version at that
        revision was written at it. The face reads them and starts the native
        watch at the next revision."""
        compact = refusal.compact_revision
        try:
            data = await self._service.link.kv(
                kv.encode_command(kv.Range(watch.key, watch.range_end, revision=compact)), serializable=True,
                token=self._token)
            result = kv.decode_result(data)
        except errors.EtcdError:
            result = None
        if not isinstance(result, kv.RangeResponse) or watch.ended or self._closed:
            if not watch.ended:  # compacted again meanwhile: what the node said stands
                self._finish(watch)
                watch.created_sent = True
                self._push(_Item([rpc_pb2.WatchResponse(header=self._headers.make(refusal.head),
                                                        watch_id=watch.watch_id, created=True),
                                  rpc_pb2.WatchResponse(header=self._headers.make(0), watch_id=watch.watch_id,
                                                        compact_revision=compact, canceled=True)]))
            return
        watch.preamble = [WatchEvent(EVENT_PUT, item) for item in result.kvs
                          if item.mod_revision == compact and EVENT_PUT not in watch.dropped]
        watch.next_rev = compact + 1
        await self._start_native(watch)

    def _resume(self, native: _Native) -> None:
        watch = native.watch
        self._end_native(native, tell_node=True)
        if watch.next_rev == 0:
            watch.next_rev = max(watch.start_revision, 1)
        self._tasks.spawn(self._start_native(watch))

    def _finish(self, watch: _Watch) -> None:
        watch.ended = True
        watch.answered.set()
        if self._watches.get(watch.watch_id) is watch:
            del self._watches[watch.watch_id]

    def _canceled(self, watch: _Watch, revision: int, reason: str = "") -> rpc_pb2.WatchResponse:
        return rpc_pb2.WatchResponse(header=self._headers.make(revision), watch_id=watch.watch_id,
                                     canceled=True, cancel_reason=reason)


class LeaderMonitor:
    """etcd's require-leader streams (clientv3.WithRequireLeader, which etcdctl
    watch uses: metadata hasleader=true): refused with "etcdserver: no leader" when
    the member knows no leader, and ended so once it has known none for
    NO_LEADER_CHECKS election timeouts (etcd's monitorLeader), so the client moves
    to a member that has one. One check per interval for all such streams."""

    def __init__(self, link: NodeLink, tasks: _Tasks) -> None:
        self._link = link
        self._tasks = tasks
        self._streams: set[WatchStream] = set()
        self._running: asyncio.Task[Any] | None = None

    async def has_leader(self) -> bool:
        try:
            await self._link.status()
        except errors.EtcdError:
            return False
        return self._link.leader_id != 0

    def add(self, stream: WatchStream) -> None:
        self._streams.add(stream)
        if self._running is None or self._running.done():
            self._running = self._tasks.spawn(self._monitor())

    def discard(self, stream: WatchStream) -> None:
        self._streams.discard(stream)

    async def _monitor(self) -> None:
        missed = 0
        while self._streams:
            await asyncio.sleep(ELECTION_SECONDS)
            missed = 0 if await self.has_leader() else missed + 1
            if missed >= NO_LEADER_CHECKS:
                for stream in list(self._streams):
                    stream.end(errors.EtcdError(errors.NO_LEADER))
                self._streams.clear()


class WatchService(rpc_pb2_grpc.WatchServicer):
    def __init__(self, link: NodeLink, headers: Headers, progress_ms: int | None = None,
                 credentials: Credentials | None = None) -> None:
        self.link = link
        self.credentials = credentials or Credentials(link)
        self.headers = headers
        self.lanes = Lanes(link)
        self.progress_ms = progress_ms_from(os.environ) if progress_ms is None else progress_ms
        self.revision = 0  # the latest store revision the face has seen (for headers without a fresher one)
        self.tasks = _Tasks()
        self.leader = LeaderMonitor(link, self.tasks)

    @calls.streaming
    async def Watch(self, request_iterator: AsyncIterator[rpc_pb2.WatchRequest], context: Any) -> None:
        metadata = context.invocation_metadata() or ()
        require_leader = any(key == REQUIRE_LEADER_KEY and value == HAS_LEADER for key, value in metadata)
        if require_leader and not await self.leader.has_leader():
            await calls.abort(context, errors.EtcdError(errors.NO_LEADER))
            return
        stream = WatchStream(self, context, await self.credentials.token(context))
        if require_leader:
            self.leader.add(stream)
        try:
            await stream.run(request_iterator)
        finally:
            self.leader.discard(stream)
