"""The seam where leases (issue #8) will plug into the store.

Every key already carries a lease id (0 = none) in its history. The store asks
a `LeaseHook` whether a lease exists before a put names it, and tells it when a
key joins or leaves a lease, so the lease module can keep its key sets and, on
expiry, propose the deletes through the log (every replica then deletes the
keys at the same revision). The hook must be deterministic like the rest of the
state machine: it may only depend on commands already applied.
"""
from __future__ import annotations

from typing import Protocol


class LeaseHook(Protocol):
    def exists(self, lease: int) -> bool:
        """Whether `lease` (never 0) may be attached to a key now."""
        ...

    def attach(self, lease: int, key: bytes) -> None:
        """`key` was put with `lease` (never 0)."""
        ...

    def detach(self, lease: int, key: bytes) -> None:
        """`key`, attached to `lease`, was deleted or put with another lease."""
        ...


class NoLeases:
    """Until issue #8: any lease id is accepted and recorded on the key as is;
    nothing is tracked and nothing expires."""

    def exists(self, lease: int) -> bool:
        return True

    def attach(self, lease: int, key: bytes) -> None:
        pass

    def detach(self, lease: int, key: bytes) -> None:
        pass
