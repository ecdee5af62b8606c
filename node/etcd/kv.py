"""The etcdserverpb.KV service: Range, Put, DeleteRange, Txn, Compact.

Each call is checked as etcd's gRPC layer checks it (node/etcd/convert.py),
becomes one KV API command, and goes to this node through the link: reads are
served here (linearizable through ReadIndex, or serializable from local state),
writes are carried to the leader.
"""
from __future__ import annotations

from typing import Any

from cluster import kv
from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from node.etcd import convert, errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink


class KvService(rpc_pb2_grpc.KVServicer):
    def __init__(self, link: NodeLink, headers: Headers, credentials: Credentials | None = None,
                 max_txn_ops: int = convert.MAX_TXN_OPS) -> None:
        self._link = link
        self._headers = headers
        self.credentials = credentials or Credentials(link)
        #: the cluster's [limits] max_txn_ops, checked before a Txn is converted
        self.max_txn_ops = max_txn_ops

    async def run(self, request: kv.Request, serializable: bool = False, token: str = "") -> kv.Response:
        """One command through the node, acting with `token` (node/etcd/credentials.py);
        a KV API failure becomes etcd's error."""
        write = not kv.is_read_only(request)
        data = await self._link.kv(kv.encode_command(request), serializable=serializable and not write,
                                   leader_only=write, token=token)
        result = kv.decode_result(data)
        if isinstance(result, kv.KvError):
            raise errors.from_kv_error(result)
        return result

    async def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        store_range, post = convert.range_request(request)
        result = post(await self.credentials.call(context, lambda token: self.run(store_range, request.serializable,
                                                                                  token)))
        assert isinstance(result, kv.RangeResponse)
        return convert.range_response(result, self._headers.make(result.revision))

    async def Put(self, request: rpc_pb2.PutRequest, context: Any) -> rpc_pb2.PutResponse:
        put = convert.put_request(request)
        result = await self.credentials.call(context, lambda token: self.run(put, token=token))
        assert isinstance(result, kv.PutResponse)
        return convert.put_response(result, self._headers.make(result.revision))

    async def DeleteRange(self, request: rpc_pb2.DeleteRangeRequest, context: Any) -> rpc_pb2.DeleteRangeResponse:
        delete = convert.delete_request(request)
        result = await self.credentials.call(context, lambda token: self.run(delete, token=token))
        assert isinstance(result, kv.DeleteResponse)
        return convert.delete_response(result, self._headers.make(result.revision))

    async def Txn(self, request: rpc_pb2.TxnRequest, context: Any) -> rpc_pb2.TxnResponse:
        txn, post = convert.txn_request(request, self.max_txn_ops)
        result = post(await self.credentials.call(context, lambda token: self.run(txn, token=token)))
        assert isinstance(result, kv.TxnResponse)
        return convert.txn_response(result, self._headers.make(result.revision))

    async def Compact(self, request: rpc_pb2.CompactionRequest, context: Any) -> rpc_pb2.CompactionResponse:
        # `physical` asks etcd to wait until the compaction reached its backend;
        # jangada's compaction is done when the command is applied, so both are the same.
        compact = kv.Compact(request.revision)
        result = await self.credentials.call(context, lambda token: self.run(compact, token=token))
        assert isinstance(result, kv.CompactResponse)
        return rpc_pb2.CompactionResponse(header=self._headers.make(result.revision))
