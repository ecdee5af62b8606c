"""The v3electionpb.Election service: etcd's server-side election
(etcdserver/api/v3election), which is clientv3/concurrency's Election run for
the caller on the caller's lease.

The candidates of election NAME are the keys under `NAME/`; the one created
first is the leader, its value the leader's proposal.

* Campaign(name, lease, value): creates `NAME/<lease hex>` = value with the
  lease (or, if the key exists, keeps its place and proclaims the new value),
  then waits until every older candidate is deleted; answers the LeaderKey
  (name, key, create revision, lease) that Proclaim and Resign take.
* Proclaim(leader, value): rewrites the leader's key if it still is the one
  created at `leader.rev`; else "election: not leader".
* Leader(name): the oldest key, or "election: no leader".
* Observe(name): a stream of the leader's key-value each time the leader, or
  its value, changes (etcd's Election.Observe: watch the prefix while there is
  no leader, then the leader's key until it is deleted).
* Resign(leader): deletes the leader's key if it is still the one created at
  `leader.rev` (no error if it is not).

Lease 0 in Campaign or Proclaim is etcd's "no lease": a new 60 s lease is
granted (never kept alive) and the key bound to it, as etcd's server does.
(etcd's Resign with lease 0 grants one too and never uses it; we do not.)

etcd's server returns the recipes' errors as plain Go errors, which gRPC sends
with code Unknown and the error's text (the election's own, below, and etcd's
errors from the client inside the server alike: recipes.as_recipe_error).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc

from cluster import kv
from cluster.etcdpb import rpc_pb2, v3election_pb2, v3election_pb2_grpc
from cluster.protocol import EVENT_DELETE, EVENT_PUT
from node.etcd import calls, convert, errors
from node.etcd.keywatch import KeyWatch
from node.etcd.recipes import (
    Cleanups, Store, create_revision_is, delete_op, first_created, get_op, put_op, queue_key,
    recipe_errors, wait_deletes,
)

NOT_LEADER = errors.EtcdStatus(grpc.StatusCode.UNKNOWN, "election: not leader")
NO_LEADER = errors.EtcdStatus(grpc.StatusCode.UNKNOWN, "election: no leader")
MISSING_LEADER_KEY = errors.EtcdStatus(grpc.StatusCode.UNKNOWN, '"leader" field must be provided')


class ElectionService(v3election_pb2_grpc.ElectionServicer):
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cleanups = Cleanups()

    @recipe_errors
    async def Campaign(self, request: v3election_pb2.CampaignRequest,
                       context: Any) -> v3election_pb2.CampaignResponse:
        store = await self._store.for_call(context)
        prefix = request.name + b"/"
        lease = await store.session_lease(request.lease)
        key = queue_key(prefix, lease)
        response = await self._cleanups.undoable(store.join(rpc_pb2.TxnRequest(
            compare=[create_revision_is(key, 0)], success=[put_op(key, request.value, lease)],
            failure=[get_op(rpc_pb2.RangeRequest(key=key))])),
            lambda joined: self._resign(store, key, joined.revision) if joined.succeeded else None)
        revision = response.revision
        if not response.succeeded:
            mine = response.responses[0]
            assert isinstance(mine, kv.RangeResponse) and mine.kvs
            revision = mine.kvs[0].create_revision
            if mine.kvs[0].value != request.value:
                try:
                    await self._proclaim(store, key, revision, lease, request.value)
                except errors.EtcdError:
                    await Cleanups.quietly(self._resign(store, key, revision))
                    raise
        try:
            await wait_deletes(store, prefix, revision - 1)
        except asyncio.CancelledError:
            # etcd resigns when the caller's context ends (cancelled, or past its
            # deadline); another failure leaves the candidacy in place.
            self._cleanups.run(self._resign(store, key, revision))
            raise
        leader = v3election_pb2.LeaderKey(name=request.name, key=key, rev=revision, lease=lease)
        return v3election_pb2.CampaignResponse(header=store.header(response.revision), leader=leader)

    @recipe_errors
    async def Proclaim(self, request: v3election_pb2.ProclaimRequest,
                       context: Any) -> v3election_pb2.ProclaimResponse:
        leader = _leader_key(request)
        store = await self._store.for_call(context)
        lease = await store.session_lease(leader.lease)
        revision = await self._proclaim(store, leader.key, leader.rev, lease, request.value)
        return v3election_pb2.ProclaimResponse(header=self._store.header(revision))

    @recipe_errors
    async def Resign(self, request: v3election_pb2.ResignRequest, context: Any) -> v3election_pb2.ResignResponse:
        leader = _leader_key(request)
        revision = await self._resign(await self._store.for_call(context), leader.key, leader.rev)
        return v3election_pb2.ResignResponse(header=self._store.header(revision))

    @recipe_errors
    async def Leader(self, request: v3election_pb2.LeaderRequest, context: Any) -> v3election_pb2.LeaderResponse:
        response = await (await self._store.for_call(context)).range(first_created(request.name + b"/"))
        if not response.kvs:
            raise errors.EtcdError(NO_LEADER)
        return v3election_pb2.LeaderResponse(header=self._store.header(response.revision),
                                             kv=convert.keyvalue(response.kvs[0]))

    @calls.streaming
    async def Observe(self, request: v3election_pb2.LeaderRequest,
                      context: Any) -> AsyncIterator[v3election_pb2.LeaderResponse]:
        try:
            # aclosing: the watch of a stream that ends (a client gone) is cancelled now, not at collection.
            store = await self._store.for_call(context)
            async with contextlib.aclosing(self._observe(store, request.name + b"/")) as leaders:
                async for revision, item in leaders:
                    yield v3election_pb2.LeaderResponse(header=self._store.header(revision),
                                                        kv=convert.keyvalue(item))
        except errors.EtcdError:
            # etcd's observer closes its channel on any failure of its reads or
            # watches (a compacted revision, a timeout) and the server then ends
            # the stream with status OK: so does this one.
            return

    async def _observe(self, store: Store, prefix: bytes) -> AsyncGenerator[tuple[int, kv.KeyValue], None]:
        """etcd's Election.observe: the leader, then each new value of its key
        until it is deleted; then the next leader (waiting for the first put under
        the prefix while there is none)."""
        while True:
            response = await store.range(first_created(prefix))
            if response.kvs:
                revision, leader = response.revision, response.kvs[0]
            else:
                revision, leader = await _first_put(store, prefix, response.revision)
            yield revision, leader
            async with KeyWatch(store.lanes, leader.key, b"", revision + 1, store.token) as watch:
                deleted = False
                while not deleted:
                    batch_revision, events = await watch.next()
                    for event in events:
                        if event.type == EVENT_DELETE:
                            deleted = True
                            break
                        yield batch_revision, event.kv

    @staticmethod
    async def _proclaim(store: Store, key: bytes, revision: int, lease: int, value: bytes) -> int:
        response = await store.txn(rpc_pb2.TxnRequest(compare=[create_revision_is(key, revision)],
                                                      success=[put_op(key, value, lease)]))
        if not response.succeeded:
            raise errors.EtcdError(NOT_LEADER)
        return response.revision

    @staticmethod
    async def _resign(store: Store, key: bytes, revision: int) -> int:
        response = await store.txn(rpc_pb2.TxnRequest(compare=[create_revision_is(key, revision)],
                                                      success=[delete_op(key)]))
        return response.revision


async def _first_put(store: Store, prefix: bytes, revision: int) -> tuple[int, kv.KeyValue]:
    """The first key put under `prefix` from `revision` on, and its revision
    (etcd only takes a put: a delete would make the observer spin)."""
    async with KeyWatch(store.lanes, prefix, kv.prefix_end(prefix), revision, store.token) as watch:
        while True:
            _, events = await watch.next()
            for event in events:
                if event.type == EVENT_PUT:
                    return event.kv.mod_revision, event.kv


def _leader_key(request: v3election_pb2.ProclaimRequest | v3election_pb2.ResignRequest) -> v3election_pb2.LeaderKey:
    if not request.HasField("leader"):
        raise errors.EtcdError(MISSING_LEADER_KEY)
    return request.leader
