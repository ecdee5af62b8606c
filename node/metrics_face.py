"""A member's metrics face: what the loop publishes for the HTTP thread, and the
linearizable read `/health` makes (node/metrics_http.py serves them).

The loop calls `maybe_publish(now)` once per turn; at most every
`PUBLISH_SECONDS` while someone reads the board (`QUIET_PUBLISH_SECONDS` when no
one did for `WATCHED_SECONDS`) it builds a `MetricsSnapshot` (the member status,
the counters the status lacks, the histograms) and swaps it onto the board. Scrapes and health
checks never reach the loop's objects.
"""
from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cluster.kv.alarms import AlarmMember
from cluster.client import Client, ClientError
from cluster.curve_keys import curve_client_for
from cluster.kv.errors import KvError, PermissionDenied, UserEmpty
from cluster.spec import ClusterSpec, MemberSpec
from node.metrics_http import HEALTH_READ_SECONDS, MetricsServer
from node.telemetry import Board, MetricsSnapshot, Telemetry

#: The key /health reads (etcd reads "health" too); it need not exist.
HEALTH_KEY = b"health"


def jangada_version() -> str:
    try:
        return importlib.metadata.version("jangada")
    except importlib.metadata.PackageNotFoundError:
        return ""


def alarm_pairs(alarms: Iterable[AlarmMember]) -> tuple[tuple[int, str], ...]:
    """(member id, alarm name) for each raised alarm."""
    return tuple(sorted((alarm.member_id, alarm.alarm.name) for alarm in alarms))


class MetricsFace:
    def __init__(self, spec: ClusterSpec, member: MemberSpec, telemetry: Telemetry,
                 status: Callable[[], Mapping[str, Any]], counters: Callable[[], Mapping[str, float]],
                 alarms: Callable[[], Iterable[Any]], clock: Callable[[], float]) -> None:
        """`status`, `counters`, `alarms`: read on the loop's thread at publish time."""
        self.telemetry = telemetry
        self.board = Board()
        self._status = status
        self._counters = counters
        self._alarms = alarms
        self._clock = clock
        self._next_publish = 0.0
        self._member = member
        self._curve = curve_client_for(spec.members) if spec.curve.enabled else None
        self._client: Client | None = None
        self._client_lock = threading.Lock()  # the HTTP server runs a thread per request
        self.server = MetricsServer(member.metrics_address, self.board, self._read, jangada_version(), clock)

    def start(self) -> None:
        self.publish(self._clock())
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def maybe_publish(self, now: float) -> None:
        if now >= self._next_publish:
            self.publish(now)

    def publish(self, now: float) -> None:
        self._next_publish = now + self.board.publish_interval(now)
        self.board.current = MetricsSnapshot(now, self._status(), dict(self._counters()),
                                             self.telemetry.histograms(), alarm_pairs(self._alarms()))

    def _read(self) -> str:
        """A linearizable read through this member's client port: "" when answered
        (an auth refusal is an answer, as in etcd), else why not."""
        with self._client_lock:
            if self._client is None:
                self._client = Client([self._member.client], timeout=HEALTH_READ_SECONDS,
                                      attempt_timeout=HEALTH_READ_SECONDS, exactly_once=False, curve=self._curve)
            try:
                self._client.get(HEALTH_KEY)
            except (PermissionDenied, UserEmpty):
                return ""
            except (ClientError, KvError) as error:
                # a fresh client next time: this one may be stuck on a dead leader's address
                self._client.close()
                self._client = None
                return f"{type(error).__name__}: {error}"
        return ""
