"""grpc-noop: the ceiling of any gRPC server written in Python on this machine.

Three processes, each a grpc.aio server (grpcio, as jangada's etcd face) that serves
etcd's KV.Put and KV.Range and answers every call at once: no log, no store, no fsync,
no other thread. A Put gets an empty PutResponse with a header; a Range gets the key
it asked for with a value of the run's value size, so replies are as large as a real
member's. etcdload (the Go clientv3 load generator of the etcd and jangada-grpc rows)
drives them with the same arguments and targets as jangada-grpc: writes and
linearizable reads pinned to one process, serializable reads spread over all three.

What the row says: whatever a Python gRPC server does per call, it cannot serve more
calls a second than this on this machine, and jangada-grpc's rows are that server
plus a Raft member's work in the same process (one GIL). It is a ceiling, not a
store: the table labels it so, and nothing it answers is read back.

`python -m cluster.bench.compare.grpc_noop --port P [--value-size N]` runs one server
(until SIGTERM or SIGINT).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.bench.compare import etcd
from cluster.bench.compare.plan import Measurement, Settings, Workload
from cluster.ports import free_ports

SYSTEM = "grpc-noop"
DURABILITY = "NOTHING stored (answers at once)"
SERVERS = 3
START_TIMEOUT = 30.0
#: As the etcd face's (node/etcd/face.py): etcd's message size limits.
OPTIONS = [("grpc.max_receive_message_length", 2 * 1024 * 1024 + 1024),
           ("grpc.max_send_message_length", 2**31 - 1),
           ("grpc.max_concurrent_streams", 2**31 - 1),
           ("grpc.so_reuseport", 0)]


class NoopError(Exception):
    """A no-op server did not start; the message says how."""


async def serve(port: int, value_size: int) -> None:
    import grpc.aio

    from cluster.etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc

    value = b"v" * value_size

    def header() -> Any:
        return rpc_pb2.ResponseHeader(cluster_id=1, member_id=1, revision=1, raft_term=1)

    class KV(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
        async def Put(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC's method name
            return rpc_pb2.PutResponse(header=header())

        async def Range(self, request: Any, context: Any) -> Any:  # noqa: N802
            kv = kv_pb2.KeyValue(key=request.key, value=value, create_revision=1, mod_revision=1, version=1)
            return rpc_pb2.RangeResponse(header=header(), kvs=[kv], count=1)

    server = grpc.aio.server(options=OPTIONS)
    rpc_pb2_grpc.add_KVServicer_to_server(KV(), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise NoopError(f"cannot bind 127.0.0.1:{port}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(grace=0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.bench.compare.grpc_noop",
                                description="A gRPC server of etcd's KV.Put and KV.Range that answers at once "
                                            "(the grpc-noop row of `python -m cluster.bench compare`).")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--value-size", type=int, default=100)
    args = p.parse_args(argv)
    if not 0 < args.port < 65536 or not 0 <= args.value_size <= 1024 * 1024:
        print("Error: --port must be 1..65535 and --value-size 0..1048576", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args.port, args.value_size))
    except NoopError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class NoopServers:
    """SERVERS no-op servers on free loopback ports; `close` ends them by pid."""

    def __init__(self, root: Path, value_size: int, count: int = SERVERS) -> None:
        self.root = root
        self.value_size = value_size
        self.ports = free_ports(count)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        for i, port in enumerate(self.ports):
            log = open(self.root / f"noop-{i}.log", "wb")  # noqa: SIM115 -- the child owns it
            with log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "cluster.bench.compare.grpc_noop", "--port", str(port),
                     "--value-size", str(self.value_size)], stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        for proc, port in zip(self.procs, self.ports):
            while not _listening(port):
                if proc.poll() is not None:
                    raise NoopError(f"the no-op server on port {port} exited with {proc.returncode}: "
                                    f"{self._log_tail(port)}")
                if time.monotonic() > deadline:
                    raise NoopError(f"the no-op server on port {port} did not listen within {timeout:g} s")
                time.sleep(0.05)

    def _log_tail(self, port: int) -> str:
        path = self.root / f"noop-{self.ports.index(port)}.log"
        return path.read_text(errors="replace")[-300:] if path.exists() else ""

    def close(self, timeout: float = 10.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # ours, by handle
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def target(w: Workload, servers: NoopServers) -> tuple[list[str], str]:
    """As jangada-grpc's: serializable reads over every server, the rest at one."""
    if w.serializable:
        return servers.endpoints, "all"
    return servers.endpoints[:1], "leader"


def run(workloads: list[Workload], root: Path, settings: Settings,
        each: Callable[[Measurement], None] = lambda m: None) -> list[Measurement]:
    """Build etcdload, start the servers, run every 3-member workload, stop them."""
    binary = etcd.build_etcdload()
    servers = NoopServers(root, settings.value_size)
    out: list[Measurement] = []
    try:
        servers.start()
        for w in workloads:
            if w.members != SERVERS:
                continue
            endpoints, where = target(w, servers)
            args = etcd.etcdload_args(w, endpoints, settings, target="all")
            doc, used = etcd.run_etcdload(binary, args, servers.pids(), settings, f"{SYSTEM} {w.key}")
            m = etcd.measurement(w, doc, used, system=SYSTEM, durability=DURABILITY, target=where)
            each(m)
            out.append(m)
    finally:
        servers.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
