"""Real `python -m node` processes on free loopback ports: for integration tests and
`python -m node.measure` (the supervisor, issue #5, is the operator's tool).

Every process is started by this object and ended by it, by pid: `close()` sends
SIGTERM, waits a grace period, then SIGKILLs whatever is left. Waiting is always
on a condition with a deadline, never a fixed sleep.
"""
from __future__ import annotations

import os
import shutil
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

#: How often a first start moves to fresh ports when one was taken (`start_all`).
START_ATTEMPTS = 3
#: What a member's log says when its port was taken (ZMQError's text).
PORT_TAKEN = "Address already in use"


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
        if fault_injection:
            sections = {**sections, "faults": {**sections.get("faults", {}), "injection": True}}
        self._base, self._size, self._sections = base, size, sections
        self.config = root / "cluster.toml"
        self.spec: ClusterSpec = self._configure()
        self._started = False  # start_all's first start waits for the ports (`_start_on_free_ports`)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._clients: list[Client] = []
        #: members added after the config's (started with --join), by id
        self.joined: dict[int, MemberSpec] = {}

    def _configure(self) -> ClusterSpec:
        """A config on fresh free ports, written to `self.config`."""
        per = (4 if self.etcd else 2) + (1 if self.metrics else 0)
        ports = free_ports(per * self._size)
        members = tuple(self._member(i, ports[per * (i - 1):per * i]) for i in range(1, self._size + 1))
        spec = replace(load_spec(self._base), cluster_id=f"test-{os.getpid()}-{ports[0]}", members=members,
                       data_dir=str(self.root / "node-{id}"))
        for name, fields in self._sections.items():
            spec = replace(spec, **{name: replace(getattr(spec, name), **fields)})
        self.config.write_text(spec.to_toml())
        return spec

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
        """Start every member of the config. The cluster's first start also waits until
        each member answers a status request (`_start_on_free_ports`)."""
        first, self._started = not self._started, True
        for node_id in self.spec.ids:
            self.start(node_id)
        if first:
            self._start_on_free_ports()

    def _start_on_free_ports(self) -> None:
        """A port found free can be taken before the member binds it: the test workers
        draw ports at the same time (one in ~240 starts of two loops side by side met
        "Address already in use"). A member that exits so moves the whole cluster to
        fresh ports, its data dirs wiped (it never had a leader, nothing was
        acknowledged), up to START_ATTEMPTS times. Any other exit is left for the
        caller's wait (`status_of` names it with the log's tail)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            taken = self._port_taken()
            if taken is None:
                return
            if attempt == START_ATTEMPTS:
                raise AssertionError(f"node {taken} found its port taken {START_ATTEMPTS} times: "
                                     f"{self.log_text(taken).splitlines()[-1:]}")
            self.close()
            for node_id in self.spec.ids:
                shutil.rmtree(self.root / f"node-{node_id}", ignore_errors=True)
            self.spec = self._configure()
            for node_id in self.spec.ids:
                self.start(node_id)

    def _port_taken(self, timeout: float = 60.0) -> int | None:
        """Until every member answers or one exits: the id of one that exited because
        its port was taken, else None."""
        waiting = set(self.spec.ids)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for node_id in sorted(waiting):
                if self.procs[node_id].poll() is not None:
                    if PORT_TAKEN in self.log_text(node_id):
                        return node_id
                    waiting.discard(node_id)  # another failure: the caller's wait reports it
                elif self.status(node_id, timeout=0.5) is not None:
                    waiting.discard(node_id)
            time.sleep(0.02)
        return None

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
        """`status`, waiting (with a deadline) for the node to answer; a node whose
        process has exited fails at once, with its log's tail."""

        def answer() -> dict[str, Any] | None:
            proc = self.procs.get(node_id)
            if proc is not None and proc.poll() is not None:
                tail = "\n".join(self.log_text(node_id).splitlines()[-20:])
                raise AssertionError(f"node {node_id} exited with {proc.returncode} before answering:\n{tail}")
            return self.status(node_id)

        return wait_for(answer, timeout, f"node {node_id} to answer a status request")

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
