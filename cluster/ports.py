"""Free TCP ports for the clusters this project starts on one host (the supervisor,
the tests' local clusters, the benchmark comparison)."""
from __future__ import annotations

import socket


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct ports the kernel just handed out on `host` (held open together so
    they are distinct; a small race with other programs remains until the servers
    bind them)."""
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
