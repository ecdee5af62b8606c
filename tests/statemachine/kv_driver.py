"""Test support: a state machine fed through its real entry point (bytes at
increasing log indexes), so every test also exercises the command codec."""
from __future__ import annotations

from cluster.kv import LeaseGrant, Limits, Request, Result, encode_command
from node.statemachine import StateMachine


class Driver:
    def __init__(self, limits: Limits = Limits(), machine: StateMachine | None = None) -> None:
        self.machine = machine if machine is not None else StateMachine(limits)
        self.index = self.machine.applied_index

    def __call__(self, request: Request, client_id: int = 0, seq: int = 0) -> Result:
        return self.raw(encode_command(request, client_id, seq))

    def raw(self, data: bytes) -> Result:
        self.index += 1
        return self.machine.apply(self.index, data)

    @classmethod
    def with_leases(cls, *ids: int, ttl: int = 60) -> Driver:
        """A driver whose machine already holds these leases (granted at the first
        indexes; grants make no revision), so puts may name them."""
        kv = cls()
        for lease in ids:
            kv(LeaseGrant(ttl, lease))
        return kv

    def skip(self, entries: int = 1) -> None:
        """Entries without a command (leader no-ops)."""
        for _ in range(entries):
            self.index += 1
            self.machine.apply_empty(self.index)
