"""The member's metrics and health endpoint (MemberSpec.metrics, etcd's
--listen-metrics-urls): `/metrics`, `/health`, `/livez`, `/readyz`, `/version`.

It runs on its own threads (a ThreadingHTTPServer) and never calls into the loop:
`/metrics` reads the snapshot the loop last published (node/telemetry.py), and
`/health`'s linearizable read is an ordinary client request to the member's own
client port, answered by the loop like any other. Plain HTTP always (see MemberSpec).

`/health` as etcd 3.4's: 200 {"health":"true"} when a leader is known, no alarm is
raised and a linearizable read succeeds within `HEALTH_READ_SECONDS`; else 503
{"health":"false","reason":...} (etcd 3.5's reasons: "RAFT NO LEADER", "ALARM
NOSPACE", ...). As etcd, an auth refusal of that read still counts as an answer.
`/livez`: the loop published within `STALE_SECONDS` (a stuck loop stops
publishing). `/readyz`: live and healthy, as text ("ok" or the reason), for probes.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from node.metrics_collector import ETCD_VERSION, MetricsCollector
from node.telemetry import Board

#: How long /health waits for its linearizable read.
HEALTH_READ_SECONDS = 1.0
#: A snapshot older than this: the loop is stuck (it publishes at least every
#: second: node/telemetry.py's QUIET_PUBLISH_SECONDS).
STALE_SECONDS = 5.0
#: The requests that read the snapshot's contents (not only its age, as /livez
#: does): asking one makes the loop publish every PUBLISH_SECONDS for a while.
READ_PATHS = frozenset({"/metrics", "/health", "/readyz"})


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    reason: str = ""

    def body(self) -> dict[str, str]:
        return {"health": "true"} if self.healthy else {"health": "false", "reason": self.reason}


def judge(board: Board, now: float, read_succeeds: Callable[[], str]) -> Verdict:
    """etcd's checks, cheapest first. `read_succeeds()`: "" when a linearizable read
    was answered, else why not."""
    snapshot = board.current
    if snapshot is None or now - snapshot.at > STALE_SECONDS:
        return Verdict(False, "NOT LIVE: the node's loop has not published its state")
    status = snapshot.status
    if not status.get("leader_id"):
        return Verdict(False, "RAFT NO LEADER")
    if snapshot.alarms:
        return Verdict(False, "ALARM " + ",".join(sorted({alarm for _member, alarm in snapshot.alarms})))
    failure = read_succeeds()
    if failure:
        return Verdict(False, f"QGET ERROR: {failure}")
    return Verdict(True)


class MetricsServer:
    """The HTTP server and its thread; `start` binds (raising OSError when the
    address is taken), `stop` shuts it down and joins."""

    def __init__(self, address: str, board: Board, read_succeeds: Callable[[], str],
                 version: str, clock: Callable[[], float] = time.monotonic) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host.strip("[]"), int(port))
        self.board = board
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MetricsCollector(lambda: board.current))
        self._read_succeeds = read_succeeds
        self._clock = clock
        self.version = {"etcdserver": ETCD_VERSION, "etcdcluster": ETCD_VERSION}
        if version:
            self.version["jangada"] = version
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        server = ThreadingHTTPServer(self._address, _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def health(self) -> Verdict:
        return judge(self.board, self._clock(), self._read_succeeds)

    def live(self) -> bool:
        snapshot = self.board.current
        return snapshot is not None and self._clock() - snapshot.at <= STALE_SECONDS


def _handler(owner: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "jangada-metrics"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path in READ_PATHS:  # the loop publishes more often while these are asked
                owner.board.asked_at = owner._clock()
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(owner.registry))
            elif path == "/health":
                verdict = owner.health()
                self._json(200 if verdict.healthy else 503, verdict.body())
            elif path == "/livez":
                live = owner.live()
                self._send(200 if live else 503, "text/plain; charset=utf-8",
                           b"ok\n" if live else b"not live: the node's loop stopped publishing\n")
            elif path == "/readyz":
                verdict = owner.health()
                self._send(200 if verdict.healthy else 503, "text/plain; charset=utf-8",
                           b"ok\n" if verdict.healthy else f"not ready: {verdict.reason}\n".encode())
            elif path == "/version":
                self._json(200, owner.version)
            else:
                self._send(404, "text/plain; charset=utf-8", b"404 page not found\n")

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(body).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            """Scrapes every few seconds would flood the operator's log: silent."""

    return Handler
