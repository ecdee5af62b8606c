"""The Raft log as the core sees it: a snapshot prefix, then entries in memory.

Layout (indexes):
    ... compacted ... | snapshot_index | ... stable_index | ... in_progress_index | ... last_index
                          (term known)    persisted         handed out to persist   unstable tail

`in_progress_index` is what Ready batches have handed out for persisting; the
caller reports each write durable later (`stable_to`), so with asynchronous
storage writes several batches may be in flight (etcd-io/raft's
offsetInProgress). With synchronous writes the two indexes move together.

Invariants:
* snapshot_index <= applied <= committed <= last_index
* snapshot_index <= stable_index <= in_progress_index <= last_index
* entries[k].index == snapshot_index + 1 + k

The core keeps every entry after the latest snapshot in memory; the storage layer
bounds that by snapshotting and calling `compact`.
"""
from __future__ import annotations

from collections.abc import Sequence

from .errors import LogCompacted
from .types import Entry, EntryKind, Index, Snapshot, Term


class RaftLog:
    __slots__ = (
        "entries", "snapshot_index", "snapshot_term", "snapshot", "stable_index", "in_progress_index",
        "committed", "applied", "pending_snapshot", "conf_indexes",
    )

    def __init__(self, snapshot: Snapshot | None = None, entries: Sequence[Entry] = (),
                 committed: Index = Index(0)) -> None:
        meta = snapshot.meta if snapshot is not None else None
        self.snapshot: Snapshot | None = snapshot
        self.snapshot_index = meta.index if meta else Index(0)
        self.snapshot_term = meta.term if meta else Term(0)
        self.entries: list[Entry] = [e for e in entries if e.index > self.snapshot_index]
        for k, e in enumerate(self.entries):
            if e.index != self.snapshot_index + 1 + k:
                raise ValueError(f"log entries are not contiguous after the snapshot at {e}")
        # Indexes of the CONF_CHANGE entries in `entries`, ascending: the core reads the
        # membership in effect from the last one (thesis §4.1).
        self.conf_indexes: list[Index] = [
            e.index for e in self.entries if e.kind is EntryKind.CONF_CHANGE]
        self.stable_index = self.in_progress_index = self.last_index()
        if committed > self.last_index():
            # Storage lost entries it had acknowledged: never paper over that.
            raise ValueError(f"persisted commit index {committed} is beyond the recovered log "
                             f"(last index {self.last_index()}): storage lost entries")
        self.committed = max(self.snapshot_index, committed)
        # The caller restores the state machine from the snapshot before anything else.
        self.applied = self.snapshot_index
        # A snapshot received from the leader that the caller has not installed yet.
        self.pending_snapshot: Snapshot | None = None

    # -- positions ---------------------------------------------------------------
    def first_index(self) -> Index:
        return Index(self.snapshot_index + 1)

    def last_index(self) -> Index:
        return Index(self.snapshot_index + len(self.entries))

    def last_term(self) -> Term:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index: Index) -> Term:
        """Term of the entry at `index`; 0 beyond the last index (no such entry).
        Raises LogCompacted below the snapshot."""
        offset = index - self.snapshot_index
        if offset == 0:
            return self.snapshot_term
        if offset < 0:
            raise LogCompacted(f"index {index} is compacted (snapshot at {self.snapshot_index})")
        if offset > len(self.entries):
            return Term(0)
        return self.entries[offset - 1].term

    def match_term(self, index: Index, term: Term) -> bool:
        """Whether we hold an entry at `index` with `term`. Past our last index we hold
        nothing -- not even the 0 that `term_at` reports there -- so nothing matches."""
        if index > self.last_index():
            return False
        try:
            return self.term_at(index) == term
        except LogCompacted:
            return False

    def is_up_to_date(self, last_index: Index, last_term: Term) -> bool:
        """Raft §5.4.1 election restriction: the other log is at least as up to date
        as ours -- later last term, or same last term and at least as long."""
        ours = self.last_term()
        return last_term > ours or (last_term == ours and last_index >= self.last_index())

    # -- reading -----------------------------------------------------------------
    def slice(self, lo: Index, hi: Index, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), at least one, stopping before `max_bytes` of payload."""
        if lo <= self.snapshot_index:
            raise LogCompacted(f"index {lo} is compacted (snapshot at {self.snapshot_index})")
        base = self.snapshot_index + 1
        out = self.entries[lo - base:hi - base]
        size = 0
        for k, e in enumerate(out):
            size += len(e.data)
            if size > max_bytes and k > 0:
                return out[:k]
        return out

    def entry_at(self, index: Index) -> Entry:
        """The entry at `index`, which must be in memory (snapshot_index < index <= last)."""
        assert self.snapshot_index < index <= self.last_index(), f"no entry {index} in memory"
        return self.entries[index - self.snapshot_index - 1]

    def unstable_entries(self) -> list[Entry]:
        """The entries no Ready has handed out for persisting yet."""
        return self.entries[self.in_progress_index - self.snapshot_index:]

    def has_unstable_entries(self) -> bool:
        return self.in_progress_index < self.snapshot_index + len(self.entries)

    def accept_unstable(self, index: Index) -> None:
        """A Ready handed out the entries up to `index` (the caller persists them)."""
        if index > self.in_progress_index:
            self.in_progress_index = index

    def next_committed_entries(self, max_bytes: int) -> list[Entry]:
        """The committed entries not yet handed out for applying, in order: at least
        one, stopping before `max_bytes` of payload (etcd-io/raft's
        MaxCommittedSizePerReady), so a follower far behind or a restart replaying
        its log applies in bounded batches, one per Ready."""
        if self.pending_snapshot is not None or self.committed <= self.applied:
            return []  # the snapshot must be installed before anything after it applies
        return self.slice(Index(self.applied + 1), Index(self.committed + 1), max_bytes)

    def has_next_committed_entries(self) -> bool:
        return self.pending_snapshot is None and self.committed > self.applied

    def find_conflict(self, entries: Sequence[Entry]) -> Index:
        """First index among `entries` whose term differs from ours (or that we do not
        have); 0 when all of them are already in the log."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return Index(0)

    def find_conflict_by_term(self, index: Index, term: Term) -> tuple[Index, Term]:
        """The largest (i, term_at(i)) with i <= index and term_at(i) <= term: the
        fast-backtracking hint. Every entry in (i, index] has a term > `term`, so none
        can match a leader's entry whose term is <= `term`. The snapshot is a floor:
        the search stops there even if the snapshot's term is above `term` (valid logs
        never get there; at worst it costs one more round trip)."""
        index = min(index, self.last_index())
        while index > self.snapshot_index:
            t = self.entries[index - self.snapshot_index - 1].term
            if t <= term:
                return index, t
            index = Index(index - 1)
        if index == self.snapshot_index:
            return index, self.snapshot_term
        return index, Term(0)

    # -- writing -----------------------------------------------------------------
    def append(self, entries: Sequence[Entry]) -> None:
        """Append, truncating any conflicting suffix first. The overwritten entries
        were never committed (Log Matching + Leader Completeness); asserted."""
        if not entries:
            return
        first = entries[0].index
        assert first > self.committed, f"overwriting committed index {first} <= {self.committed}"
        assert first <= self.last_index() + 1, f"gap: appending {first} after {self.last_index()}"
        del self.entries[first - self.snapshot_index - 1:]
        self.entries.extend(entries)
        conf = self.conf_indexes
        while conf and conf[-1] >= first:
            conf.pop()  # a truncated membership change is no longer in effect
        conf.extend(e.index for e in entries if e.kind is EntryKind.CONF_CHANGE)
        if self.in_progress_index >= first:
            self.in_progress_index = Index(first - 1)
            if self.stable_index >= first:
                self.stable_index = Index(first - 1)

    def maybe_append(self, prev_index: Index, prev_term: Term, leader_commit: Index,
                     entries: Sequence[Entry]) -> Index | None:
        """The follower side of AppendEntries (Raft §5.3). Returns the last index now
        known to match the leader, or None when (prev_index, prev_term) does not match."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = Index(prev_index + len(entries))
        conflict = self.find_conflict(entries)
        if conflict:
            self.append(entries[conflict - prev_index - 1:])
        self.commit_to(min(leader_commit, last_new))
        return last_new

    def commit_to(self, index: Index) -> None:
        if index > self.committed:
            assert index <= self.last_index(), f"commit {index} beyond last {self.last_index()}"
            self.committed = index

    def stable_to(self, index: Index, term: Term) -> None:
        """The caller persisted entries up to (index, term). Ignored when that entry was
        overwritten meanwhile (the write that overwrote it reports its own entries)."""
        if index > self.stable_index and self.match_term(index, term):
            self.stable_index = index
            if index > self.in_progress_index:
                self.in_progress_index = index

    def applied_to(self, index: Index) -> None:
        assert self.applied <= index <= self.committed, (
            f"applied {index} outside [{self.applied}, {self.committed}]")
        self.applied = index

    def maybe_restore(self, snapshot: Snapshot) -> bool:
        """A leader's InstallSnapshot (Raft §7). Returns whether the log now starts at
        `snapshot`: not when it is stale (we committed all of it already), nor when we
        hold its last entry (then only commit moves up to it)."""
        meta = snapshot.meta
        if meta.index <= self.committed:
            return False
        if self.match_term(meta.index, meta.term):
            self.commit_to(meta.index)
            return False
        self.restore(snapshot)
        return True

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by `snapshot` (InstallSnapshot, Raft §7)."""
        self.entries = []
        self.conf_indexes = []
        self.snapshot = snapshot
        self.snapshot_index = snapshot.meta.index
        self.snapshot_term = snapshot.meta.term
        self.stable_index = self.in_progress_index = self.snapshot_index
        self.committed = self.snapshot_index
        self.pending_snapshot = snapshot

    def snapshot_installed(self, snapshot: Snapshot) -> None:
        if self.pending_snapshot is snapshot:
            self.pending_snapshot = None
            self.applied = max(self.applied, snapshot.meta.index)

    def compact(self, snapshot: Snapshot) -> list[Entry]:
        """Drop entries covered by a snapshot the caller took at an applied index, and
        return the log's previous entry list: its first `index - previous snapshot
        index` entries are the dropped ones, the rest is shared with the new list.

        Freeing hundreds of thousands of entries is tens of ms of CPU, so the caller
        releases that list a slice at a time. Even copying the prefix out touches
        every dropped entry's reference count, scattered over the heap: slicing and
        deleting 1,000,000 entries were ~40 ms of cache misses in the loop turn
        that committed a snapshot (80-106 ms of CPU at 3.3-4.2M keys). The new
        list copies only the tail after the snapshot, a few entries."""
        index = snapshot.meta.index
        if index <= self.snapshot_index:
            return []
        if index > self.applied:
            raise ValueError(f"cannot compact to {index}: only {self.applied} is applied")
        if self.term_at(index) != snapshot.meta.term:
            raise ValueError(f"snapshot term {snapshot.meta.term} != log term at {index}")
        previous = self.entries
        self.entries = previous[index - self.snapshot_index:]
        # The snapshot is durable, so everything it covers is too (a write of some of
        # those entries may still be in flight: it reports nothing new when it ends).
        self.stable_index = max(self.stable_index, index)
        self.in_progress_index = max(self.in_progress_index, index)
        self.conf_indexes = [i for i in self.conf_indexes if i > index]
        self.snapshot = snapshot
        self.snapshot_index = index
        self.snapshot_term = snapshot.meta.term
        return previous
