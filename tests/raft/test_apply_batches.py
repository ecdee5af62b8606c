"""Committed entries come out in bounded batches (etcd-io/raft's
MaxCommittedSizePerReady): a node far behind, or one replaying its log after a
restart, applies a long backlog a batch per Ready, so its caller answers peers
between batches instead of stalling past an election timeout (issue 20)."""
from __future__ import annotations

import pytest

from node.raft import ConfChangeKind, ConfChangeSingle, ConfState, HardState, enter_joint
from tests.raft.harness import Harness, entries_of, make_config

BOUND = 25  # bytes of payload per batch: two 10-byte entries, never three


def test_config_refuses_a_bound_below_one_byte() -> None:
    with pytest.raises(ValueError, match="max_committed_size_per_ready"):
        make_config(1, max_committed_size_per_ready=0)


def test_a_lagging_follower_applies_its_backlog_in_bounded_batches() -> None:
    h = Harness(3, max_committed_size_per_ready=BOUND)
    h.elect(1)
    h.isolate(3)
    h.propose(1, *[b"%010d" % i for i in range(9)])
    h.stabilize()
    h.heal()
    h.tick(1, 1)  # a heartbeat: node 3 answers, the leader sends the backlog
    h.stabilize()
    batches = [rd.committed_entries for rd in h.readies[3] if rd.committed_entries]
    applied = [e.index for batch in batches for e in batch]
    assert applied == list(range(1, h[1].log.committed + 1)), "each entry once, in order"
    assert max(sum(len(e.data) for e in batch) for batch in batches) <= BOUND
    assert max(len(batch) for batch in batches) == 2
    assert h[3].log.applied == h[3].log.committed == h[1].log.committed


def test_has_ready_stays_true_while_committed_entries_remain() -> None:
    """The caller's loop keeps turning (it must not sleep) until the last batch is out;
    the applied index follows each partial batch, and nothing is handed out twice."""
    entries = entries_of([1] * 7, data=b"0123456789")
    h = Harness(1, logs={1: entries}, hard_states={1: HardState(1, 0, 7)},
                max_committed_size_per_ready=BOUND)
    core = h[1]
    seen = []
    while core.has_ready():
        rd = h.persist(1)
        assert rd is not None
        seen.append([e.index for e in rd.committed_entries])
        assert core.log.applied == (seen[-1][-1] if seen[-1] else core.log.applied)
    assert [i for batch in seen for i in batch] == list(range(1, 8))
    assert [len(b) for b in seen if b] == [2, 2, 2, 1]


def test_an_entry_larger_than_the_bound_is_applied_alone() -> None:
    h = Harness(3, max_committed_size_per_ready=BOUND)
    h.elect(1)
    h.propose(1, b"x" * 100, b"y")
    h.stabilize()
    sizes = [[len(e.data) for e in rd.committed_entries] for rd in h.readies[2] if rd.committed_entries]
    assert [100] in sizes and h[2].log.applied == h[1].log.committed


def test_leader_uncommitted_bytes_drain_to_zero_across_partial_batches() -> None:
    """The backpressure count is released as each partial batch is applied, exactly
    once per entry: after everything is applied nothing is left counted."""
    h = Harness(3, max_committed_size_per_ready=BOUND, max_uncommitted_bytes=1000)
    h.elect(1)
    h.propose(1, *[b"%010d" % i for i in range(20)])
    assert h[1].uncommitted_size == 200
    h.stabilize()
    assert h[1].log.applied == h[1].log.committed and h[1].uncommitted_size == 0


def test_auto_leave_waits_until_the_joint_entry_is_applied_batch_by_batch() -> None:
    """Thesis §4.3 with etcd's auto leave: the leader proposes leaving the joint
    configuration only once the entry entering it is applied -- with one entry per
    batch that is several Readys after it committed, and the leave still happens."""
    h = Harness(3, learners=(4,), election_ticks=10, max_committed_size_per_ready=1)
    h.elect(1)
    h.propose(1, *[b"payload%d" % i for i in range(5)])
    index = h[1].propose_conf_change(enter_joint([ConfChangeSingle(ConfChangeKind.PROMOTE, 4, b"")], True))
    while h[1].log.committed < index:
        h.persist_all()
        h.deliver()
    h.persist(1)  # one batch: one entry of the backlog
    assert h[1].log.applied < index, "the backlog before the joint entry is still being applied"
    h.tick(1)  # an input while not yet applied: no leave yet
    assert h[1].log.last_index() == index
    h.stabilize()
    h.tick(1)
    h.stabilize()
    assert h[1].conf == ConfState((1, 2, 3, 4)) and not h[1].conf.joint
    assert h[1].log.applied == h[1].log.committed > index
