"""Config.commit_linger_ticks: a leader's commit-only AppendEntries waits up to that
many ticks for an AppendEntries that carries the new commit index anyway."""
from __future__ import annotations

import random

import pytest

from node.raft import AppendEntries, AppendEntriesResponse, Config, Heartbeat, Role
from tests.raft.harness import Harness
from tests.raft.test_replication import win_election_only


def settled(linger: int) -> Harness:
    h = Harness(3, heartbeat_ticks=3, election_ticks=10, commit_linger_ticks=linger)
    h.elect(1)
    h.tick(1, 3)  # past the election's own heartbeats
    h.stabilize()
    return h


def commits(h: Harness) -> list[int]:
    return [h[i].log.committed for i in (1, 2, 3)]


def test_without_linger_followers_learn_the_commit_at_once() -> None:
    h = settled(0)
    [index] = h.propose(1, b"x")
    h.stabilize()
    assert commits(h) == [index, index, index]


def test_the_commit_only_append_waits_one_tick() -> None:
    h = settled(1)
    [index] = h.propose(1, b"x")
    h.stabilize()
    assert h[1].log.committed == index
    assert commits(h)[1:] == [index - 1, index - 1], "the commit index went out without lingering"
    assert h[1].commit_linger == 1
    h.tick(1)
    h.persist(1)
    sent = h.peek(AppendEntries, src=1)
    assert sorted(m.dst for m in sent) == [2, 3]
    assert all(m.entries == () and m.leader_commit == index for m in sent)
    assert not h.peek(Heartbeat), "the heartbeat is not due: the linger sent these"
    h.stabilize()
    assert commits(h) == [index, index, index]
    assert h[1].commit_linger == 0


def test_the_next_proposal_carries_the_commit() -> None:
    h = settled(1)
    [first] = h.propose(1, b"x")
    h.stabilize()
    [second] = h.propose(1, b"y")
    h.persist(1)
    sent = h.peek(AppendEntries, src=1)
    assert sorted(m.dst for m in sent) == [2, 3]
    assert all(m.leader_commit == first and [e.index for e in m.entries] == [second] for m in sent)
    assert h[1].commit_linger == 0, "the appends carried the commit: nothing left to send"
    h.deliver()
    h.persist_all()
    assert commits(h)[1:] == [first, first]


def test_a_probing_follower_whose_acknowledgement_commits_hears_the_commit_at_once() -> None:
    """A new leader probes each follower with its no-op and pauses until the answer;
    the answer that commits the no-op unpauses that follower, which gets the commit
    index in an AppendEntries at once (the ack's own reply), not a tick later."""
    h = Harness(3, heartbeat_ticks=3, election_ticks=10, commit_linger_ticks=1)
    win_election_only(h, 1)
    noop = h[1].log.last_index()
    h.deliver(lambda m: isinstance(m, AppendEntries) and m.dst == 2)
    h.take(lambda m: m.dst == 3)  # node 3 never answers
    h.persist(2)
    h.deliver(lambda m: isinstance(m, AppendEntriesResponse))
    assert h[1].log.committed == noop and h[1].commit_linger == 1
    h.persist(1)
    [to_two] = h.peek(AppendEntries, src=1, dst=2)
    assert to_two.leader_commit == noop and to_two.entries == ()
    assert not h.peek(AppendEntries, src=1, dst=3), "node 3 is still paused: the linger covers it"


def test_a_longer_linger_counts_down_and_stepping_down_clears_it() -> None:
    h = settled(3)
    [index] = h.propose(1, b"x")
    h.stabilize()
    h.tick(1, 2)
    h.persist(1)
    assert not h.peek(AppendEntries) and h[1].commit_linger == 1
    h[1].become_follower(h[1].term + 1, 0)
    assert h[1].role is Role.FOLLOWER and h[1].commit_linger == 0
    assert commits(h)[1:] == [index - 1, index - 1]


def test_the_linger_may_not_exceed_the_heartbeat() -> None:
    with pytest.raises(ValueError, match="commit_linger_ticks"):
        Config(id=1, rng=random.Random(1), election_ticks=10, heartbeat_ticks=2, commit_linger_ticks=3)
    with pytest.raises(ValueError, match="commit_linger_ticks"):
        Config(id=1, rng=random.Random(1), commit_linger_ticks=-1)
