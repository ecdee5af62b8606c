"""etcd's clientv3/concurrency recipes as etcd's server runs them for its Lock and
Election services (etcdserver/api/v3lock, v3election: a client inside the
server), here on the face's event loop.

Every step is a KV call through the KV service's path (node/etcd/kv.py: the
request is checked and converted as an etcd client's would be, reads are
linearizable, writes go to the leader), and every wait is a native watch on
this node (node/etcd/keywatch.py). The queue is the one of
cluster/concurrency.py: a contender's key is `PREFIX<lease id in hex>`, its place
is the key's create revision, and it waits for the deletion of the key just
before it (etcd's waitDeletes), one predecessor at a time. Two differences
from the native recipes, both etcd's: the prefix is the name plus "/" exactly
as given (no stripping), and the session is the caller's lease (or, for lease
0, a new 60 s one), which nobody here keeps alive (etcd's server orphans its
session at once).
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from cluster import kv
from cluster.etcdpb import rpc_pb2
from cluster.protocol import EVENT_DELETE
from node.etcd import convert, errors
from node.etcd.header import Headers
from node.etcd.keywatch import KeyWatch
from node.etcd.kv import KvService
from node.etcd.watch import Lanes

T = TypeVar("T")

#: etcd's clientv3.NoLease, and concurrency's defaultSessionTTL (seconds).
NO_LEASE = 0
SESSION_TTL = 60
#: How many times a join whose answer was lost with a leader is asked (Store.join).
LOST_ANSWER_ATTEMPTS = 3
SORT_CREATE = rpc_pb2.RangeRequest.CREATE
ASCEND, DESCEND = rpc_pb2.RangeRequest.ASCEND, rpc_pb2.RangeRequest.DESCEND


def queue_key(prefix: bytes, lease: int) -> bytes:
    """A contender's key: etcd's fmt.Sprintf("%s%x", prefix, lease)."""
    return prefix + format(lease, "x").encode()


def first_created(prefix: bytes) -> rpc_pb2.RangeRequest:
    """etcd's Get(prefix, WithFirstCreate()): the oldest key under `prefix`."""
    return rpc_pb2.RangeRequest(key=prefix, range_end=kv.prefix_end(prefix), limit=1, sort_target=SORT_CREATE,
                                sort_order=ASCEND)


def last_created_before(prefix: bytes, max_create_revision: int) -> rpc_pb2.RangeRequest:
    """etcd's Get(prefix, WithLastCreate(), WithMaxCreateRev(rev)): the newest key
    under `prefix` created at or before `max_create_revision`."""
    return rpc_pb2.RangeRequest(key=prefix, range_end=kv.prefix_end(prefix), limit=1, sort_target=SORT_CREATE,
                                sort_order=DESCEND, max_create_revision=max_create_revision)


def create_revision_is(key: bytes, revision: int) -> rpc_pb2.Compare:
    return rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.CREATE, result=rpc_pb2.Compare.EQUAL,
                           create_revision=revision)


def put_op(key: bytes, value: bytes, lease: int) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value, lease=lease))


def get_op(request: rpc_pb2.RangeRequest) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=request)


def delete_op(key: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key))


class Store:
    """The KV calls of the recipes, through the KV service's checks and routing;
    responses in the KV API's types (kv.RangeResponse, kv.TxnResponse ...).

    They act for the caller of the Lock or Election RPC (`for_call`): etcd's
    server runs its recipes on an in-process client with the caller's context,
    so its token and permissions apply to every step."""

    def __init__(self, kv_service: KvService, lanes: Lanes, headers: Headers, token: str = "") -> None:
        self._kv = kv_service
        self.lanes = lanes  # the Watch service's: one count of native watches per client identity
        self.headers = headers
        self.token = token

    async def for_call(self, context: Any) -> Store:
        """This store acting with the token of `context`'s call."""
        return Store(self._kv, self.lanes, self.headers, await self._kv.credentials.token(context))

    async def range(self, request: rpc_pb2.RangeRequest) -> kv.RangeResponse:
        store_range, post = convert.range_request(request)
        result = post(await self._kv.run(store_range, token=self.token))
        assert isinstance(result, kv.RangeResponse)
        return result

    async def txn(self, request: rpc_pb2.TxnRequest) -> kv.TxnResponse:
        txn, post = convert.txn_request(request, self._kv.max_txn_ops)
        result = post(await self._kv.run(txn, token=self.token))
        assert isinstance(result, kv.TxnResponse)
        return result

    async def join(self, request: rpc_pb2.TxnRequest) -> kv.TxnResponse:
        """A queue's join txn (create our key unless it exists; read it otherwise),
        asked again while its answer is lost with a leader.

        A write carried to a leader that dies before it answers ends in
        TIMEOUT_LEADER_FAIL although its entry may have been committed (etcd's
        follower would still answer it when it applies the entry; jangada's face
        waits for the leader's reply). A join is safe to run twice: its compare
        sends a repeat down the failure branch, which reads the key the first one
        made. So, unlike a plain write, it is repeated (LOST_ANSWER_ATTEMPTS times
        in all) instead of failing the Lock or Campaign of a caller whose key
        is in the queue. A key found that way is not undone if the caller
        leaves at that moment: its lease ends it, as etcd leaves such keys."""
        for attempt in range(1, LOST_ANSWER_ATTEMPTS + 1):
            try:
                return await self.txn(request)
            except errors.EtcdError as error:
                if error.status != errors.TIMEOUT_LEADER_FAIL or attempt == LOST_ANSWER_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def delete(self, key: bytes) -> kv.DeleteResponse:
        result = await self._kv.run(convert.delete_request(rpc_pb2.DeleteRangeRequest(key=key)), token=self.token)
        assert isinstance(result, kv.DeleteResponse)
        return result

    async def session_lease(self, lease: int) -> int:
        """The lease of etcd's concurrency.NewSession(WithLease(lease)): `lease`
        itself, or for 0 (NoLease) a new lease of the session's default TTL, which
        nobody keeps alive (etcd's server orphans the session)."""
        if lease != NO_LEASE:
            return lease
        result = await self._kv.run(kv.LeaseGrant(SESSION_TTL), token=self.token)
        assert isinstance(result, kv.LeaseGrantResponse)
        return result.id

    def header(self, revision: int) -> rpc_pb2.ResponseHeader:
        return self.headers.make(revision)


def as_recipe_error(error: errors.EtcdError) -> errors.EtcdError:
    """The error a client of etcd's Lock or Election service sees for `error`.
    etcd's server runs the recipes on a clientv3 client, which turns each of
    etcd's errors into a typed Go error without a gRPC status; the server then
    answers it as gRPC does any plain error: code Unknown, the same text."""
    if error.code is grpc.StatusCode.UNKNOWN:
        return error
    return errors.EtcdError(errors.EtcdStatus(grpc.StatusCode.UNKNOWN, error.message), error.detail)


def recipe_errors(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A Lock or Election handler whose EtcdError is answered as etcd's server answers it (`as_recipe_error`)."""

    @functools.wraps(method)
    async def handler(self: object, request: object, context: object) -> T:
        try:
            return await method(self, request, context)
        except errors.EtcdError as error:
            raise as_recipe_error(error) from None

    return handler


async def wait_delete(store: Store, key: bytes, revision: int) -> None:
    """Until `key` is deleted at or after `revision` (etcd's waitDelete)."""
    async with KeyWatch(store.lanes, key, b"", revision, store.token) as watch:
        while True:
            _, events = await watch.next()
            if any(event.type == EVENT_DELETE for event in events):
                return


async def wait_deletes(store: Store, prefix: bytes, max_create_revision: int) -> int:
    """Until no key under `prefix` created at or before `max_create_revision` is
    left, watching the newest such key each time (etcd's waitDeletes). Returns
    the revision of the read that found none."""
    while True:
        response = await store.range(last_created_before(prefix, max_create_revision))
        if not response.kvs:
            return response.revision
        await wait_delete(store, response.kvs[0].key, response.revision)


class Cleanups:
    """Clean-ups that must run to their end although the call needing them is
    ending (a cancelled waiter deletes its key: the cancellation must not cancel
    the delete)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, work: Awaitable[object]) -> None:
        task = asyncio.get_running_loop().create_task(self.quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def undoable(self, work: Awaitable[T], undo: Callable[[T], Awaitable[object] | None]) -> T:
        """`work`'s result. If the call is cancelled meanwhile, `work` still runs to
        its end and `undo(result)` cleans up what it did: a contender that joined
        the queue just as its caller left must not stay in it. (etcd leaves such a
        key to its lease; a narrow window there, a wider one behind a forwarded write.)"""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self.run(self._undo_after(task, undo))
            raise

    @staticmethod
    async def _undo_after(task: asyncio.Future[T], undo: Callable[[T], Awaitable[object] | None]) -> None:
        cleanup = undo(await task)
        if cleanup is not None:
            await cleanup

    @staticmethod
    async def quietly(work: Awaitable[object]) -> None:
        try:
            await work
        except errors.EtcdError:
            pass  # nothing more to do: the lease's expiry removes the key anyway
