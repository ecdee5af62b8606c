"""Real `python -m node` processes on free loopback ports: for integration tests and
`python -m node.measure` (the supervisor, issue #5, is the operator's tool).

Every process is started by this object and ended by it, by pid: `close()` sends
SIGTERM, waits a grace period, then SIGKILLs whatever is left. Waiting is always
on a condition with a deadline, never a fixed sleep.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from cluster.client import Client, ClientError
from cluster.ports import free_ports
from cluster.spec import ClusterSpec, MemberSpec, load_spec

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `condition` until it returns something truthy; AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def terminate(proc: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM, wait `grace` seconds, then SIGKILL; the exit status (the process is reaped)."""
    proc.terminate()
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=30)


class LocalCluster:
    def __init__(self, root: Path, size: int = 3, base: str = "cluster-3", etcd: bool = False,
                 fault_injection: bool = False, metrics: bool = False, **sections: dict[str, Any]) -> None:
        """`sections` override config fields, e.g. snapshot={"applied_entries": 20}.
        `etcd`: every member also serves etcd's v3 API (gRPC and the JSON gateway).
        `fault_injection`: the members accept drop-traffic (`[faults] injection`).
        `metrics`: every member serves /metrics and /health (MemberSpec.metrics)."""
        self.root = root
        self.etcd = etcd
        self.metrics = metrics
        # the faces' scheme: https:// with the config's [tls] (cluster/spec.py requires it)
        self.scheme = "https://" if sections.get("tls", {}).get("cert") else "http://"
        per = (4 if etcd else 2) + (1 if metrics else 0)
        ports = free_ports(per * size)
        members = tuple(self._member(i, ports[per * (i - 1):per * i]) for i in range(1, size + 1))
        spec = replace(load_spec(base), cluster_id=f"test-{os.getpid()}-{ports[0]}", members=members,
                       data_dir=str(root / "node-{id}"))
        if fault_injection:
            sections = {**sections, "faults": {**sections.get("faults", {}), "injection": True}}
        for name, fields in sections.items():
            spec = replace(spec, **{name: replace(getattr(spec, name), **fields)})
        self.spec: ClusterSpec = spec
        self.config = root / "cluster.toml"
        self.config.write_text(spec.to_toml())
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._clients: list[Client] = []
        #: members added after the config's (started with --join), by id
        self.joined: dict[int, MemberSpec] = {}

    def _member(self, node_id: int, ports: list[int] | None = None) -> MemberSpec:
        metrics = ""
        if ports is None:  # a member added later: no metrics endpoint (`--join` has no flag for it)
            ports = free_ports(4 if self.etcd else 2)
        elif self.metrics:
            *ports, metrics_port = ports
            metrics = f"http://127.0.0.1:{metrics_port}"
        if not self.etcd:
            peer, client = ports
            return MemberSpec(node_id, f"tcp://127.0.0.1:{peer}", f"tcp://127.0.0.1:{client}", metrics=metrics)
        peer, client, grpc, gateway = ports
        return MemberSpec(node_id, f"tcp://127.0.0.1:{peer}", f"tcp://127.0.0.1:{client}",
                          grpc=f"{self.scheme}127.0.0.1:{grpc}", gateway=f"{self.scheme}127.0.0.1:{gateway}",
                          metrics=metrics)

    def new_member(self) -> MemberSpec:
        """A member for the next unused id, on fresh ports (not started, not added)."""
        node_id = max([*self.spec.ids, *self.joined]) + 1
        member = self._member(node_id)
        self.joined[node_id] = member
        return member

    def member(self, node_id: int) -> MemberSpec:
        return self.joined[node_id] if node_id in self.joined else self.spec.member(node_id)

    def grpc_endpoint(self, node_id: int) -> str:
        """HOST:PORT of a member's etcd gRPC face (as etcdctl's --endpoints takes it)."""
        return self.member(node_id).grpc.removeprefix(self.scheme)

    def gateway_url(self, node_id: int) -> str:
        return self.member(node_id).gateway

    def grpc_endpoints(self) -> list[str]:
        return [self.grpc_endpoint(i) for i in self.ids]

    @property
    def ids(self) -> list[int]:
        return [*self.spec.ids, *self.joined]

    # -- processes -------------------------------------------------------------------

    def start(self, node_id: int) -> None:
        assert node_id not in self.procs or self.procs[node_id].poll() is not None, f"node {node_id} is running"
        log = (self.root / f"node-{node_id}.log").open("ab")
        command = [sys.executable, "-m", "node", "--config", str(self.config), "--id", str(node_id)]
        if node_id in self.joined:
            member = self.joined[node_id]
            ask = ",".join(self.address(i) for i in self.running())
            command += ["--join", ask, "--peer", member.peer, "--client", member.client]
            # its etcd faces (python -m node --grpc/--gateway: branch members)
            command += [arg for name in ("grpc", "gateway") if getattr(member, name)
                        for arg in (f"--{name}", getattr(member, name))]
        try:
            self.procs[node_id] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=self.root)
        finally:
            log.close()

    def start_all(self) -> None:
        for node_id in self.spec.ids:
            self.start(node_id)

    def kill(self, node_id: int) -> None:
        """SIGKILL, and reap."""
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self, node_id: int, grace: float = 10.0) -> int:
        """SIGTERM and wait (SIGKILL after `grace`); the exit status."""
        return terminate(self.procs.pop(node_id), grace)

    def running(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        self.procs.clear()

    def log_text(self, node_id: int) -> str:
        path = self.root / f"node-{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tails(self, lines: int = 40) -> str:
        """The last `lines` of every member's log, each headed by its id: what a
        failed test prints after closing its clusters."""
        parts = []
        for node_id in self.ids:
            parts.append(f"----- node {node_id} log (tail) -----")
            parts.extend(self.log_text(node_id).splitlines()[-lines:])
        return "\n".join(parts)

    # -- clients and status ------------------------------------------------------------

    def client(self, endpoints: list[str] | None = None, **options: Any) -> Client:
        options.setdefault("timeout", 30.0)
        options.setdefault("attempt_timeout", 1.0)
        client = Client(endpoints or [self.address(i) for i in self.ids], **options)
        self._clients.append(client)
        return client

    def address(self, node_id: int) -> str:
        if node_id in self.joined:
            return self.joined[node_id].client
        return self.spec.member(node_id).client

    def status(self, node_id: int, timeout: float = 1.0) -> dict[str, Any] | None:
        probe = Client([self.address(node_id)], attempt_timeout=timeout)
        try:
            return probe.status(timeout=timeout)
        except ClientError:
            return None
        finally:
            probe.close()

    def status_of(self, node_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """`status`, waiting (with a deadline) for the node to answer."""
        return wait_for(lambda: self.status(node_id), timeout, f"node {node_id} to answer a status request")

    def leader(self) -> int | None:
        """The leader of the highest term among running nodes, if one claims it."""
        best: tuple[int, int] | None = None
        for node_id in self.running():
            st = self.status(node_id)
            if st and st["role"] == "leader" and (best is None or st["term"] > best[0]):
                best = (st["term"], node_id)
        return best[1] if best else None

    def wait_for_leader(self, timeout: float = 60.0) -> int:
        return wait_for(self.leader, timeout, "a leader")

    def wait_caught_up(self, node_id: int, index: int, timeout: float = 60.0) -> dict[str, Any]:
        def caught_up() -> dict[str, Any] | None:
            st = self.status(node_id)
            return st if st and st["applied_index"] >= index else None
        return wait_for(caught_up, timeout, f"node {node_id} to apply index {index}")

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
