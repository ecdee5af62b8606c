"""The leader's replication to one follower (Raft §5.3, §7), paced by its Progress
(etcd's flow control): which AppendEntries or InstallSnapshot it needs next, and
what its answers mean. Functions of the log and one Progress; the core sends what
they return and decides what commits.
"""
from __future__ import annotations

from .errors import LogCompacted
from .log import RaftLog
from .messages import AppendEntries, AppendEntriesResponse, InstallSnapshot
from .progress import Progress, ProgressState
from .types import Index, NodeId, Term


def next_append(log: RaftLog, pr: Progress, src: NodeId, dst: NodeId, term: Term,
                max_size: int, allow_empty: bool = True) -> AppendEntries | InstallSnapshot | None:
    """The message `dst` needs next, recorded in `pr` as sent: the entries from
    `pr.next` on (at most `max_size` bytes, at least one entry), or the snapshot when
    they are compacted away. None while `pr` is paused, when there is nothing new and
    `allow_empty` is False, or when only a snapshot would do and none may be sent."""
    if pr.is_paused():
        return None
    last = log.last_index()
    prev = Index(pr.next - 1)
    try:
        prev_term = log.term_at(prev)
        entries = log.slice(pr.next, Index(last + 1), max_size) if pr.next <= last else []
    except LogCompacted:
        snapshot = log.snapshot
        if not pr.recent_active or snapshot is None:
            return None  # do not stream a snapshot to a peer that may be down
        pr.become_snapshot(snapshot.meta.index)
        return InstallSnapshot(src, dst, term, snapshot)
    if not entries and not allow_empty:
        return None
    pr.sent_entries(entries[-1].index if entries else prev, len(entries))
    return AppendEntries(src, dst, term, prev, prev_term, tuple(entries), log.committed)


def maybe_acknowledge(pr: Progress, index: Index) -> bool:
    """The follower holds our log up to `index`. False for a duplicate or reordered
    acknowledgement; else the logs are known to agree: replicate optimistically."""
    if not pr.maybe_update(index) and not (
            pr.state is ProgressState.PROBE and index == pr.match):
        return False
    if pr.state is ProgressState.PROBE or (
            pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot):
        pr.become_replicate()
    return True


def maybe_back_off(log: RaftLog, pr: Progress, m: AppendEntriesResponse) -> bool:
    """The follower rejected `m.index`: move `pr.next` back and probe. False when the
    rejection is stale. Fast backtracking: the follower's hint (index, term) says
    every entry in (hint_index, rejected] has a term > hint_term there. Skip, in our
    log, every entry with term > hint_term too: one round trip per term, not per entry."""
    hint_next = Index(m.hint_index + 1)
    if m.hint_term > 0:
        try:
            hint_next = Index(log.find_conflict_by_term(m.hint_index, m.hint_term)[0] + 1)
        except LogCompacted:
            pass
    if not pr.maybe_decrease_to(m.index, hint_next):
        return False
    if pr.state is ProgressState.REPLICATE:
        pr.become_probe()
    return True
