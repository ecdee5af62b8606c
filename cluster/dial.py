"""Failing fast when nothing listens: a plain TCP connect to the endpoints before
the CLI sends a request.

ZeroMQ connects lazily and retries forever, so a request to a port where nothing
listens is indistinguishable from a slow cluster until the whole `--timeout`
passes. `dial` connects first, as etcd's client does with its 2 s dial timeout
(gRPC's blocking dial): it tries the endpoints in order, stops at the first that
accepts a TCP connection, and keeps trying (every 0.1 s) until the dial timeout,
so that a member the supervisor is restarting is waited for. Only when none
accepts in that time is the command refused, naming each endpoint and why, with
etcdctl's ExitBadConnection. The connection is closed at once, before any ZMTP
greeting: the node sees a peer that went away, which ZeroMQ drops silently.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence

#: etcdctl's default --dial-timeout.
DIAL_TIMEOUT = 2.0
#: Between rounds of connection attempts (a refused connect returns at once).
RETRY_INTERVAL = 0.1


class BadConnection(Exception):
    """No endpoint accepted a connection: etcdctl's ExitBadConnection (2)."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = tuple(failures)
        super().__init__("; ".join(f"dial tcp {host_port(endpoint)}: {why}" for endpoint, why in failures))


def host_port(endpoint: str) -> str:
    return endpoint.removeprefix("tcp://")


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = host_port(endpoint).rpartition(":")
    return host.strip("[]"), int(port)


def connect_error(endpoint: str, timeout: float) -> str | None:
    """None if `endpoint` accepts a TCP connection within `timeout`, else why not
    (as Go's dialer says it: "connect: connection refused", "i/o timeout")."""
    try:
        with socket.create_connection(_split(endpoint), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connect: connection refused"
    except socket.timeout:
        return "i/o timeout"
    except OSError as error:
        return f"connect: {error.strerror or error}"


def dial(endpoints: Sequence[str], timeout: float = DIAL_TIMEOUT,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """The first endpoint that accepts a connection within `timeout`; BadConnection
    (with each endpoint's last failure) if none does."""
    deadline = clock() + timeout
    while True:
        failures = []
        for endpoint in endpoints:
            why = connect_error(endpoint, max(deadline - clock(), 0.01))
            if why is None:
                return endpoint
            failures.append((endpoint, why))
        if clock() + RETRY_INTERVAL >= deadline:
            raise BadConnection(failures)
        sleep(RETRY_INTERVAL)
