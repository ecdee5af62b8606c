"""Free TCP ports for the clusters this project starts on one host (the supervisor,
the tests' local clusters, the benchmark comparison).

The ports are drawn below the kernel's ephemeral range (net.ipv4.ip_local_port_range):
a port the kernel hands out for bind(0) is one it also hands out as the source port of
an outgoing connection, and on a busy host (a test suite's clients, a benchmark) such a
connection can take a port between the moment it is found free and the moment the
server binds it ("Address already in use"). Outgoing connections never use ports
below the ephemeral range, so only another program choosing the same port in that
window can still collide."""
from __future__ import annotations

import random
import socket
from pathlib import Path

#: The lowest port drawn (below it: well-known and commonly configured services).
LOWEST = 10_000
#: The kernel's default ephemeral range starts here (when /proc does not say).
DEFAULT_EPHEMERAL_LOW = 32_768
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range."""
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that `host` can bind now, below the ephemeral range
    (held open together while choosing, so they are distinct); the kernel's
    choice when that range leaves too little room."""
    high = ephemeral_low() - 1
    if high - LOWEST < 1000:
        return _kernel_ports(count, host)
    rng = random.SystemRandom()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count * 100):
            if len(sockets) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, rng.randint(LOWEST, high)))
            except OSError:  # in use (by anyone, or drawn twice: the first still holds it)
                s.close()
                continue
            sockets.append(s)
        if len(sockets) < count:
            raise OSError(f"found only {len(sockets)} of {count} free ports in {LOWEST}-{high} on {host}")
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kernel_ports(count: int, host: str) -> list[int]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
