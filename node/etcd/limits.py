"""The sizes etcd 3.4 accepts from a client, shared by the gRPC server and the
JSON gateway so both refuse the same requests."""
from __future__ import annotations

#: etcd's --max-request-bytes default (1.5 MiB) plus its gRPC overhead allowance
#: (512 KiB): the largest message its server accepts (embed/config.go, v3rpc/grpc.go).
MAX_REQUEST_BYTES = 3 * 512 * 1024
GRPC_OVERHEAD_BYTES = 512 * 1024
MAX_RECEIVE_BYTES = MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES
