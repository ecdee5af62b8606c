"""A node's simulated stable storage: what survives a crash. Every write here is
'fsynced' the moment it happens; what a crash loses is what never reached it."""
from __future__ import annotations

from node.raft import ConfState, Entry, EntryKind, HardState, Snapshot, decode_conf_change

from .invariants import InvariantChecker, chain_hash


class SimDisk:
    def __init__(self, node: int, checker: InvariantChecker) -> None:
        self.node = node
        self.checker = checker
        self.hard_state = HardState()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.hashes: list[int] = []  # chain hash of each entry, parallel to `entries`
        self.base_hash = 0  # chain hash at the snapshot index
        self.conf_entries: list[Entry] = []  # the CONF_CHANGE entries in `entries`

    def latest_conf(self) -> ConfState | None:
        """The membership the durable log says is in effect: its latest conf entry's,
        else its snapshot's (None when neither says)."""
        if self.conf_entries:
            return decode_conf_change(self.conf_entries[-1].data).result
        if self.snapshot is not None:
            conf = self.snapshot.meta.conf
            return conf if conf.voters or conf.learners else None
        return None

    @property
    def snapshot_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    def last_index(self) -> int:
        return self.snapshot_index + len(self.entries)

    def hash_at(self, index: int) -> int | None:
        offset = index - self.snapshot_index
        if offset == 0:
            return self.base_hash
        if 0 < offset <= len(self.hashes):
            return self.hashes[offset - 1]
        return None

    def append(self, entries: list[Entry]) -> None:
        """Append, truncating the log from entries[0].index first (crash-safe in a
        real WAL; atomic here)."""
        first = entries[0].index
        cut = first - self.snapshot_index - 1
        assert 0 <= cut <= len(self.entries), f"node {self.node}: append at {first} leaves a gap"
        del self.entries[cut:]
        del self.hashes[cut:]
        while self.conf_entries and self.conf_entries[-1].index >= first:
            self.conf_entries.pop()
        self.conf_entries.extend(e for e in entries if e.kind is EntryKind.CONF_CHANGE)
        prev = self.hashes[-1] if self.hashes else self.base_hash
        for e in entries:
            prev = chain_hash(prev, e)
            self.checker.appended(self.node, e.index, e.term, prev)
            self.entries.append(e)
            self.hashes.append(prev)

    def save_hard_state(self, hs: HardState) -> None:
        self.checker.hard_state(self.node, self.hard_state, hs)
        old_commit = self.hard_state.commit
        self.hard_state = hs
        for i in range(max(old_commit, self.snapshot_index) + 1, hs.commit + 1):
            h = self.hash_at(i)
            if h is None:
                self.checker.fail("Commit within log", f"node {self.node} committed {i} "
                                  f"beyond its durable log ({self.last_index()})")
            else:
                self.checker.committed(self.node, i, h)

    def install_snapshot(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        base = self.checker.committed_hash.get(index)
        if base is None:
            self.checker.fail("Snapshot of committed state", f"node {self.node} received a "
                              f"snapshot at {index}, which no node committed")
        self.snapshot = snapshot
        self.entries = []
        self.hashes = []
        self.conf_entries = []
        self.base_hash = base or 0

    def compact(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        h = self.hash_at(index)
        assert h is not None, f"node {self.node}: compacting to {index} outside the log"
        cut = index - self.snapshot_index
        del self.entries[:cut]
        del self.hashes[:cut]
        self.conf_entries = [e for e in self.conf_entries if e.index > index]
        self.snapshot = snapshot
        self.base_hash = h
