"""The etcd v3 face of a node: etcd's gRPC API (and its JSON gateway) served
from inside the node process, so etcdctl, etcd's Go client and Python etcd
clients work against any member unchanged.

Shape (docs/architecture.md, "The etcd face"): one thread runs an asyncio loop
with a grpc.aio server. Each call becomes the same requests the native protocol
carries (cluster/protocol.py, the KV API in cluster/kv) and goes to this node's
actor over an in-process ZeroMQ socket (`NodeLink`); the actor never knows the
difference. What only the leader does (writes, lease keepalives) the link carries
to the leader itself, as etcd's followers do: etcd clients never follow redirects.

    link         NodeLink: the face's way to its node and to the leader
    errors       etcd's gRPC status codes and message strings, and the mapping
                 from jangada's errors to them
    header       ResponseHeader (cluster_id, member_id, revision, raft_term)
    convert      KV API values <-> etcd's protobuf messages
    kv           the etcdserverpb.KV service
    gateway      etcd's JSON gateway (grpc-gateway) over the same service objects;
                 its HTTP/1.1 (httpwire), JSON mapping (jsonpb), paths (routes) and
                 the grpc.aio-like context the services see (gatewaycontext)
    limits       the request sizes etcd accepts, for both servers
    face         EtcdFace: the thread, the loop, the servers
"""
