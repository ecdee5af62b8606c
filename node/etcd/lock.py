"""The v3lockpb.Lock service: etcd's server-side lock (etcdserver/api/v3lock),
which is clientv3/concurrency's Mutex run for the caller on the caller's lease.

Lock(name, lease): the key `name/<lease hex>` is created with the lease unless
it exists (a txn guarded by create_revision == 0, which also reads the oldest
key under `name/`); if it is not the oldest, the call waits for every older key
to be deleted (node/etcd/recipes.py wait_deletes) and answers the key. The lock
is held as long as the key exists: Unlock(key) deletes it, and so does the
lease's expiry or revocation.

Lease 0 is etcd's "no lease": the session then grants a new 60 s lease, never
kept alive, and the key is bound to it.

A waiter whose call ends (the client cancels, or its deadline passes) deletes
its key, as the Mutex does when its context ends; so does one whose wait fails.
"""
from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from cluster import kv
from cluster.etcdpb import rpc_pb2, v3lock_pb2, v3lock_pb2_grpc
from node.etcd.recipes import (
    Cleanups, Store, create_revision_is, delete_op, first_created, get_op, put_op, queue_key, recipe_errors,
    wait_deletes,
)


class LockService(v3lock_pb2_grpc.LockServicer):
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cleanups = Cleanups()

    @recipe_errors
    async def Lock(self, request: v3lock_pb2.LockRequest, context: Any) -> v3lock_pb2.LockResponse:
        store = await self._store.for_call(context)
        prefix = request.name + b"/"
        lease = await store.session_lease(request.lease)
        key = queue_key(prefix, lease)
        response = await self._cleanups.undoable(store.join(_join(prefix, key, lease)),
                                                 lambda joined: _undo_join(store, key, joined))
        revision = response.revision
        if not response.succeeded:
            mine = response.responses[0]
            assert isinstance(mine, kv.RangeResponse) and mine.kvs
            revision = mine.kvs[0].create_revision
        owner = response.responses[1]
        assert isinstance(owner, kv.RangeResponse)
        if not owner.kvs or owner.kvs[0].create_revision == revision:
            return v3lock_pb2.LockResponse(header=store.header(response.revision), key=key)
        try:
            header_revision = await wait_deletes(store, prefix, revision - 1)
        except BaseException:
            # etcd's Mutex.Lock: a failed wait (or the caller gone) unlocks.
            self._cleanups.run(store.delete(key))
            raise
        return v3lock_pb2.LockResponse(header=store.header(header_revision), key=key)

    @recipe_errors
    async def Unlock(self, request: v3lock_pb2.UnlockRequest, context: Any) -> v3lock_pb2.UnlockResponse:
        result = await (await self._store.for_call(context)).delete(request.key)
        return v3lock_pb2.UnlockResponse(header=self._store.header(result.revision))


def _join(prefix: bytes, key: bytes, lease: int) -> rpc_pb2.TxnRequest:
    """The Mutex's first txn: create our key unless it exists (then read it), and
    read the oldest key under the prefix either way."""
    owner = get_op(first_created(prefix))
    return rpc_pb2.TxnRequest(compare=[create_revision_is(key, 0)], success=[put_op(key, b"", lease), owner],
                              failure=[get_op(rpc_pb2.RangeRequest(key=key)), owner])


def _undo_join(store: Store, key: bytes, joined: kv.TxnResponse) -> Awaitable[object] | None:
    """Delete the key the join created (not one held from an earlier Lock)."""
    if not joined.succeeded:
        return None
    return store.txn(rpc_pb2.TxnRequest(compare=[create_revision_is(key, joined.revision)],
                                        success=[delete_op(key)]))
