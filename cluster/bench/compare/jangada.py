"""jangada's side: `python -m node` processes on free loopback ports (config from the
shipped cluster-3 / cluster-5, so fsync always), driven by cluster.bench's own runner,
called as a library. No supervisor: nothing restarts a node behind the figures, and
every process is ours, ended by its pid.

The load generator is `--pipeline` (one DEALER socket per load process, N requests
in flight on it, no threads): on this machine it costs about half the CPU per op of
the thread-per-client generator and gives the higher figures (docs/benchmarks.md,
round 3). Each measurement reports the generator's CPU, so a saturated one shows.

Two systems run this load: `jangada` on members with no etcd face at all, and
`jangada-idleface` on members whose gRPC and JSON gateway faces are on but get no
request, so one compare run shows whether a face that is merely there slows the
native protocol (issue 14: it must not). A third, `jangada-secure`, runs it on
members with `[curve] enabled` (key files made here with cluster/curve_keys.py), the
load processes CURVE clients of them: the cost of encryption on the native port
(issue 15).

`JangadaCluster(tls=True)` gives the members' etcd faces certificates from a CA
made here (cluster/certificates.py) and https:// URLs: `jangada-grpc-tls`'s cluster.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cluster.bench import report, runner
from cluster.bench.compare.cpu import ServerCpu
from cluster.bench.compare.plan import Measurement, Settings, Workload
from cluster.bench.options import BenchOptions
from cluster.certificates import certificate_authority, issue
from cluster.curve_keys import CurveClient, curve_client_for, new_key_pair, write_key_file
from cluster.ports import free_ports
from cluster.spec import ClusterSpec, MemberSpec, load_spec

LEADER_TIMEOUT = 60.0
FACE_TIMEOUT = 30.0
SYSTEM = "jangada"
#: The native load on a cluster whose etcd faces (gRPC and gateway) are on and idle.
IDLE_FACE_SYSTEM = "jangada-idleface"
#: The native load on a [curve] cluster, over CURVE.
SECURE_SYSTEM = "jangada-secure"
#: The native load on members with storage.fsync = "none": next to PySyncObj (issue 17).
NOFSYNC_SYSTEM = "jangada-nofsync"
#: The native load on members whose loop waits in each WAL write (storage.wal_writes = "loop").
LOOP_WRITES_SYSTEM = "jangada-loopwrites"


class JangadaError(Exception):
    """The jangada cluster did not start; the message says how."""


class NodeExitedAtStart(JangadaError):
    """A node process ended before the cluster had a leader."""


class JangadaCluster:
    """`size` members with data under `root`; `close()` ends each by its pid. With
    `grpc` each member also serves etcd's v3 gRPC API, with `gateway` its HTTP JSON
    gateway; without either no member runs the etcd face at all, as for the native
    rows. With `curve` the native and peer ports are CURVE (a key pair per member
    under `root/keys`); with `tls` the faces are https:// with certificates under
    `root/tls` (`ca_cert` is the CA a client checks them with)."""

    def __init__(self, root: Path, size: int, grpc: bool = False, gateway: bool = False, curve: bool = False,
                 tls: bool = False, tune: Callable[[ClusterSpec], ClusterSpec] | None = None,
                 wrap: Callable[[int], list[str]] | None = None) -> None:
        """`tune(spec)`: the spec to run instead (timing, fsync...); `wrap(member id)`:
        the command line a node runs under (valgrind for cluster/bench/cost.py)."""
        per = 2 + grpc + gateway
        ports = iter(free_ports(per * size))
        scheme = "https" if tls else "http"
        members = tuple(MemberSpec(i, f"tcp://127.0.0.1:{next(ports)}", f"tcp://127.0.0.1:{next(ports)}",
                                   grpc=f"{scheme}://127.0.0.1:{next(ports)}" if grpc else "",
                                   gateway=f"{scheme}://127.0.0.1:{next(ports)}" if gateway else "")
                        for i in range(1, size + 1))
        first = members[0].peer.rsplit(":", 1)[1]
        spec = replace(load_spec(f"cluster-{size}"), cluster_id=f"compare-{os.getpid()}-{first}",
                       members=members, data_dir=str(root / "node-{id}"))
        self.ca_cert = root / "tls" / "ca.crt"
        if curve:
            spec = curve_spec(spec, root / "keys")
        if tls:
            spec = tls_spec(spec, root / "tls")
        if tune is not None:
            spec = tune(spec)
        self.spec = spec
        self.wrap = wrap
        self.root = root
        self.config = root / "cluster.toml"
        self.config.write_text(self.spec.to_toml())
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def curve(self) -> CurveClient | None:
        """A client's CURVE side for this cluster (None: plaintext)."""
        return curve_client_for(self.spec.members) if self.spec.curve.enabled else None

    @property
    def curve_keys(self) -> tuple[tuple[str, str], ...]:
        """(client endpoint, public key) per member, for BenchOptions.curve_keys."""
        return tuple((m.client, m.curve_public) for m in self.spec.members if m.curve_public)

    def start(self) -> None:
        for member in self.spec.members:
            log = (self.root / f"node-{member.id}.log").open("ab")
            try:
                self.procs.append(subprocess.Popen(
                    [*(self.wrap(member.id) if self.wrap else ()), sys.executable, "-m", "node", "--config", str(self.config), "--id", str(member.id)],
                    stdout=subprocess.DEVNULL, stderr=log, cwd=self.root))
            finally:
                log.close()

    def wait_for_leader(self, timeout: float = LEADER_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while runner.survey(self.spec.client_addresses(), timeout=0.5, curve=self.curve).leader is None:
            exited = [i for i, p in enumerate(self.procs, 1) if p.poll() is not None]
            if exited:
                log = self.root / f"node-{exited[0]}.log"
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
                raise NodeExitedAtStart(f"node {exited[0]} exited at start (logs in {self.root}): "
                                        + " | ".join(tail))
            if time.monotonic() > deadline:
                raise JangadaError(f"no leader within {timeout:g} s (logs in {self.root})")
            time.sleep(0.1)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def loop_writes(spec: ClusterSpec) -> ClusterSpec:
    """`spec` with storage.wal_writes = "loop": the loop writes and fsyncs itself."""
    return replace(spec, storage=replace(spec.storage, wal_writes="loop"))


def no_fsync(spec: ClusterSpec) -> ClusterSpec:
    """`spec` with storage.fsync = "none": acknowledged writes are NOT durable."""
    return replace(spec, storage=replace(spec.storage, fsync="none"))


def curve_spec(spec: ClusterSpec, keys: Path) -> ClusterSpec:
    """`spec` with [curve] on: a fresh key pair per member in `keys` (0600 files),
    each public key in its member's `curve_public`."""
    members = []
    for m in spec.members:
        public, secret = new_key_pair()
        write_key_file(keys / f"member-{m.id}.key", m.id, public, secret)
        members.append(replace(m, curve_public=public))
    return replace(spec, members=tuple(members),
                   curve=replace(spec.curve, enabled=True, secret_key=str(keys / "member-{id}.key")))


def tls_spec(spec: ClusterSpec, where: Path) -> ClusterSpec:
    """`spec` with [tls]: a CA in `where` and a server certificate per member for
    the host of its face URLs (loopback here); no client certificates asked for."""
    ca_cert, ca_key = certificate_authority(where / "ca.crt", where / "ca.key")
    for m in spec.members:
        hosts = sorted({url.split("://", 1)[-1].rsplit(":", 1)[0] for url in (m.grpc, m.gateway) if url})
        issue(where / f"member-{m.id}.crt", where / f"member-{m.id}.key", ca_cert, ca_key, f"jangada member {m.id}",
              hosts or ["127.0.0.1"], server=True)
    return replace(spec, tls=replace(spec.tls, cert=str(where / "member-{id}.crt"),
                                     key=str(where / "member-{id}.key"), ca=str(where / "ca.crt")))


def wait_for_faces(spec: ClusterSpec, timeout: float = FACE_TIMEOUT) -> None:
    """Every member's etcd faces (gRPC, gateway: those it has) accept connections; the
    face starts with the node, in its own thread, and may listen after a leader is
    elected."""
    deadline = time.monotonic() + timeout
    for member in spec.members:
        for face, url in (("gRPC face", member.grpc), ("gateway", member.gateway)):
            if not url:
                continue
            host, _, port = url.split("://", 1)[-1].rpartition(":")
            while True:
                try:
                    with socket.create_connection((host, int(port)), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise JangadaError(f"member {member.id}'s {face} did not listen within {timeout:g} s") \
                            from None
                    time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Shape:
    processes: int
    in_flight: int
    target: str = "leader"


#: Load processes x in-flight per workload. Serializable reads start on every member
#: (4 processes: heads cycle over the 3 members); everything else at the leader.
SHAPES = {"put-1": Shape(1, 1), "put-16": Shape(2, 8), "put-64": Shape(2, 32), "get-lin-16": Shape(2, 8),
          "get-ser-16": Shape(4, 4, "all"), "put-64-5m": Shape(2, 32)}


def durability(fsync: str) -> str:
    """storage.fsync = always: a write is acknowledged once a quorum fsynced it."""
    return "fsync" if fsync == "always" else f"NO fsync (storage.fsync = {fsync})"


def measure(w: Workload, endpoints: list[str], settings: Settings, fsync: str, pids: list[int],
            system: str = SYSTEM, curve_keys: tuple[tuple[str, str], ...] = ()) -> Measurement:
    """One workload with the pipelined generator; `curve_keys`: a [curve] cluster's."""
    shape = SHAPES[w.key]
    options = BenchOptions(workload=w.op, processes=shape.processes, in_flight=shape.in_flight, ops=None,
                           duration=settings.duration, keys=settings.keys, value_size=settings.value_size,
                           serializable=w.serializable,
                           target=shape.target, pipeline=True, curve_keys=curve_keys)
    options.check()
    view = runner.survey(endpoints, curve=CurveClient(dict(curve_keys)) if curve_keys else None)
    cpu = ServerCpu(pids)

    def window(phase: str, completed: int, elapsed: float) -> None:
        # The runner reports "run" from the start of the measured window (after
        # connecting and prefill) and "done" once every load process has reported.
        if phase == "run" and cpu.start is None:
            cpu.begin()
        elif phase == "done":
            cpu.end()

    results, wall, _ = runner.run(options, view, window)
    summary = report.summarize(options, results, wall, {"endpoints": endpoints, "leader": view.leader,
                                                         "roles": view.roles, "fsync": fsync})
    lat = summary["latency_ms"]
    return Measurement(
        system=system, workload=w.key, members=w.members, durability=durability(fsync),
        ops_per_s=float(summary["ops_per_s"]), ok=summary["ops"]["ok"], errors=summary["ops"]["failed"],
        elapsed_s=float(summary["elapsed_s"]), latency_ms={k: float(lat[k]) for k in ("p50", "p90", "p99",
                                                                                       "p99.9", "max")},
        load_cpu_s=float(summary["load_cpu"]["cpu_s"]),
        generator=f"cluster.bench --pipeline: {shape.processes} process(es) x {shape.in_flight} in flight, "
                  f"target {shape.target}",
        generator_processes=shape.processes, error_kinds=dict(summary["errors"]), cluster_cpu_s=cpu.used)


def start_cluster(make: Callable[[Path], JangadaCluster], home: Path,
                  started: Callable[[list[int]], None]) -> JangadaCluster:
    """A started cluster with a leader, its data under `home`. Its ports come from
    free_ports(), and another process may bind one before a node does: a node that
    exits at start gets one more try, a new cluster with fresh ports in `home/retry`
    (the first one stopped by pid, its logs kept)."""
    for attempt in (1, 2):
        where = home if attempt == 1 else home / "retry"
        where.mkdir(parents=True, exist_ok=True)
        cluster = make(where)
        cluster.start()
        started([p.pid for p in cluster.procs])
        try:
            cluster.wait_for_leader()
            return cluster
        except NodeExitedAtStart:
            cluster.close()
            if attempt == 2:
                raise
        except BaseException:
            cluster.close()
            raise
    raise AssertionError("unreachable")


def run(workloads: list[Workload], root: Path, settings: Settings,
        started: Callable[[list[int]], None] = lambda pids: None,
        each: Callable[[Measurement], None] = lambda m: None, idle_faces: bool = False,
        secure: bool = False, nofsync: bool = False,
        idle: Callable[[list[int]], None] | None = None, loopwrites: bool = False) -> list[Measurement]:
    """One cluster per member count, in the order the workloads come; each stopped
    (by pid) before the next starts. With `idle_faces` every member also runs its
    gRPC face and JSON gateway (nothing calls them) and the rows are `jangada-idleface`'s;
    with `secure` the members are [curve] and the load CURVE clients (`jangada-secure`);
    with `nofsync` the members' storage.fsync is "none" (`jangada-nofsync`); with `loopwrites`
    their storage.wal_writes is "loop" (`jangada-loopwrites`). `idle(pids)`
    is called once with the 3-member cluster's pids, before any load (its idle CPU)."""
    system = (IDLE_FACE_SYSTEM if idle_faces else SECURE_SYSTEM if secure else NOFSYNC_SYSTEM if nofsync
              else LOOP_WRITES_SYSTEM if loopwrites else SYSTEM)
    tune = no_fsync if nofsync else loop_writes if loopwrites else None
    out: list[Measurement] = []
    for members in dict.fromkeys(w.members for w in workloads):
        home = root / f"{system}-{members}"
        home.mkdir(parents=True, exist_ok=True)
        cluster = start_cluster(lambda where: JangadaCluster(where, members, grpc=idle_faces, gateway=idle_faces,
                                                             curve=secure, tune=tune), home, started)
        try:
            wait_for_faces(cluster.spec)
            fsync = cluster.spec.storage.fsync
            pids = [p.pid for p in cluster.procs]
            if idle is not None and members == 3:
                idle(pids)
            for w in (w for w in workloads if w.members == members):
                m = measure(w, cluster.spec.client_addresses(), settings, fsync, pids, system, cluster.curve_keys)
                each(m)
                out.append(m)
        finally:
            cluster.close()
    return out
