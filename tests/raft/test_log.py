"""RaftLog: positions, compaction boundaries, slicing, the unstable tail (§5.3, §7)."""
from __future__ import annotations

import pytest

from node.raft import Entry, LogCompacted, Snapshot, SnapshotMeta
from node.raft.log import RaftLog
from tests.raft.harness import entries_of


def snapshot_at(index: int, term: int) -> Snapshot:
    return Snapshot(SnapshotMeta(index, term))


def compacted_log() -> RaftLog:
    """Snapshot at (5, 2), then entries 6..8 of terms 2, 3, 3."""
    return RaftLog(snapshot_at(5, 2), entries_of([2, 3, 3], start=6), committed=7)


def test_positions_after_a_snapshot() -> None:
    """§7: after compaction the first index is snapshot index + 1 and the snapshot
    still answers the term of its last included entry."""
    log = compacted_log()
    assert (log.first_index(), log.last_index(), log.last_term()) == (6, 8, 3)
    assert log.term_at(5) == 2 and log.term_at(6) == 2 and log.term_at(8) == 3
    assert log.term_at(9) == 0
    with pytest.raises(LogCompacted):
        log.term_at(4)
    assert not log.match_term(4, 2)
    assert log.applied == 5 and log.committed == 7


def test_persisted_commit_beyond_the_recovered_log_fails_stop() -> None:
    """Figure 2: committed entries are durable; a persisted commit index past the
    recovered log means storage lost acknowledged entries -- refuse to start."""
    with pytest.raises(ValueError):
        RaftLog(None, entries_of([1, 1]), committed=9)
    assert RaftLog(None, entries_of([1, 1]), committed=2).committed == 2


def test_entries_must_be_contiguous_after_the_snapshot() -> None:
    with pytest.raises(ValueError):
        RaftLog(None, [Entry(1, 1), Entry(1, 3)])


@pytest.mark.parametrize(("last_term", "last_index", "expected"), [
    (3, 8, True), (3, 9, True), (3, 7, False), (2, 100, False), (4, 1, True),
])
def test_is_up_to_date_compares_last_term_then_last_index(
        last_term: int, last_index: int, expected: bool) -> None:
    """§5.4.1: later last term wins; with equal last terms, the longer log."""
    assert compacted_log().is_up_to_date(last_index, last_term) is expected


def test_slice_respects_max_bytes_but_returns_at_least_one_entry() -> None:
    log = RaftLog(None, [Entry(1, i, b"x" * 10) for i in range(1, 6)])
    assert [e.index for e in log.slice(1, 6, 25)] == [1, 2]
    assert [e.index for e in log.slice(1, 6, 1)] == [1]
    assert [e.index for e in log.slice(2, 4, 1000)] == [2, 3]


def test_slice_below_the_snapshot_raises_log_compacted() -> None:
    with pytest.raises(LogCompacted):
        compacted_log().slice(5, 8, 100)


def test_append_truncates_a_conflicting_suffix_and_rewinds_stable() -> None:
    """§5.3: new entries replace the suffix from their first index; the overwritten
    part is no longer stable, the new part must be persisted."""
    log = RaftLog(None, entries_of([1, 1, 1, 1]), committed=1)
    log.append([Entry(2, 3, b"n")])
    assert [e.term for e in log.entries] == [1, 1, 2]
    assert log.unstable_entries() == [Entry(2, 3, b"n")]


def test_append_never_overwrites_a_committed_entry() -> None:
    """Leader Completeness: a committed entry is never replaced; trying is a bug."""
    log = RaftLog(None, entries_of([1, 1]), committed=2)
    with pytest.raises(AssertionError):
        log.append([Entry(2, 2)])


def test_stable_to_ignores_an_entry_overwritten_since_the_ready() -> None:
    """An acknowledgement of a persisted entry that was overwritten meanwhile (same
    index, other term) must not mark the new entry stable."""
    log = RaftLog(None, entries_of([1]))
    log.append([Entry(1, 2)])
    log.append([Entry(2, 2)])
    log.stable_to(2, 1)
    assert log.unstable_entries() == [Entry(2, 2)]
    log.stable_to(2, 2)
    assert log.unstable_entries() == []


ALL = 1 << 30  # a bound on committed bytes per batch that nothing here reaches


def test_committed_entries_are_handed_out_once() -> None:
    log = RaftLog(None, entries_of([1, 1, 1]), committed=2)
    assert [e.index for e in log.next_committed_entries(ALL)] == [1, 2]
    log.applied_to(2)
    assert log.next_committed_entries(ALL) == []
    log.commit_to(3)
    assert [e.index for e in log.next_committed_entries(ALL)] == [3]


def test_committed_entries_come_in_batches_bounded_by_bytes_at_least_one_entry() -> None:
    """etcd-io/raft's MaxCommittedSizePerReady: a long committed backlog is handed out
    in batches of at most `max_bytes` of payload, but never an empty batch: an entry
    larger than the bound goes alone."""
    entries = [Entry(1, i, b"x" * size) for i, size in enumerate([10, 10, 10, 50, 10], start=1)]
    log = RaftLog(None, entries, committed=5)
    batches = []
    while log.has_next_committed_entries():
        batch = log.next_committed_entries(25)
        batches.append([e.index for e in batch])
        log.applied_to(batch[-1].index)
    assert batches == [[1, 2], [3], [4], [5]]
    assert log.applied == 5 and log.next_committed_entries(25) == []


def test_compact_drops_the_prefix_covered_by_an_applied_snapshot() -> None:
    """§7: a snapshot replaces the committed, applied prefix of the log."""
    log = RaftLog(None, entries_of([1, 1, 2, 2]), committed=4)
    log.applied_to(3)
    with pytest.raises(ValueError):
        log.compact(snapshot_at(4, 2))  # not applied yet
    with pytest.raises(ValueError):
        log.compact(snapshot_at(3, 1))  # wrong term at 3
    kept = log.entries[3:]
    previous = log.compact(snapshot_at(3, 2))
    assert (log.first_index(), log.last_index(), log.term_at(3)) == (4, 4, 2)
    # The previous list handed back, for the caller to free a slice per loop turn:
    # the dropped prefix, then the entries the log still holds (shared, not copied).
    assert [(e.index, e.term) for e in previous[:3]] == [(1, 1), (2, 1), (3, 2)]
    assert previous[3:] == log.entries == kept and previous is not log.entries
    assert log.compact(snapshot_at(2, 1)) == []  # older than what we have: ignored
    assert log.first_index() == 4


def test_restore_replaces_the_log_and_holds_applying_until_installed() -> None:
    """§7: a snapshot from the leader replaces the follower's log; nothing after it
    is applied before the state machine is restored from it."""
    log = RaftLog(None, entries_of([1, 1]), committed=1)
    snap = snapshot_at(10, 3)
    log.restore(snap)
    assert (log.first_index(), log.last_index(), log.committed) == (11, 10, 10)
    assert log.pending_snapshot is snap
    log.append([Entry(3, 11)])
    log.commit_to(11)
    assert log.next_committed_entries(ALL) == [] and not log.has_next_committed_entries()
    log.snapshot_installed(snap)
    assert log.applied == 10
    assert [e.index for e in log.next_committed_entries(ALL)] == [11]


def test_append_whose_prev_index_is_beyond_the_log_is_rejected_whatever_its_term() -> None:
    """§5.3 consistency check: "reply false if log doesn't contain an entry at
    prevLogIndex". An index past our last entry holds nothing, so no prev_log_term --
    not even 0, the term `term_at` reports for "no such entry" -- can match it.

    (A correct leader never sends prev_log_term 0 for an index >= 1, but a decoded
    message must not make a follower acknowledge entries it lacks.)"""
    log = RaftLog(None, entries_of([1, 1]))
    assert not log.match_term(5, 0)
    assert log.maybe_append(5, 0, 0, []) is None
    assert log.last_index() == 2 and log.committed == 0
