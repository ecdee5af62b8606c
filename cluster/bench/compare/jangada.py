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
native protocol (issue 14: it must not).
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
from cluster.ports import free_ports
from cluster.spec import ClusterSpec, MemberSpec, load_spec

LEADER_TIMEOUT = 60.0
FACE_TIMEOUT = 30.0
SYSTEM = "jangada"
#: The native load on a cluster whose etcd faces (gRPC and gateway) are on and idle.
IDLE_FACE_SYSTEM = "jangada-idleface"


class JangadaError(Exception):
    """The jangada cluster did not start; the message says how."""


class JangadaCluster:
    """`size` members with data under `root`; `close()` ends each by its pid. With
    `grpc` each member also serves etcd's v3 gRPC API, with `gateway` its HTTP JSON
    gateway; without either no member runs the etcd face at all, as for the native
    rows."""

    def __init__(self, root: Path, size: int, grpc: bool = False, gateway: bool = False) -> None:
        per = 2 + grpc + gateway
        ports = iter(free_ports(per * size))
        members = tuple(MemberSpec(i, f"tcp://127.0.0.1:{next(ports)}", f"tcp://127.0.0.1:{next(ports)}",
                                   grpc=f"http://127.0.0.1:{next(ports)}" if grpc else "",
                                   gateway=f"http://127.0.0.1:{next(ports)}" if gateway else "")
                        for i in range(1, size + 1))
        first = members[0].peer.rsplit(":", 1)[1]
        self.spec = replace(load_spec(f"cluster-{size}"), cluster_id=f"compare-{os.getpid()}-{first}",
                            members=members, data_dir=str(root / "node-{id}"))
        self.root = root
        self.config = root / "cluster.toml"
        self.config.write_text(self.spec.to_toml())
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for member in self.spec.members:
            log = (self.root / f"node-{member.id}.log").open("ab")
            try:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "node", "--config", str(self.config), "--id", str(member.id)],
                    stdout=subprocess.DEVNULL, stderr=log, cwd=self.root))
            finally:
                log.close()

    def wait_for_leader(self, timeout: float = LEADER_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while runner.survey(self.spec.client_addresses(), timeout=0.5).leader is None:
            if any(p.poll() is not None for p in self.procs):
                raise JangadaError(f"a node exited at start (logs in {self.root})")
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


def wait_for_faces(spec: ClusterSpec, timeout: float = FACE_TIMEOUT) -> None:
    """Every member's etcd faces (gRPC, gateway: those it has) accept connections; the
    face starts with the node, in its own thread, and may listen after a leader is
    elected."""
    deadline = time.monotonic() + timeout
    for member in spec.members:
        for face, url in (("gRPC face", member.grpc), ("gateway", member.gateway)):
            if not url:
                continue
            host, _, port = url.removeprefix("http://").rpartition(":")
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
            system: str = SYSTEM) -> Measurement:
    shape = SHAPES[w.key]
    options = BenchOptions(workload=w.op, processes=shape.processes, in_flight=shape.in_flight, ops=None,
                           duration=settings.duration, keys=settings.keys, value_size=settings.value_size,
                           serializable=w.serializable,
                           target=shape.target, pipeline=True)
    options.check()
    view = runner.survey(endpoints)
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


def run(workloads: list[Workload], root: Path, settings: Settings,
        started: Callable[[list[int]], None] = lambda pids: None,
        each: Callable[[Measurement], None] = lambda m: None, idle_faces: bool = False) -> list[Measurement]:
    """One cluster per member count, in the order the workloads come; each stopped
    (by pid) before the next starts. With `idle_faces` every member also runs its
    gRPC face and JSON gateway (nothing calls them) and the rows are `jangada-idleface`'s."""
    system = IDLE_FACE_SYSTEM if idle_faces else SYSTEM
    out: list[Measurement] = []
    for members in dict.fromkeys(w.members for w in workloads):
        home = root / f"{system}-{members}"
        home.mkdir(parents=True, exist_ok=True)
        cluster = JangadaCluster(home, members, grpc=idle_faces, gateway=idle_faces)
        try:
            cluster.start()
            started([p.pid for p in cluster.procs])
            cluster.wait_for_leader()
            wait_for_faces(cluster.spec)
            fsync = cluster.spec.storage.fsync
            pids = [p.pid for p in cluster.procs]
            for w in (w for w in workloads if w.members == members):
                m = measure(w, cluster.spec.client_addresses(), settings, fsync, pids, system)
                each(m)
                out.append(m)
        finally:
            cluster.close()
    return out
