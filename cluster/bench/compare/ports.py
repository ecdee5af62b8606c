"""Free loopback ports for the clusters a comparison starts."""
from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Distinct ports the kernel just handed out for 127.0.0.1 (held open together;
    a small race with other programs remains until the servers bind them)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
