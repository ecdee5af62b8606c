"""Paper rules for log compaction and InstallSnapshot (§7)."""
from __future__ import annotations

from node.raft import (
    AppendEntriesResponse, ConfState, HardState, InstallSnapshot, Snapshot, SnapshotMeta,
)
from node.raft.progress import ProgressState
from tests.raft.harness import Harness, entries_of


def compacted_cluster() -> tuple[Harness, Snapshot]:
    """Leader 1 has compacted away entries that node 3 (isolated from the start)
    never received."""
    h = Harness(3)
    h.isolate(3)
    h.elect(1)
    h.propose(1, b"a", b"b", b"c")
    h.stabilize()
    leader = h[1]
    applied = leader.log.applied
    assert applied == 4
    snap = Snapshot(SnapshotMeta(applied, leader.log.term_at(applied), ConfState((1, 2, 3))),
                    data="state@4")
    leader.compact(snap)
    assert leader.log.first_index() == applied + 1
    h.heal()
    return h, snap


def heartbeat_round(h: Harness) -> None:
    h.tick(1)
    h.persist(1)
    h.deliver()  # heartbeats
    h.persist_all()
    h.deliver()  # answers


def test_lagging_follower_is_sent_install_snapshot_after_compaction() -> None:
    """§7: when the entries a follower needs were discarded, the leader sends its
    snapshot instead (InstallSnapshot)."""
    h, snap = compacted_cluster()
    heartbeat_round(h)
    h.persist(1)
    [install] = h.peek(InstallSnapshot, dst=3)
    assert install.snapshot == snap
    assert h.progress(1, 3).state is ProgressState.SNAPSHOT


def test_follower_restores_the_snapshot_before_applying_anything_after_it() -> None:
    """§7: the follower discards its log and restores the state machine from the
    snapshot: the Ready carries the snapshot and no committed entries until it is
    installed; the reply (sent after persisting) names the snapshot's index."""
    h, snap = compacted_cluster()
    heartbeat_round(h)
    h.persist(1)
    h.deliver(lambda m: isinstance(m, InstallSnapshot))
    rd = h[3].ready()
    assert rd.snapshot == snap
    assert rd.committed_entries == []
    assert rd.hard_state is not None and rd.hard_state.commit == snap.meta.index
    assert rd.messages == []
    [reply] = [m for m in rd.messages_after_persist if isinstance(m, AppendEntriesResponse)]
    assert reply.success and reply.index == snap.meta.index
    h[3].advance(rd)
    assert h[3].log.applied == snap.meta.index
    assert h[3].log.first_index() == snap.meta.index + 1
    h.queue.extend(rd.messages_after_persist)
    h.stabilize()
    assert h.progress(1, 3).state is ProgressState.REPLICATE
    h.propose(1, b"d")
    h.stabilize()
    assert [e.data for e in h.applied[3]] == [b"d"]


def test_snapshot_that_matches_the_followers_log_keeps_the_entries_after_it() -> None:
    """§7: if the follower already has the entry at the snapshot's last index with
    the same term, it keeps the entries that follow and only advances commit."""
    h = Harness(3, logs={1: entries_of([1, 1, 1, 1])}, hard_states={1: HardState(term=1)})
    snap = Snapshot(SnapshotMeta(2, 1, ConfState((1, 2, 3))))
    h[1].step(InstallSnapshot(2, 1, 1, snap))
    rd = h.persist(1)
    assert rd is not None and rd.snapshot is None
    assert h[1].log.last_index() == 4 and h[1].log.committed == 2


def test_failed_snapshot_report_sends_the_leader_back_to_probe() -> None:
    """§7 (etcd's ReportSnapshot): while a snapshot is in flight the leader sends
    the follower nothing else; if the transfer is reported failed, the follower
    goes back to probe, and the leader retries with a fresh InstallSnapshot."""
    h, snap = compacted_cluster()
    heartbeat_round(h)
    h.persist(1)
    lost = h.take(lambda m: isinstance(m, InstallSnapshot))
    assert len(lost) == 1
    for _ in range(3):  # still SNAPSHOT: heartbeats answered, nothing re-sent
        heartbeat_round(h)
        h.persist(1)
        assert not h.peek(InstallSnapshot)
    h[1].report_snapshot(3, False)
    assert h.progress(1, 3).state is ProgressState.PROBE
    heartbeat_round(h)
    h.persist(1)
    assert [m.dst for m in h.peek(InstallSnapshot)] == [3]
    h.stabilize()
    assert h[3].log.snapshot_index == snap.meta.index
    assert h.progress(1, 3).state is ProgressState.REPLICATE


def test_restart_from_a_snapshot_starts_with_applied_at_the_snapshot() -> None:
    """§7: after a restart the state machine is restored from the snapshot, and only
    committed entries after it are re-applied."""
    h, snap = compacted_cluster()
    h.stabilize()
    h.tick(1)
    h.stabilize()
    h.storage[1].snapshot = snap
    h.storage[1].entries = [e for e in h.storage[1].entries if e.index > snap.meta.index]
    h.propose(1, b"e")
    h.stabilize()
    core = h.restart(1)
    assert core.log.first_index() == snap.meta.index + 1
    h.persist(1)
    assert [e.data for e in h.applied[1]] == [b"e"]
