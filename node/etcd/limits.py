"""The sizes etcd 3.4 accepts from a client, shared by the gRPC server and the
JSON gateway so both refuse the same requests."""
from __future__ import annotations

from dataclasses import dataclass

#: etcd's --max-request-bytes default (1.5 MiB) plus its gRPC overhead allowance
#: (512 KiB): the largest message its server accepts (embed/config.go, v3rpc/grpc.go).
MAX_REQUEST_BYTES = 3 * 512 * 1024
GRPC_OVERHEAD_BYTES = 512 * 1024
MAX_RECEIVE_BYTES = MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class FaceLimits:
    """A face's limits from the cluster's [limits] (etcd's --max-request-bytes and
    --max-txn-ops): gRPC takes messages up to max_request_bytes plus etcd's
    overhead allowance; a Txn over max_txn_ops is refused before conversion."""

    max_request_bytes: int = MAX_REQUEST_BYTES
    max_txn_ops: int = 128

    @property
    def max_receive_bytes(self) -> int:
        return self.max_request_bytes + GRPC_OVERHEAD_BYTES
