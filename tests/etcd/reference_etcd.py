"""A real single-member etcd 3.4 for tests that compare jangada's answers with
etcd's: started on free loopback ports in a tmp dir, ended by pid. Its election
timeout (500 ms, heartbeat 50 ms) gives the same minimum lease TTL (1 s) as the
`etcd_cluster` fixture's timing, so TTL answers compare too."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.ports import free_ports

ETCD = shutil.which("etcd")


@contextmanager
def reference_etcd(data: Path, timeout: float = 30.0) -> Iterator[str]:
    """A running etcd; yields its client endpoint HOST:PORT. Skips the test when
    the etcd binary is not installed."""
    if ETCD is None:
        pytest.skip("the etcd 3.4 server binary is not installed")
    client, peer = free_ports(2)
    args = [ETCD, "--name", "ref", "--data-dir", str(data / "data"),
            "--election-timeout", "500", "--heartbeat-interval", "50",
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"ref=http://127.0.0.1:{peer}"]
    with open(data / "etcd.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"127.0.0.1:{client}"
    try:
        with grpc.insecure_channel(endpoint) as channel:
            status = rpc_pb2_grpc.MaintenanceStub(channel).Status
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"etcd exited with {process.returncode}")
                try:
                    status(rpc_pb2.StatusRequest(), timeout=1.0)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
