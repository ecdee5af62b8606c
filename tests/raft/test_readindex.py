"""Paper rules for linearizable reads with ReadIndex (thesis §6.4)."""
from __future__ import annotations

import pytest

from node.raft import (
    Heartbeat, HeartbeatResponse, NotLeader, ReadIndexRequest, ReadIndexResponse, ReadState,
    RequestVote, RequestVoteResponse, Role,
)
from tests.raft.harness import Harness


def test_leader_read_waits_for_a_heartbeat_quorum() -> None:
    """Thesis §6.4 steps 1-3: the leader records its commit index as the read index,
    then confirms it is still leader by a heartbeat round; only when a majority
    answers does the read become a ReadState."""
    h = Harness(3)
    h.elect(1)
    commit = h[1].log.committed
    h[1].read_index(b"r1")
    rd = h.persist(1)
    assert rd is not None and rd.read_states == []
    beats = h.peek(Heartbeat, src=1)
    assert sorted(m.dst for m in beats) == [2, 3] and all(m.ctx == b"r1" for m in beats)
    h.deliver(lambda m: m.dst == 2)  # only node 2 hears the round
    h.persist(2)
    h.persist(1)
    assert h.read_states[1] == [], "a ReadState appeared before any follower answered"
    h.deliver(lambda m: isinstance(m, HeartbeatResponse) and m.src == 2)
    h.persist(1)
    assert h.read_states[1] == [ReadState(commit, b"r1")]


def test_new_leader_defers_reads_until_its_noop_commits() -> None:
    """Thesis §6.4 step 1: a fresh leader does not know the latest commit index until
    an entry of its own term commits; reads wait for its no-op."""
    h = Harness(3)
    h[1].campaign()
    while h[1].role is not Role.LEADER:
        h.persist_all()
        h.deliver(lambda m: isinstance(m, (RequestVote, RequestVoteResponse)))
    noop = h[1].log.last_index()
    h[1].read_index(b"early")
    h.persist(1)
    assert not [m for m in h.peek(Heartbeat) if m.ctx == b"early"]
    assert h[1].log.committed < noop
    h.stabilize()
    assert h.read_states[1] == [ReadState(noop, b"early")]


def test_follower_read_index_goes_through_the_leader() -> None:
    """Thesis §6.4: a follower asks the leader for the read index
    (ReadIndexRequest); the leader confirms leadership and answers
    (ReadIndexResponse), which becomes the follower's ReadState."""
    h = Harness(3)
    h.elect(1)
    h.propose(1, b"w")
    h.stabilize()
    h[2].read_index(b"f")
    h.persist(2)
    assert [type(m) for m in h.peek(src=2)] == [ReadIndexRequest]
    h.stabilize()
    assert any(isinstance(m, ReadIndexResponse) and m.dst == 2 for m in h.delivered)
    assert h.read_states[2] == [ReadState(h[1].log.committed, b"f")]
    assert h.read_states[1] == []


def test_read_index_without_a_known_leader_raises_not_leader() -> None:
    """Thesis §6.4: with no leader nobody can confirm the read: refuse it."""
    h = Harness(3)
    with pytest.raises(NotLeader):
        h[2].read_index(b"x")


@pytest.mark.parametrize("check_quorum", [True, False])
def test_partitioned_leader_never_yields_a_read_state(check_quorum: bool) -> None:
    """Thesis §6.4: a leader cut off from the majority may already be deposed; its
    heartbeat round never reaches a quorum, so the read is never served -- whether
    or not CheckQuorum makes it step down."""
    h = Harness(3, check_quorum=check_quorum)
    h.elect(1)
    h.isolate(1)
    h[1].read_index(b"stale?")
    for _ in range(50):
        h.tick([1, 2, 3])
        h.stabilize()
    assert h.read_states[1] == []
    assert len(h.leaders()) == (1 if not check_quorum else 0) + 1  # 2 or 3 took over


def test_reads_arriving_while_a_round_is_out_share_the_next_round() -> None:
    """Batching (not in the paper, safe by §6.4's rule): a read is confirmed only by
    a heartbeat sent after it was registered. While one round is out, later reads
    wait and then share one round, instead of a round each."""
    h = Harness(3)
    h.elect(1)
    commit = h[1].log.committed
    h[1].read_index(b"r1")
    h.persist(1)
    assert sorted(m.ctx for m in h.peek(Heartbeat, src=1)) == [b"r1", b"r1"]
    for ctx in (b"r2", b"r3", b"r4"):
        h[1].read_index(ctx)
        h.persist(1)
    assert sorted(m.ctx for m in h.peek(Heartbeat, src=1)) == [b"r1", b"r1"], "a second round while one is out"
    h.deliver(lambda m: isinstance(m, Heartbeat))  # the first round reaches both followers
    h.persist_all()
    h.deliver(lambda m: isinstance(m, HeartbeatResponse))
    h.persist(1)
    assert h.read_states[1] == [ReadState(commit, b"r1")]
    beats = h.peek(Heartbeat, src=1)
    assert sorted(m.ctx for m in beats) == [b"r4", b"r4"], "the waiting reads share one new round"
    h.stabilize()
    assert h.read_states[1] == [ReadState(commit, c) for c in (b"r1", b"r2", b"r3", b"r4")]


def test_a_lost_read_round_is_ended_by_the_periodic_heartbeat() -> None:
    h = Harness(3)
    h.elect(1)
    h[1].read_index(b"lost")
    h.persist(1)
    h.take(lambda m: isinstance(m, Heartbeat))  # the round is lost on the way
    h[1].read_index(b"later")
    h.persist(1)
    assert not h.peek(Heartbeat, src=1)
    h.tick(1, h[1].cfg.heartbeat_ticks)  # the periodic heartbeat carries the newest ctx
    h.persist(1)
    assert sorted(m.ctx for m in h.peek(Heartbeat, src=1)) == [b"later", b"later"]
    h.stabilize()
    assert [rs.ctx for rs in h.read_states[1]] == [b"lost", b"later"]
