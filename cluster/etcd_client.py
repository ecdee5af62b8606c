"""A small synchronous etcd v3 KV client over gRPC (etcd's own wire API, through
the generated stubs in cluster/etcdpb), with the method shapes of the native
`cluster.client.Client` that the recorded workload uses: put, range, delete,
txn, close.

It exists so `supervisor chaos --check --via grpc` records its workload through
the etcd face, as an etcd client would see the cluster: one channel per
endpoint, a whole-call deadline, and on a failure the next endpoint (as
clientv3's balancer does). No retries of writes: like etcd's clients, a write
whose outcome is unknown is reported as such (ClientTimeout), never re-sent.

Results are the KV API's values (cluster.kv), errors the native client's:
InvalidRequestError and CompactedError are definite refusals (nothing was
applied); everything else is ClientTimeout (outcome unknown).
"""
from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import grpc

from cluster import kv
from cluster.errors import ClientTimeout, CompactedError, InvalidRequestError
from cluster.etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc

#: gRPC codes that say the request was refused before it was applied.
_REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}
_COMPACTED = "etcdserver: mvcc: required revision has been compacted"


def _target(endpoint: str) -> str:
    for scheme in ("http://", "https://", "tcp://"):
        endpoint = endpoint.removeprefix(scheme)
    return endpoint


def _kv(item: kv_pb2.KeyValue) -> kv.KeyValue:
    return kv.KeyValue(item.key, item.value, item.create_revision, item.mod_revision, item.version, item.lease)


def compare_message(compare: kv.Compare) -> rpc_pb2.Compare:
    message = rpc_pb2.Compare(key=compare.key, target=int(compare.target), result=int(compare.op),
                              range_end=compare.range_end)
    field = {kv.CompareTarget.VALUE: "value", kv.CompareTarget.VERSION: "version",
             kv.CompareTarget.CREATE: "create_revision", kv.CompareTarget.MOD: "mod_revision",
             kv.CompareTarget.LEASE: "lease"}[compare.target]
    setattr(message, field, compare.operand)
    return message


def op_message(op: kv.Op) -> rpc_pb2.RequestOp:
    if isinstance(op, kv.Put):
        return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=op.key, value=op.value, lease=op.lease,
                                                                prev_kv=op.prev_kv))
    if isinstance(op, kv.Range):
        return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(
            key=op.key, range_end=op.range_end, revision=op.revision, limit=op.limit, keys_only=op.keys_only,
            count_only=op.count_only, sort_order=int(op.sort_order), sort_target=int(op.sort_target)))
    if isinstance(op, kv.DeleteRange):
        return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(
            key=op.key, range_end=op.range_end, prev_kv=op.prev_kv))
    return rpc_pb2.RequestOp(request_txn=txn_message(op))


def txn_message(txn: kv.Txn) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(compare=[compare_message(c) for c in txn.compares],
                              success=[op_message(o) for o in txn.success],
                              failure=[op_message(o) for o in txn.failure])


class EtcdClient:
    def __init__(self, endpoints: Sequence[str], timeout: float = 5.0) -> None:
        if not endpoints:
            raise ValueError("no endpoints")
        self.endpoints = [_target(e) for e in endpoints]
        self.timeout = timeout
        self.client_id = 0  # the workload resets it after SessionExpired; unused here
        self._channels = [grpc.insecure_channel(e) for e in self.endpoints]
        self._stubs = [rpc_pb2_grpc.KVStub(c) for c in self._channels]
        self._current = 0

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _call(self, method: str, request: object) -> object:
        stub = self._stubs[self._current]
        try:
            return getattr(stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""  # type: ignore[attr-defined]
            if details == _COMPACTED:
                raise CompactedError(details) from None
            if code in _REFUSED:
                raise InvalidRequestError(details) from None
            # Unavailable, deadline, connection trouble: outcome unknown; next time
            # ask another member (clientv3's balancer moves on the same way).
            self._current = (self._current + 1) % len(self._stubs)
            raise ClientTimeout(f"{self.endpoints[self._current - 1]}: {code.name}: {details}") from None

    def put(self, key: str | bytes, value: str | bytes) -> kv.PutResponse:
        reply = self._call("Put", rpc_pb2.PutRequest(key=_b(key), value=_b(value)))
        assert isinstance(reply, rpc_pb2.PutResponse)
        return kv.PutResponse(reply.header.revision)

    def range(self, key: str | bytes, range_end: bytes = b"", serializable: bool = False) -> kv.RangeResponse:
        reply = self._call("Range", rpc_pb2.RangeRequest(key=_b(key), range_end=range_end,
                                                         serializable=serializable))
        assert isinstance(reply, rpc_pb2.RangeResponse)
        return kv.RangeResponse(reply.header.revision, tuple(_kv(x) for x in reply.kvs), reply.count, reply.more)

    def delete(self, key: str | bytes, range_end: bytes = b"") -> kv.DeleteResponse:
        reply = self._call("DeleteRange", rpc_pb2.DeleteRangeRequest(key=_b(key), range_end=range_end))
        assert isinstance(reply, rpc_pb2.DeleteRangeResponse)
        return kv.DeleteResponse(reply.header.revision, reply.deleted)

    def txn(self, compares: Sequence[kv.Compare], success: Sequence[kv.Op] = (),
            failure: Sequence[kv.Op] = ()) -> kv.TxnResponse:
        reply = self._call("Txn", txn_message(kv.Txn(tuple(compares), tuple(success), tuple(failure))))
        assert isinstance(reply, rpc_pb2.TxnResponse)
        # The workload reads `succeeded` and `revision` only.
        return kv.TxnResponse(reply.header.revision, reply.succeeded, ())


def _b(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
