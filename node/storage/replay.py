"""Rebuilding the log from WAL records, in write order. Pure: no I/O.

Theory of operation. The WAL is append-only; nothing is ever rewritten in place. Three
record kinds change the log, and replaying them in order yields exactly the state the
writer had after its last durable record:

* ENTRIES(first, batch) replaces every entry from ``first`` on with ``batch``: that is
  how the core's "truncate the conflicting suffix, then append" is stored (etcd's WAL
  does the same). The old suffix stays in the file until compaction, but is dead.
* SNAPSHOT(index, term) is the commit point of a snapshot. Raft §7: if the log holds
  an entry at ``index`` with ``term``, the entries after it are kept; otherwise the
  whole log is discarded. Entries at or below the snapshot are dropped either way.
* HARD_STATE: the last one wins.

Compaction deletes whole segments from the front, so the first surviving segment may
begin past the snapshot its preamble names: the entries in between are missing. Such a
*gap* is legal only if the newest snapshot covers it; ``finish`` checks that and raises
SegmentMissing (naming where the gap was seen) when it does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from node.raft.types import Entry, HardState

from .errors import SegmentMissing
from .records import SnapshotMarker


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record was read: for error messages."""

    path: Path
    offset: int


@dataclass(slots=True)
class LogReplay:
    """The log being rebuilt. Invariants: ``snap_index <= base_index``; entries[k] has
    index base_index + 1 + k; indexes in (snap_index, base_index] are a gap (unknown)."""

    snap_index: int = 0
    snap_term: int = 0
    base_index: int = 0
    entries: list[Entry] = field(default_factory=list)
    hard_state: HardState = field(default_factory=HardState)
    marker: SnapshotMarker | None = None
    gap_seen_at: Position | None = None

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    def term_at(self, index: int) -> int | None:
        if index == self.snap_index:
            return self.snap_term
        if self.base_index < index <= self.last_index:
            return self.entries[index - self.base_index - 1].term
        return None

    def on_entries(self, first: int, batch: list[Entry], where: Position) -> None:
        if first <= self.snap_index:
            # Already covered by the snapshot; only the part after it can matter.
            batch = batch[self.snap_index + 1 - first :]
            first = self.snap_index + 1
            if not batch:
                return
        if self.base_index < first <= self.last_index + 1:
            del self.entries[first - self.base_index - 1 :]
            self.entries.extend(batch)
            return
        if first > self.last_index + 1:
            self.gap_seen_at = where
        # Either a new gap opens before ``first``, or ``first`` falls inside the gap
        # and shrinks it; both leave ``batch`` as the whole known log.
        self.entries = list(batch)
        self.base_index = first - 1

    def on_hard_state(self, state: HardState) -> None:
        self.hard_state = state

    def on_snapshot(self, marker: SnapshotMarker) -> None:
        index, term = marker.meta.index, marker.meta.term
        if index <= self.snap_index:
            return  # an older snapshot re-stated in a segment preamble
        self.marker = marker
        if index <= self.base_index:
            pass  # inside the gap: the gap shrinks, the known entries stay
        elif self.term_at(index) == term:
            del self.entries[: index - self.base_index]
            self.base_index = index
        else:
            self.entries = []
            self.base_index = index
        self.snap_index, self.snap_term = index, term

    def finish(self) -> list[Entry]:
        """The entries after the newest snapshot. Raises SegmentMissing on a gap."""
        if self.base_index > self.snap_index:
            where = self.gap_seen_at
            assert where is not None, "a gap always records where it was seen"
            raise SegmentMissing(
                where.path,
                where.offset,
                f"entries {self.snap_index + 1}..{self.base_index} are missing and no "
                f"snapshot covers them (snapshot index {self.snap_index})",
            )
        return self.entries
