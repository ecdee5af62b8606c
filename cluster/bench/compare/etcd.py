"""etcd's side: a 3-member etcd cluster on loopback and etcdload, our Go load
generator over etcd's own client (cluster/bench/etcdload/main.go).

etcdload is built once per version of its source, offline, with Debian's golang-go
against the Go sources Debian's golang-etcd-server-dev ships under /usr/share/gocode
(GOPATH mode, GO111MODULE=off, no module proxy): into ~/.cache/jangada/etcdload/<hash>/.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.bench.compare.cpu import ServerCpu
from cluster.bench.compare.plan import Measurement, Settings, Workload

ETCD = "/usr/bin/etcd"
GOPATH = "/usr/share/gocode"
CLIENTV3 = Path(GOPATH) / "src/go.etcd.io/etcd/clientv3"
SOURCE = Path(__file__).resolve().parent.parent / "etcdload" / "main.go"
BUILD_TIMEOUT = 300.0
MEASURING_LINE = "etcdload: measuring"  # main.go's MeasuringLine, on stderr
DURABILITY = "fsync"  # etcd 3.4 fsyncs its WAL before acknowledging, always (no switch to turn it off)


class EtcdError(Exception):
    """The etcd cluster or etcdload failed; the message says how."""


def cache_root(name: str = "etcdload") -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jangada" / name


def go_binary() -> str | None:
    return shutil.which("go") or next((p for p in ("/usr/lib/go/bin/go",) if os.path.exists(p)), None)


def build_go_program(source: Path, name: str, cache: Path | None = None) -> Path:
    """The binary `name` built from the one-file Go program `source` (a main package
    over clientv3), built now if the cache lacks this version of it: offline, GOPATH
    mode against /usr/share/gocode. etcdload and the tests' Go client share it."""
    root = cache or cache_root(name)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    home = root / digest
    binary = home / name
    if binary.exists():
        return binary
    go = go_binary()
    if go is None:
        raise EtcdError("no Go compiler (apt-get install golang-go)")
    work = home / "src"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, work / "main.go")
    env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOCACHE=str(root / "gocache"), CGO_ENABLED="0")
    done = subprocess.run([go, "build", "-o", str(binary) + ".tmp", "main.go"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if done.returncode != 0:
        raise EtcdError(f"building {name} failed:\n{done.stderr.strip()[-2000:]}")
    os.replace(str(binary) + ".tmp", binary)  # whole or absent: a half-built binary never runs
    return binary


def build_etcdload(source: Path = SOURCE, cache: Path | None = None) -> Path:
    """The etcdload binary for this source, built now if the cache lacks it."""
    return build_go_program(source, "etcdload", cache)


class EtcdCluster:
    """`size` etcd members on 127.0.0.1 with data under `root`; `close()` ends each by
    its pid (SIGTERM, then SIGKILL after a grace period)."""

    def __init__(self, root: Path, ports: list[int], size: int = 3, etcd: str = ETCD) -> None:
        assert len(ports) >= 2 * size
        self.root, self.etcd = root, etcd
        self.names = [f"e{i}" for i in range(1, size + 1)]
        self.client_urls = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(size)]
        self.peer_urls = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def endpoints(self) -> list[str]:
        return [u.removeprefix("http://") for u in self.client_urls]

    def command(self, i: int) -> list[str]:
        initial = ",".join(f"{n}={p}" for n, p in zip(self.names, self.peer_urls))
        return [self.etcd, "--name", self.names[i], "--data-dir", str(self.root / self.names[i]),
                "--listen-client-urls", self.client_urls[i], "--advertise-client-urls", self.client_urls[i],
                "--listen-peer-urls", self.peer_urls[i], "--initial-advertise-peer-urls", self.peer_urls[i],
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"jangada-compare-{os.getpid()}", "--logger", "zap",
                "--log-level", "warn"]

    def start(self, timeout: float = 30.0) -> None:
        for i in range(len(self.names)):
            log = (self.root / f"{self.names[i]}.log").open("ab")
            try:
                self.procs.append(subprocess.Popen(self.command(i), stdout=subprocess.DEVNULL, stderr=log))
            finally:
                log.close()
        deadline = time.monotonic() + timeout
        while not all(self.healthy(u) for u in self.client_urls):
            if any(p.poll() is not None for p in self.procs):
                raise EtcdError(f"an etcd member exited at start (logs in {self.root})")
            if time.monotonic() > deadline:
                raise EtcdError(f"etcd was not healthy within {timeout:g} s (logs in {self.root})")
            time.sleep(0.1)

    @staticmethod
    def healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                return bool(json.loads(answer.read()).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @staticmethod
    def status(url: str) -> dict[str, Any] | None:
        """A member's Maintenance.Status through etcd's JSON gateway (None if it does not answer)."""
        request = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def leader(self) -> int | None:
        """The index of the member that says it is the leader, if one does."""
        for i, url in enumerate(self.client_urls):
            st = self.status(url) if self.procs[i].poll() is None else None
            if st and st.get("leader") and st["leader"] == st.get("header", {}).get("member_id"):
                return i
        return None

    def kill(self, i: int) -> None:
        """SIGKILL member `i` (ours, by its handle) and reap it."""
        self.procs[i].kill()
        self.procs[i].wait(timeout=30)

    def close(self, grace: float = 2.0) -> None:
        # SIGTERM to all at once: members then wait in vain to hand leadership over
        # (seconds); the data is throwaway, so past a short grace they get SIGKILL.
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def etcdload_args(w: Workload, endpoints: list[str], settings: Settings, target: str | None = None) -> list[str]:
    """etcdload's command line for `w`. `target` None: writes and linearizable reads
    go to the leader (as jangada's), serializable reads spread over every member (as
    jangada's --target all); "all" with one endpoint pins every connection to it."""
    kind = "put" if w.op == "put" else ("get-serializable" if w.serializable else "get")
    if target is None:
        target = "all" if w.serializable else "leader"
    return ["-workload", kind, "-clients", str(w.clients), "-duration", f"{settings.duration:g}",
            "-value-size", str(settings.value_size), "-keys", str(settings.keys), "-endpoints", ",".join(endpoints),
            "-target", target]


def parse_etcdload(stdout: str) -> dict[str, Any]:
    """etcdload's one JSON line (the last line that parses: clientv3 may log before it)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            missing = {"count", "ok", "errors", "ops_per_s", "latency_ms", "cpu_s", "elapsed_s"} - set(doc)
            if missing:
                raise EtcdError(f"etcdload output lacks {sorted(missing)}")
            return dict(doc)
    raise EtcdError(f"etcdload printed no result: {stdout.strip()[-300:]!r}")


def measurement(w: Workload, doc: dict[str, Any], cluster_cpu_s: float | None = None, system: str = "etcd",
                durability: str = DURABILITY, target: str | None = None) -> Measurement:
    """One row from etcdload's result; `target` names where the load went when the
    caller chose the endpoints itself (default: etcdload's own -target)."""
    lat = doc["latency_ms"]
    return Measurement(
        system=system, workload=w.key, members=w.members, durability=durability,
        ops_per_s=float(doc["ops_per_s"]), ok=int(doc["ok"]), errors=int(doc["errors"]),
        elapsed_s=float(doc["elapsed_s"]),
        latency_ms={k: float(lat[k]) for k in ("p50", "p90", "p99", "p99.9", "max")},
        load_cpu_s=float(doc["cpu_s"]),
        generator=f"etcdload (Go, clientv3): {w.clients} goroutines over {doc.get('conns', '?')} gRPC conns, "
                  f"target {target or doc.get('target', '?')}",
        error_kinds={str(k): int(v) for k, v in (doc.get("error_kinds") or {}).items()}, cluster_cpu_s=cluster_cpu_s)


def run_etcdload(binary: Path, args: list[str], pids: list[int], settings: Settings,
                 what: str) -> tuple[dict[str, Any], float | None]:
    """Run etcdload once: its result and the CPU the server processes `pids` used
    from its "measuring" line to its exit."""
    limit = settings.duration + 120
    cpu = ServerCpu(pids)
    with subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        before = []
        for line in proc.stderr:  # etcdload bounds its own connect and prefill
            if line.strip() == MEASURING_LINE:
                cpu.begin()
                break
            before.append(line)
        try:
            stdout, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()  # ours, by handle
            proc.communicate()
            raise EtcdError(f"etcdload {what} did not finish within {limit:g} s") from None
        used = cpu.end()
    if proc.returncode != 0:
        raise EtcdError(f"etcdload {what} failed: {(''.join(before) + stderr).strip()[-500:]}")
    return parse_etcdload(stdout), used


def run_workload(binary: Path, w: Workload, endpoints: list[str], settings: Settings,
                 pids: list[int]) -> Measurement:
    """Run etcdload once; etcd's CPU is counted from its "measuring" line to its exit."""
    doc, used = run_etcdload(binary, etcdload_args(w, endpoints, settings), pids, settings, w.key)
    return measurement(w, doc, used)


def run(workloads: list[Workload], root: Path, ports: list[int], settings: Settings,
        started: Callable[[list[int]], None] = lambda pids: None,
        each: Callable[[Measurement], None] = lambda m: None,
        idle: Callable[[list[int]], None] | None = None) -> list[Measurement]:
    """Build etcdload, start the cluster, run every workload, stop the cluster.
    `idle(pids)`: called once the cluster is up, before any load (its idle CPU)."""
    binary = build_etcdload()
    cluster = EtcdCluster(root, ports)
    try:
        cluster.start()
        started(cluster.pids())
        if idle is not None:
            idle(cluster.pids())
        out = []
        for w in workloads:
            m = run_workload(binary, w, cluster.endpoints, settings, cluster.pids())
            each(m)
            out.append(m)
        return out
    finally:
        cluster.close()
