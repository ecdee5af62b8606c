"""PySyncObj's side: three `syncobj_node` processes on loopback, the load run inside
whichever one leads (see syncobj_node.py for why and what that means)."""
from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.bench.compare.cpu import ServerCpu
from cluster.bench.compare.plan import Measurement, Settings, Workload
from cluster.bench.histogram import Histogram

DURABILITY = "NO fsync"  # PySyncObj writes its journal file (mmap) and never fsyncs it
LEADER_TIMEOUT = 30.0


class SyncObjError(Exception):
    """The PySyncObj cluster failed; the message says how."""


class SyncObjCluster:
    def __init__(self, root: Path, ports: list[int], size: int = 3) -> None:
        self.root = root
        self.addrs = [f"127.0.0.1:{ports[i]}" for i in range(size)]
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> None:
        for i, addr in enumerate(self.addrs):
            log = (self.root / f"syncobj-{i + 1}.log").open("ab")
            try:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "cluster.bench.compare.syncobj_node", addr,
                     *[a for a in self.addrs if a != addr], "--journal", str(self.root / f"journal-{i + 1}")],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1))
            finally:
                log.close()

    def ask(self, i: int, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        proc = self.procs[i]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise SyncObjError(f"node {i + 1} did not answer {cmd['cmd']} within {timeout:g} s "
                               f"(log: {self.root / f'syncobj-{i + 1}.log'})")
        return dict(json.loads(line))

    def leader(self, timeout: float = LEADER_TIMEOUT) -> int:
        """The index of the node every node agrees leads, once all are ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = [self.ask(i, {"cmd": "status"}, 10) for i in range(len(self.procs))]
            leaders = {a["leader"] for a in answers}
            if all(a["ready"] for a in answers) and len(leaders) == 1 and None not in leaders:
                return self.addrs.index(leaders.pop())
            time.sleep(0.1)
        raise SyncObjError(f"no PySyncObj leader within {timeout:g} s")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    proc.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()


def measurement(w: Workload, doc: dict[str, Any]) -> Measurement:
    hist = Histogram.from_dict(doc["latency"])
    elapsed = float(doc["elapsed_s"])
    if w.op == "put":
        generator, note = f"closed loop in the leader process, {w.clients} in flight, batching off", ""
    elif w.serializable:
        generator = "dict reads in the leader process (1 thread)"
        note = "local dict read in the leader: no network, NOT linearizable"
    else:
        generator = f"closed loop in the leader process, {w.clients} in flight"
        note = "read through the log (a replicated command): linearizable"
    if doc.get("terms"):
        note = "; ".join(x for x in (note, f"term +{doc['terms']} during the run (an election)") if x)
    return Measurement(
        system="pysyncobj", workload=w.key, members=w.members, durability=DURABILITY,
        ops_per_s=hist.total / elapsed if elapsed > 0 else 0.0, ok=hist.total, errors=int(doc["errors"]),
        elapsed_s=elapsed,
        latency_ms={"p50": hist.value_at(50) / 1000, "p90": hist.value_at(90) / 1000,
                    "p99": hist.value_at(99) / 1000, "p99.9": hist.value_at(99.9) / 1000, "max": hist.max / 1000},
        load_cpu_s=None, generator=generator, note=note, server_cpu_s=float(doc["process_cpu_s"]),
        cluster_cpu_s=doc.get("cluster_cpu_s"))


def run(workloads: list[Workload], root: Path, ports: list[int], settings: Settings,
        started: Callable[[list[int]], None] = lambda pids: None,
        each: Callable[[Measurement], None] = lambda m: None,
        idle: Callable[[list[int]], None] | None = None) -> list[Measurement]:
    """`idle(pids)`: called once the cluster has a leader, before any load."""
    cluster = SyncObjCluster(root, ports)
    try:
        cluster.start()
        started(cluster.pids())
        if idle is not None:
            cluster.leader()
            idle(cluster.pids())
        out = []
        for w in workloads:
            leader = cluster.leader()
            cmd = {"cmd": "run", "op": w.op, "clients": w.clients, "serializable": w.serializable,
                   "duration": settings.duration, "keys": settings.keys, "value_size": settings.value_size}
            if w.op == "get":
                cluster.ask(leader, dict(cmd, cmd="prefill"), 60)
            cpu = ServerCpu(cluster.pids())
            cpu.begin()
            doc = cluster.ask(leader, cmd, settings.duration + 90)
            doc["cluster_cpu_s"] = cpu.end()
            m = measurement(w, doc)
            each(m)
            out.append(m)
        return out
    finally:
        cluster.close()
