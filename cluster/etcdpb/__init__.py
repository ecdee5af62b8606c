"""etcd's v3 API as Protocol Buffers: our .proto files and the modules generated from them.

The .proto files are ours, written against etcd 3.4's: the proto packages, services,
methods, message and field names, field numbers and types are etcd's exactly, because
they are the wire contract that etcdctl, Go clientv3 and the Python etcd clients speak
(gRPC method paths such as /etcdserverpb.KV/Range, /v3lockpb.Lock/Lock).

    kv.proto          mvccpb: KeyValue, Event                -> kv_pb2
    auth.proto        authpb: UserAddOptions, User, Permission, Role -> auth_pb2
    rpc.proto         etcdserverpb: KV, Watch, Lease, Cluster, Maintenance, Auth
                                                             -> rpc_pb2, rpc_pb2_grpc
    v3lock.proto      v3lockpb: Lock                         -> v3lock_pb2, v3lock_pb2_grpc
    v3election.proto  v3electionpb: Election                 -> v3election_pb2, v3election_pb2_grpc

The generated modules (and their .pyi stubs) are committed beside the .proto files so
that running jangada needs grpcio and protobuf only, not the compiler. After editing a
.proto file regenerate them with

    python -m cluster.etcdpb.regen            (needs the `test` extra: grpcio-tools)

and commit the result; `python -m cluster.etcdpb.regen --check` (run by
tests/etcdpb/test_generated.py) fails while the committed modules are stale.
"""
