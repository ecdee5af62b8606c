"""cluster/ports.py: free ports below the kernel's ephemeral range, so an outgoing
connection's source port can never take one before its server binds it."""
from __future__ import annotations

import socket

import pytest

from cluster import ports


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    chosen = ports.free_ports(40)
    assert len(set(chosen)) == 40
    assert all(ports.LOWEST <= p < ports.ephemeral_low() for p in chosen)
    for port in chosen:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "ephemeral_low", lambda: ports.LOWEST + 1100)  # 1,100 candidates
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(ports, "LOWEST", taken - 550)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: taken + 551)
        for _ in range(20):
            assert taken not in ports.free_ports(100)


def test_a_narrow_range_falls_back_to_the_kernels_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "ephemeral_low", lambda: ports.LOWEST + 10)
    chosen = ports.free_ports(5)
    assert len(set(chosen)) == 5 and all(p >= ports.LOWEST + 10 for p in chosen)
