"""`Membership` on its own: the configuration in effect is a function of the log
(thesis §4.1; docs/raft-core.md "Membership"), with no RaftCore around it."""
from __future__ import annotations

import pytest

from node.raft import (
    ConfChange, ConfChangeKind, ConfChangePending, ConfState, Entry, EntryKind, Index,
    LeaderNotReady, LogCompacted, NodeId, Snapshot, SnapshotMeta, Term, encode_conf_change,
)
from node.raft.log import RaftLog
from node.raft.membership import Membership

BOOT = ConfState((NodeId(1), NodeId(2), NodeId(3)))
WITH_4 = ConfState(BOOT.voters, (NodeId(4),))


def conf_entry(term: int, index: int, result: ConfState) -> Entry:
    cc = ConfChange(ConfChangeKind.ADD_LEARNER, NodeId(4), b"", result)
    return Entry(Term(term), Index(index), encode_conf_change(cc), EntryKind.CONF_CHANGE)


def test_the_latest_conf_entry_is_in_effect_committed_or_not_truncation_reverts_it() -> None:
    log = RaftLog(entries=[Entry(Term(1), Index(1))])
    m = Membership(BOOT)
    assert not m.refresh(log) and (m.conf, m.index) == (BOOT, 0)
    log.append([conf_entry(1, 2, WITH_4)])
    assert m.refresh(log) and (m.conf, m.index, m.learners) == (WITH_4, 2, {4})
    assert not m.refresh(log), "the same entry again changes nothing"
    log.append([Entry(Term(2), Index(2))])  # a new leader overwrites the uncommitted change
    assert m.refresh(log) and (m.conf, m.index, m.learners) == (BOOT, 0, frozenset())


def test_conf_at_reads_the_log_then_the_snapshot_below_it() -> None:
    log = RaftLog(entries=[Entry(Term(1), Index(1)), conf_entry(1, 2, WITH_4),
                           Entry(Term(1), Index(3))])
    m = Membership(BOOT)
    m.refresh(log)
    assert (m.conf_at(log, Index(1)), m.conf_at(log, Index(3))) == (BOOT, WITH_4)
    log.committed = log.applied = Index(3)
    log.compact(Snapshot(SnapshotMeta(Index(2), Term(1), WITH_4)))
    m.rebase(WITH_4)
    m.refresh(log)
    assert (m.conf, m.index, m.conf_at(log, Index(2))) == (WITH_4, 2, WITH_4)
    with pytest.raises(LogCompacted):
        m.conf_at(log, Index(1))


def test_a_leader_appends_a_change_only_after_the_last_one_and_its_own_term_committed() -> None:
    log = RaftLog(entries=[Entry(Term(1), Index(1)), conf_entry(1, 2, WITH_4)])
    m = Membership(BOOT)
    m.refresh(log)
    remove = ConfChange(ConfChangeKind.REMOVE, NodeId(3))
    with pytest.raises(ConfChangePending):
        m.check_proposal(remove, log, Term(1), {}, 1000)
    log.commit_to(Index(2))
    with pytest.raises(LeaderNotReady):
        m.check_proposal(remove, log, Term(2), {}, 1000)
    entry = m.check_proposal(remove, log, Term(1), {}, 1000)
    assert entry.result == ConfState((NodeId(1), NodeId(2)), (NodeId(4),))
