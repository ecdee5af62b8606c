"""Raft's safety properties (paper Figure 3), checked incrementally after every event.

Logs are compared through a hash chain: h(i) = hash(h(i-1), term_i, kind_i, data_i).
Two logs share an entry (index, term) with the same chain hash exactly when they agree
on that entry and every entry before it -- which is Log Matching -- so every check is
O(1) per entry instead of a scan of every log.
"""
from __future__ import annotations

from collections.abc import Callable

from node.raft import NONE, Entry, HardState


class InvariantViolation(AssertionError):
    """A Raft safety property does not hold: a bug, never an expected outcome."""


def chain_hash(prev: int, entry: Entry) -> int:
    return hash((prev, entry.term, entry.kind, entry.data))


class InvariantChecker:
    def __init__(self) -> None:
        self.leader_of_term: dict[int, int] = {}  # Election Safety
        self.chain_at: dict[tuple[int, int], int] = {}  # Log Matching
        self.committed_hash: dict[int, int] = {0: 0}  # the one committed log
        self.max_committed = 0
        self.applied_at: dict[int, tuple[int, bytes]] = {}  # State Machine Safety

    def fail(self, rule: str, detail: str) -> None:
        raise InvariantViolation(f"{rule}: {detail}")

    def election(self, node: int, term: int) -> None:
        """Election Safety: at most one leader per term."""
        other = self.leader_of_term.setdefault(term, node)
        if other != node:
            self.fail("Election Safety", f"nodes {other} and {node} both led term {term}")

    def appended(self, node: int, index: int, term: int, h: int) -> None:
        """Log Matching: equal (index, term) means equal entries up to index."""
        seen = self.chain_at.setdefault((index, term), h)
        if seen != h:
            self.fail("Log Matching", f"node {node} holds ({index}, term {term}) with a "
                      "different entry or prefix than another log")

    def hard_state(self, node: int, old: HardState, new: HardState) -> None:
        """Persisted term and commit index never decrease; at most one vote per term."""
        if new.commit < old.commit:
            self.fail("Commit monotonicity", f"node {node} commit {old.commit} -> {new.commit}")
        if new.term < old.term:
            self.fail("Term monotonicity", f"node {node} term {old.term} -> {new.term}")
        if new.term == old.term and old.vote != NONE and new.vote != old.vote:
            self.fail("One vote per term", f"node {node} voted {old.vote} then {new.vote} "
                      f"in term {new.term}")

    def committed(self, node: int, index: int, h: int) -> None:
        """Every node that commits index i commits the same log prefix up to i."""
        seen = self.committed_hash.setdefault(index, h)
        if seen != h:
            self.fail("Committed entries agree", f"node {node} committed a different "
                      f"entry or prefix at {index}")
        if index > self.max_committed:
            self.max_committed = index

    def leader_completeness(self, node: int, term: int, hash_at: Callable[[int], int | None],
                            snapshot_index: int) -> None:
        """Leader Completeness: a new leader's log holds every entry committed so far."""
        index = max(self.max_committed, snapshot_index)
        if hash_at(index) != self.committed_hash.get(index):
            self.fail("Leader Completeness", f"node {node} leads term {term} but lacks "
                      f"committed entries up to {self.max_committed}")

    def applied(self, node: int, entry: Entry) -> None:
        """State Machine Safety: no two nodes apply different entries at one index."""
        seen = self.applied_at.setdefault(entry.index, (entry.term, entry.data))
        if seen != (entry.term, entry.data):
            self.fail("State Machine Safety", f"node {node} applied {entry} at "
                      f"{entry.index}, another node applied term {seen[0]} there")
