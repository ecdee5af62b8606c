"""The Ready/advance contract: what to persist, what may be sent when, what to
apply, and restart from what was persisted (Figure 2's persistent state)."""
from __future__ import annotations

import random

from node.raft import (
    AppendEntries, AppendEntriesResponse, Heartbeat, HeartbeatResponse, HardState, Ready,
    RequestVoteResponse, Role,
)
from tests.raft.harness import Harness, vote_request


def settled_cluster() -> Harness:
    """Leader 1, two entries committed and known committed on every node."""
    h = Harness(3)
    h.elect(1)
    h.propose(1, b"a", b"b")
    h.stabilize()
    h.tick(1)  # a heartbeat carries the final commit index to the followers
    h.stabilize()
    assert all(h[i].log.committed == 3 for i in (1, 2, 3))
    return h


def test_restart_reemits_committed_entries_and_keeps_term_and_vote() -> None:
    """Figure 2: currentTerm, votedFor and log[] are persistent; a restarted node
    resumes with them, and re-applies its committed entries (the persisted commit
    index) without waiting for a leader."""
    h = settled_cluster()
    before = h[2].status()
    persisted = h.storage[2]
    core = h.restart(2)
    assert (core.term, core.vote) == (before.term, before.vote) == (
        persisted.hard_state.term, persisted.hard_state.vote)
    assert core.role is Role.FOLLOWER
    rd = core.ready()
    assert rd.hard_state is None and rd.entries == [] and rd.snapshot is None
    assert rd.committed_entries == persisted.entries[:persisted.hard_state.commit]
    assert [e.data for e in rd.committed_entries] == [b"", b"a", b"b"]


def test_restarted_node_does_not_vote_twice_in_the_same_term() -> None:
    """§5.2 + Figure 2: because votedFor survives the restart, a node that voted for
    1 in term t refuses 3 in term t after restarting."""
    h = settled_cluster()
    term = h[2].term
    assert h[2].vote == 1
    h.restart(2)
    h[2].step(vote_request(3, 2, term, 100, term))
    h.persist(2)
    assert [m.granted for m in h.peek(RequestVoteResponse)] == [False]


def test_leader_appends_leave_now_acknowledgements_only_after_persist() -> None:
    """Thesis §10.2.1: the leader may send AppendEntries before its own write is
    durable; a follower's acknowledgement promises its write, so it waits for the
    persist (tikv/raft-rs's persisted messages)."""
    h = Harness(3)
    h.elect(1)
    h.propose(1, b"x")
    rd = h.persist(1)
    assert rd is not None and rd.entries
    assert {type(m) for m in rd.messages} == {AppendEntries} and not rd.messages_after_persist
    h.deliver()
    rd2 = h.persist(2)
    assert rd2 is not None and rd2.entries and rd2.must_sync
    assert rd2.messages == []
    assert [type(m) for m in rd2.messages_after_persist] == [AppendEntriesResponse]


def test_every_message_of_a_term_changing_ready_waits_for_the_persist() -> None:
    """Figure 2: a node must not speak for a term it has not made durable -- even a
    heartbeat answer, which by itself needs no persistence, carries the new term."""
    h = Harness(3)
    h[2].step(Heartbeat(1, 2, 7, 0))
    rd = h[2].ready()
    assert rd.hard_state == HardState(term=7, vote=0, commit=0) and rd.must_sync
    assert rd.messages == []
    assert [type(m) for m in rd.messages_after_persist] == [HeartbeatResponse]


def test_commit_only_change_needs_no_sync() -> None:
    """A commit index can be re-learned from the leader: persisting it is useful but
    need not be fsynced (etcd's MustSync); term, vote and entries must be."""
    h = settled_cluster()
    seen = len(h.readies[2])
    h.propose(1, b"c")
    h.stabilize()
    [rd] = [rd for rd in h.readies[2][seen:]
            if rd.hard_state is not None and rd.hard_state.commit == 4]
    assert rd.entries == [] and not rd.must_sync
    assert [e.data for e in rd.committed_entries] == [b"c"]


def test_advance_acknowledges_everything_in_the_ready() -> None:
    """After advance() the same entries, committed entries or messages are never
    handed out again; a quiet cluster has no Ready at all."""
    h = settled_cluster()
    for i in (1, 2, 3):
        assert not h[i].has_ready()
        assert h[i].ready() == Ready()


def test_contract_holds_over_random_runs() -> None:
    """Every Ready of a seeded random run (ticks, proposals, drops, reordering,
    partitions, restarts from what was persisted) obeys the harness's contract
    checks; no Ready hides behind has_ready() == False; at most one leader per term
    (§5.2); and each node applies indexes 1, 2, 3, ... in order, agreeing with every
    other node on the entries (State Machine Safety, §5.4.3)."""
    for seed in range(20):
        rng = random.Random(seed)
        h = Harness(3, seed=seed)
        for _ in range(600):
            action = rng.random()
            if action < 0.4:
                h.tick(rng.choice([1, 2, 3]))
            elif action < 0.55:
                for leader in h.leaders():
                    h.propose(leader, b"s%d-%d" % (seed, rng.randrange(10**6)))
            elif action < 0.75:
                rng.shuffle(h.queue)
                h.deliver(drop=lambda m: rng.random() < 0.1)
            elif action < 0.78:
                h.isolate(rng.choice([1, 2, 3]))
            elif action < 0.82:
                h.heal()
            elif action < 0.83:
                h.restart(rng.choice([1, 2, 3]))
            node = rng.choice([1, 2, 3])
            if not h[node].has_ready():
                rd = h[node].ready()
                assert rd == Ready(), f"seed {seed}: has_ready() hid {rd}"
                h[node].advance(rd)
            h.persist(node)
            assert len({h[i].term for i in h.leaders()}) == len(h.leaders()), (
                f"seed {seed}: two leaders in one term")
        for i in (1, 2, 3):
            assert [e.index for e in h.applied[i]] == list(range(1, len(h.applied[i]) + 1))
        longest = max(h.applied.values(), key=len)
        for i in (1, 2, 3):
            assert h.applied[i] == longest[:len(h.applied[i])], f"seed {seed}: node {i} diverged"
