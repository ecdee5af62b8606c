"""A real single-member etcd 3.4, for tests that compare jangada's answers with
etcd's: started on free loopback ports in a tmp dir, ended by pid. Tests using it
skip when the `etcd` binary is not installed. Its election timeout (500 ms,
heartbeat 50 ms) gives the same minimum lease TTL (1 s) as the `etcd_cluster`
fixture's timing, so TTL answers compare too."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.ports import free_ports
from node.localcluster import terminate

ETCD = shutil.which("etcd")


@dataclass(frozen=True)
class ReferenceEtcd:
    endpoint: str  # HOST:PORT of its client URL
    peer_url: str
    member_id: int

    @property
    def url(self) -> str:
        """Its client URL, which also serves etcd's JSON gateway."""
        return f"http://{self.endpoint}"


@contextmanager
def reference_etcd(data: Path) -> Iterator[ReferenceEtcd]:
    if ETCD is None:
        pytest.skip("the etcd 3.4 server binary is not installed")
    client, peer = free_ports(2)
    peer_url = f"http://127.0.0.1:{peer}"
    args = [ETCD, "--name", "ref", "--data-dir", str(data / "data"),
            "--election-timeout", "500", "--heartbeat-interval", "50",
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"ref={peer_url}"]
    with open(data / "etcd.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"127.0.0.1:{client}"
    try:
        with grpc.insecure_channel(endpoint) as channel:
            status = _wait_until_serving(channel, process, time.monotonic() + 30)
        yield ReferenceEtcd(endpoint, peer_url, status.header.member_id)
    finally:
        terminate(process, 5.0)


def _wait_until_serving(channel: grpc.Channel, process: subprocess.Popen[bytes],
                        deadline: float) -> rpc_pb2.StatusResponse:
    status = rpc_pb2_grpc.MaintenanceStub(channel).Status
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"etcd exited with {process.returncode}")
        try:
            found = status(rpc_pb2.StatusRequest(), timeout=1.0)
            if found.leader:
                return found
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)
