"""etcd's protobuf messages <-> the KV API (cluster/kv), both ways.

Requests are checked here the way etcd's gRPC layer checks them before they
reach its store (etcdserver/api/v3rpc/key.go: empty keys, ignore_value with a
value ...), so the error a client sees is etcd's. The Range options etcd applies
after reading (min/max mod/create revision filters, then sort, then limit:
etcdserver/apply.go Range) are applied here too, to the response, so a Range
with them is sent to the store with no limit, exactly as etcd reads it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cluster import kv
from cluster.etcdpb import kv_pb2, rpc_pb2
from node.etcd import errors

#: A post-processing step for a response of a request (identity when none is needed).
Post = Callable[[object], object]


def _identity(response: object) -> object:
    return response


def keyvalue(item: kv.KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(key=item.key, value=item.value, create_revision=item.create_revision,
                           mod_revision=item.mod_revision, version=item.version, lease=item.lease)


def keyvalues(items: tuple[kv.KeyValue, ...]) -> list[kv_pb2.KeyValue]:
    return [keyvalue(item) for item in items]


# -- requests ------------------------------------------------------------------------


def _need_key(key: bytes) -> None:
    if not key:
        raise errors.EtcdError(errors.EMPTY_KEY)


def range_request(r: rpc_pb2.RangeRequest) -> tuple[kv.Range, Post]:
    """The store's Range for `r`, and what to do to its response (etcd's
    prune-sort-truncate when filters are set)."""
    _need_key(r.key)
    filters = (r.min_mod_revision, r.max_mod_revision, r.min_create_revision, r.max_create_revision)
    try:
        target, order = kv.SortTarget(r.sort_target), kv.SortOrder(r.sort_order)
    except ValueError:
        raise errors.invalid(f"unknown sort target {r.sort_target} or order {r.sort_order}") from None
    limit = r.limit if r.limit > 0 else 0
    store_range = kv.Range(r.key, r.range_end, revision=r.revision, limit=limit, keys_only=r.keys_only,
                           count_only=r.count_only, sort_target=target, sort_order=order)
    if not any(filters) or r.count_only:
        return store_range, _identity
    # etcd reads everything, prunes, then sorts and truncates (apply.go Range).
    min_mod, max_mod, min_create, max_create = filters

    def post(response: object) -> object:
        assert isinstance(response, kv.RangeResponse)
        kvs = [x for x in response.kvs
               if not (max_mod and x.mod_revision > max_mod) and not (min_mod and x.mod_revision < min_mod)
               and not (max_create and x.create_revision > max_create)
               and not (min_create and x.create_revision < min_create)]
        more = bool(limit) and len(kvs) > limit
        return replace(response, kvs=tuple(kvs[:limit] if more else kvs), more=more)

    return replace(store_range, limit=0), post


def put_request(r: rpc_pb2.PutRequest) -> kv.Put:
    _need_key(r.key)
    if r.ignore_value and r.value:
        raise errors.EtcdError(errors.VALUE_PROVIDED)
    if r.ignore_lease and r.lease:
        raise errors.EtcdError(errors.LEASE_PROVIDED)
    return kv.Put(r.key, r.value, lease=r.lease, prev_kv=r.prev_kv, ignore_value=r.ignore_value,
                  ignore_lease=r.ignore_lease)


def delete_request(r: rpc_pb2.DeleteRangeRequest) -> kv.DeleteRange:
    _need_key(r.key)
    return kv.DeleteRange(r.key, r.range_end, prev_kv=r.prev_kv)


def compare(c: rpc_pb2.Compare) -> kv.Compare:
    _need_key(c.key)
    try:
        target, op = kv.CompareTarget(c.target), kv.CompareOp(c.result)
    except ValueError:
        raise errors.invalid(f"unknown compare target {c.target} or result {c.result}") from None
    which = c.WhichOneof("target_union")
    operand: bytes | int
    if target is kv.CompareTarget.VALUE:
        operand = c.value
    elif target is kv.CompareTarget.VERSION:
        operand = c.version
    elif target is kv.CompareTarget.CREATE:
        operand = c.create_revision
    elif target is kv.CompareTarget.MOD:
        operand = c.mod_revision
    else:
        operand = c.lease
    del which  # etcd reads the field of the target whatever the oneof holds
    return kv.Compare(c.key, target, op, operand, range_end=c.range_end)


#: etcd's --max-txn-ops default, which jangada's store enforces (cluster/kv/limits.py);
#: a face takes the cluster's ([limits] max_txn_ops, node/etcd/limits.py's FaceLimits).
MAX_TXN_OPS = kv.Limits().max_txn_ops


def txn_request(r: rpc_pb2.TxnRequest, max_ops: int = MAX_TXN_OPS) -> tuple[kv.Txn, Post]:
    # etcd's checkTxnRequest, first thing: a Txn of 100,000 compares is refused
    # before it is converted and carried to the store (which counts exactly).
    if max(len(r.compare), len(r.success), len(r.failure)) > max_ops:
        raise errors.EtcdError(errors.TOO_MANY_OPS)
    compares = tuple(compare(c) for c in r.compare)
    success, success_posts = _ops(r.success, max_ops)
    failure, failure_posts = _ops(r.failure, max_ops)
    txn = kv.Txn(compares, success, failure)
    if all(p is _identity for p in success_posts + failure_posts):
        return txn, _identity

    def post(response: object) -> object:
        assert isinstance(response, kv.TxnResponse)
        posts = success_posts if response.succeeded else failure_posts
        return replace(response, responses=tuple(p(x) for p, x in zip(posts, response.responses)))  # type: ignore[misc]

    return txn, post


def _ops(ops: object, max_ops: int = MAX_TXN_OPS) -> tuple[tuple[kv.Op, ...], list[Post]]:
    out: list[kv.Op] = []
    posts: list[Post] = []
    for op in ops:  # type: ignore[attr-defined]
        which = op.WhichOneof("request")
        if which == "request_range":
            request, post = range_request(op.request_range)
        elif which == "request_put":
            request, post = put_request(op.request_put), _identity
        elif which == "request_delete_range":
            request, post = delete_request(op.request_delete_range), _identity
        elif which == "request_txn":
            request, post = txn_request(op.request_txn, max_ops)
        else:  # etcd's checkRequestOp names an empty op this way
            raise errors.EtcdError(errors.KEY_NOT_FOUND)
        out.append(request)
        posts.append(post)
    return tuple(out), posts


# -- responses -----------------------------------------------------------------------


def range_response(r: kv.RangeResponse, header: rpc_pb2.ResponseHeader) -> rpc_pb2.RangeResponse:
    return rpc_pb2.RangeResponse(header=header, kvs=keyvalues(r.kvs), more=r.more, count=r.count)


def put_response(r: kv.PutResponse, header: rpc_pb2.ResponseHeader) -> rpc_pb2.PutResponse:
    out = rpc_pb2.PutResponse(header=header)
    if r.prev_kv is not None:
        out.prev_kv.CopyFrom(keyvalue(r.prev_kv))
    return out


def delete_response(r: kv.DeleteResponse, header: rpc_pb2.ResponseHeader) -> rpc_pb2.DeleteRangeResponse:
    return rpc_pb2.DeleteRangeResponse(header=header, deleted=r.deleted, prev_kvs=keyvalues(r.prev_kvs))


def txn_response(r: kv.TxnResponse, header: rpc_pb2.ResponseHeader) -> rpc_pb2.TxnResponse:
    return rpc_pb2.TxnResponse(header=header, succeeded=r.succeeded,
                               responses=[_op_response(x, header) for x in r.responses])


def _op_response(r: kv.OpResult, header: rpc_pb2.ResponseHeader) -> rpc_pb2.ResponseOp:
    """A response inside a txn: etcd gives each its own header holding only the
    revision its op observed (a nested txn's header stays empty)."""
    if isinstance(r, kv.TxnResponse):
        return rpc_pb2.ResponseOp(response_txn=txn_response(r, rpc_pb2.ResponseHeader()))
    inner = rpc_pb2.ResponseHeader(revision=r.revision)
    if isinstance(r, kv.RangeResponse):
        return rpc_pb2.ResponseOp(response_range=range_response(r, inner))
    if isinstance(r, kv.PutResponse):
        return rpc_pb2.ResponseOp(response_put=put_response(r, inner))
    return rpc_pb2.ResponseOp(response_delete_range=delete_response(r, inner))
