"""Paper rules for leadership transfer (thesis §3.10)."""
from __future__ import annotations

import pytest

from node.raft import (
    AppendEntriesResponse, InvalidRequest, LeadershipTransferInProgress, NotLeader, Role,
    TimeoutNow,
)
from tests.raft.harness import Harness

T = 10


def lagging_cluster() -> Harness:
    """Leader 1, with node 3 missing the last few committed entries."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.isolate(3)
    h.propose(1, b"a", b"b", b"c")
    h.stabilize()
    h.heal()
    assert h[3].log.last_index() < h[1].log.last_index()
    return h


def test_transfer_catches_the_target_up_then_sends_timeout_now() -> None:
    """Thesis §3.10: the leader first brings the target's log up to date, then sends
    TimeoutNow; the target campaigns at once (no election timeout: no tick at all
    here) and wins the next term."""
    h = lagging_cluster()
    term = h[1].term
    h[1].transfer_leadership(3)
    h.persist(1)
    assert not h.peek(TimeoutNow), "TimeoutNow sent to a target whose log lags"
    h.stabilize()
    timeout_now = [k for k, m in enumerate(h.delivered) if isinstance(m, TimeoutNow)]
    caught_up = [k for k, m in enumerate(h.delivered)
                 if isinstance(m, AppendEntriesResponse) and m.src == 3 and m.success
                 and m.index >= 4]
    assert len(timeout_now) == 1 and h.delivered[timeout_now[0]].dst == 3
    assert caught_up and caught_up[0] < timeout_now[0]
    assert h.leaders() == [3] and h[3].term == term + 1
    assert h[1].role is Role.FOLLOWER and h[1].lead == 3


def test_transfer_to_an_up_to_date_target_sends_timeout_now_immediately() -> None:
    """Thesis §3.10: nothing to catch up: TimeoutNow goes out in the next Ready."""
    h = Harness(3)
    h.elect(1)
    h[1].transfer_leadership(2)
    h.persist(1)
    assert [m.dst for m in h.peek(TimeoutNow)] == [2]
    h.stabilize()
    assert h.leaders() == [2]


def test_proposals_during_a_transfer_are_refused() -> None:
    """Thesis §3.10: the leader stops accepting client requests while transferring,
    so the target can catch up to a fixed point."""
    h = lagging_cluster()
    h[1].transfer_leadership(3)
    with pytest.raises(LeadershipTransferInProgress):
        h[1].propose(b"during")


@pytest.mark.parametrize("target", [4, 9])
def test_transfer_to_a_learner_or_an_unknown_node_is_invalid(target: int) -> None:
    """Thesis §3.10: only a voter can become leader; a learner (4) or a node outside
    the configuration (9) is an invalid target."""
    h = Harness(3, learners=[4])
    h.elect(1)
    with pytest.raises(InvalidRequest):
        h[1].transfer_leadership(target)
    h.propose(1, b"still leader")


def test_transfer_from_a_follower_raises_not_leader() -> None:
    h = Harness(3)
    h.elect(1)
    with pytest.raises(NotLeader):
        h[2].transfer_leadership(3)


def test_transfer_that_cannot_finish_is_abandoned_after_election_ticks() -> None:
    """Thesis §3.10: if the transfer does not complete within an election timeout the
    leader aborts it and resumes accepting client requests."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.isolate(3)
    h.propose(1, b"a")
    h.stabilize()
    h[1].transfer_leadership(3)
    for _ in range(T - 1):
        h.tick(1)
        h.stabilize()
    with pytest.raises(LeadershipTransferInProgress):
        h[1].propose(b"too early")
    h.tick(1)
    h.stabilize()
    assert h[1].role is Role.LEADER
    h[1].propose(b"after")
