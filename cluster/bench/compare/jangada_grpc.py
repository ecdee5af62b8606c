"""jangada-grpc: jangada's cluster reached through its etcd v3 gRPC face, driven by
the very load generator etcd's rows use (etcdload over clientv3, the same binary and
arguments), so this row and etcd's differ only in the server.

The cluster is the one `jangada` starts (the shipped cluster-3 config, fsync always,
no supervisor) with a gRPC URL per member; the `jangada` rows run on a cluster without
the face, and `jangada-idleface`'s with it on but idle. Server CPU is every member process's,
the face included (it is a thread of the node process).

Where the load goes: as on etcd's side, writes and linearizable reads at the leader,
serializable reads spread over every member with each connection pinned to one. The
leader's gRPC endpoint is found with jangada's own status request (etcdload finds
etcd's with clientv3's Status, a Maintenance call the face need not serve) and given
to etcdload alone with `-target all`, which pins every connection to it: the same
connections `-target leader` makes once it has found the leader.

`jangada-grpc-tls` is the same on members whose faces serve TLS (certificates from a
CA made for the run, https:// URLs); etcdload gets `-cacert` and checks them, so the
two rows differ only in TLS (issue 15: what it costs).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster.bench import runner
from cluster.bench.compare import etcd
from cluster.bench.compare.jangada import JangadaCluster, JangadaError, durability, start_cluster, wait_for_faces
from cluster.bench.compare.plan import Measurement, Settings, Workload
from cluster.spec import ClusterSpec

SYSTEM = "jangada-grpc"
TLS_SYSTEM = "jangada-grpc-tls"


def host_port(url: str) -> str:
    """HOST:PORT of a face URL, http:// or https://."""
    return url.split("://", 1)[-1]


def grpc_endpoint(spec: ClusterSpec, client_address: str) -> str:
    """HOST:PORT of the gRPC face of the member whose native address is `client_address`."""
    for member in spec.members:
        if member.client == client_address:
            return host_port(member.grpc)
    raise JangadaError(f"no member has the client address {client_address}")


def leader_grpc_endpoint(spec: ClusterSpec) -> str:
    view = runner.survey(spec.client_addresses())
    if view.leader is None:
        raise JangadaError("no leader answered a status request")
    return grpc_endpoint(spec, view.leader)


def target(w: Workload, spec: ClusterSpec) -> tuple[list[str], str]:
    """The endpoints etcdload gets for `w` and what the table calls that target."""
    if w.serializable:
        return [host_port(m.grpc) for m in spec.members], "all"
    return [leader_grpc_endpoint(spec)], "leader"


def measure(binary: Path, w: Workload, cluster: JangadaCluster, settings: Settings,
            system: str = SYSTEM) -> Measurement:
    endpoints, where = target(w, cluster.spec)
    pids = [p.pid for p in cluster.procs]
    args = etcd.etcdload_args(w, endpoints, settings, target="all")
    if cluster.spec.tls.enabled:
        args += ["-cacert", str(cluster.ca_cert)]
    doc, used = etcd.run_etcdload(binary, args, pids, settings, f"{system} {w.key}")
    return etcd.measurement(w, doc, used, system=system, durability=durability(cluster.spec.storage.fsync),
                            target=where)


def run(workloads: list[Workload], root: Path, settings: Settings,
        started: Callable[[list[int]], None] = lambda pids: None,
        each: Callable[[Measurement], None] = lambda m: None, tls: bool = False) -> list[Measurement]:
    """Build etcdload, then per member count: start the cluster with gRPC faces (with
    `tls`: https://, the rows `jangada-grpc-tls`'s), run its workloads, stop it (by
    pid) before the next."""
    binary = etcd.build_etcdload()
    system = TLS_SYSTEM if tls else SYSTEM
    out: list[Measurement] = []
    for members in dict.fromkeys(w.members for w in workloads):
        home = root / f"{system}-{members}"
        home.mkdir(parents=True, exist_ok=True)
        cluster = start_cluster(lambda where: JangadaCluster(where, members, grpc=True, tls=tls), home, started)
        try:
            wait_for_faces(cluster.spec)
            for w in (w for w in workloads if w.members == members):
                m = measure(binary, w, cluster, settings, system)
                each(m)
                out.append(m)
        finally:
            cluster.close()
    return out
