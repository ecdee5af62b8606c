"""`python -m cluster.bench compare`: jangada, etcd and PySyncObj side by side, in one
run on this machine (issue 7).

Each system gets its own cluster on loopback (fresh data in a temporary directory,
free ports, every process ended by its pid at the end) and the same workloads,
driven by the best load generator it has:

    jangada     cluster.bench's own machinery (load processes, pipelined), in-process
    etcd        etcdload, our Go program over etcd's own clientv3 (cluster/bench/etcdload)
    PySyncObj   a closed loop inside the leader process itself: no client hop at all
    jangada-idleface  jangada's own load again, on members whose etcd faces (gRPC and
                gateway) are on and idle: the native protocol beside an idle face
    jangada-grpc  jangada's cluster through its etcd v3 gRPC face, driven by etcdload
                exactly as etcd is (the row that differs from etcd's only in the server)
    jangada-secure  jangada's own load over CURVE, on [curve] members (issue 15)
    jangada-grpc-tls  jangada-grpc with TLS on the faces, etcdload checking them (-cacert)

Modules, one concept each: `plan` (the workloads), `systems` (is each system here;
installing it on request), `jangada` (also jangada-idleface, jangada-secure),
`jangada_grpc` (also jangada-grpc-tls), `etcd`, `syncobj` (+ `syncobj_node`, the node
process) run one system each and return `Measurement`s; `table` (durability
labels, ratios vs etcd and vs plaintext, markdown and the JSON document), `chart` (matplotlib),
`cli` (main). docs/benchmarks.md, "Comparison", says what each figure means.
"""
