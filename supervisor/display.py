"""What the foreground supervisor shows: timestamped event lines, and a live status
table (rich) when stdout is a terminal. Detached, or piped, it writes plain lines
only, plus one line whenever the leader changes."""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from cluster.discovery import ClusterState
from supervisor.status import HEADERS, NodeStatus, table_rows


LIVE_HIDDEN = {"ALIVE", "LAST", "LEADER", "SNAPSHOT", "GRPC", "GATEWAY"}


def etcd_faces(grpc: str, gateway: str) -> str:
    """", grpc URL, gateway URL" for a node's etcd faces that are on (for event lines)."""
    return "".join(f", {name} {url}" for name, url in (("grpc", grpc), ("gateway", gateway)) if url)


def timestamp() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


class Display:
    """Plain lines on a text stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def event(self, message: str) -> None:
        print(f"{timestamp()} supervisor: {message}", file=self.stream, flush=True)

    def ready(self, state: ClusterState, leader: NodeStatus) -> None:
        self.event(f"leader: node {leader.id} (term {leader.term}); cluster ready")
        for node in state.nodes:
            self.event(f"node {node.id}: pid {node.pid}, client {node.client}, peer {node.peer}"
                       f"{etcd_faces(node.grpc, node.gateway)}")
        endpoints = ",".join(n.client.removeprefix("tcp://") for n in state.nodes)
        self.event(f"endpoints: {endpoints}")
        self.event(security_line(state))
        if state.etcd_endpoints():
            self.event(f"etcd endpoints: {','.join(state.etcd_endpoints())}")
        self.event("try: python -m cluster put greeting hello; python -m cluster get greeting; "
                   "python -m supervisor status   (Ctrl-C here stops the cluster)")

    @contextlib.contextmanager
    def live(self, statuses: Callable[[], list[NodeStatus]]) -> Iterator[None]:
        yield


class RichDisplay(Display):
    """Event lines scroll above a status table that refreshes twice a second."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        from rich.console import Console
        self.console = Console()

    def event(self, message: str) -> None:
        self.console.print(f"[dim]{timestamp()}[/dim] {message}", highlight=False)

    @contextlib.contextmanager
    def live(self, statuses: Callable[[], list[NodeStatus]]) -> Iterator[None]:
        from rich.live import Live
        from rich.table import Table

        from rich import box

        # Fits 80 columns: `python -m supervisor status` has every column.
        shown = [i for i, h in enumerate(HEADERS) if h not in LIVE_HIDDEN]

        def render() -> Table:
            table = Table(title="jangada cluster (Ctrl-C stops it)", title_justify="left", box=box.SIMPLE_HEAD,
                          padding=(0, 1))
            for i in shown:
                table.add_column(HEADERS[i], justify="left" if HEADERS[i] == "ROLE" else "right", no_wrap=True)
            current = statuses()
            for status, row in zip(current, table_rows(current)):
                style = {"leader": "bold green", "down": "red", "paused": "yellow",
                         "unreachable": "yellow"}.get(status.role)
                table.add_row(*(row[i] for i in shown), style=style)
            return table

        with Live(get_renderable=render, console=self.console, refresh_per_second=2, transient=True):
            yield


def display_for(stream: TextIO) -> Display:
    return RichDisplay() if stream.isatty() else Display(stream)


def security_line(state: ClusterState) -> str:
    """Which mode the cluster runs in, said plainly (docs/security.md)."""
    if not state.secure:
        return ("security: PLAINTEXT (no CURVE, no TLS): anyone who can reach these ports can use the cluster "
                "unless auth is enabled; `up --secure` for a secure cluster")
    tls = f"TLS on the etcd faces, CA {state.ca}" if state.ca else "no TLS on the etcd faces"
    certs = f" (etcdctl --cacert {state.ca} --cert {state.client_cert} --key {state.client_key})" \
        if state.client_cert else ""
    return f"security: SECURE: CURVE on the client and peer ports; {tls}{certs}"
