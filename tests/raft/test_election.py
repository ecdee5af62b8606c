"""Paper rules for elections: timeouts, votes, PreVote, CheckQuorum, stickiness, terms."""
from __future__ import annotations

import random

import pytest

from node.raft import (
    AppendEntries, AppendEntriesResponse, Config, Heartbeat, HardState, RaftCore,
    RequestVote, RequestVoteResponse, Role, boot,
)
from tests.raft.harness import Harness, entries_of, vote_request

T = 10  # election_ticks used throughout


def ticks_until_campaign(seed: int, election_ticks: int = T) -> int:
    core = boot(Config(id=1, rng=random.Random(seed), election_ticks=election_ticks), [1, 2, 3])
    for tick in range(1, 10 * election_ticks):
        core.tick()
        if core.role is not Role.FOLLOWER:
            return tick
    raise AssertionError(f"seed {seed}: no campaign in {10 * election_ticks} ticks")


# ---------------------------------------------------------------------------
# Timers (§5.2)
# ---------------------------------------------------------------------------
def test_election_timeout_is_randomized_in_T_to_2T_from_the_injected_rng() -> None:
    """§5.2: a follower that hears nothing starts an election after a timeout drawn
    at random from [T, 2T), so split votes are rare. The draw comes from the injected
    generator: the same seed gives the same tick, different seeds spread over the
    whole range and never leave it."""
    observed = {seed: ticks_until_campaign(seed) for seed in range(300)}
    assert all(T <= t < 2 * T for t in observed.values()), sorted(set(observed.values()))
    assert set(observed.values()) == set(range(T, 2 * T))
    assert all(ticks_until_campaign(seed) == observed[seed] for seed in range(20))


def test_election_timeout_is_redrawn_for_each_new_term() -> None:
    """§5.2: the timeout is randomized again at every election, so two nodes that
    collided once do not collide forever."""
    core = boot(Config(id=1, rng=random.Random(7), election_ticks=T, pre_vote=False), [1, 2, 3])
    gaps = []
    for _ in range(30):
        term = core.term
        ticks = 0
        while core.term == term:
            core.tick()
            ticks += 1
        gaps.append(ticks)
    assert all(T <= g < 2 * T for g in gaps), gaps
    assert len(set(gaps)) > 3, gaps


def test_leader_sends_heartbeats_every_heartbeat_ticks() -> None:
    """§5.2: a leader sends periodic heartbeats (empty appends) to keep its
    authority; here one round every H = 3 ticks, and none in between."""
    h = Harness(3, heartbeat_ticks=3, election_ticks=T)
    h.elect(1)
    rounds = []
    for tick in range(1, 3 * 3 + 1):
        h.tick(1)
        h.persist(1)
        beats = h.take(lambda m: isinstance(m, Heartbeat))
        if beats:
            assert sorted(m.dst for m in beats) == [2, 3]
            rounds.append(tick)
        h.stabilize()
    assert rounds == [3, 6, 9]


def test_single_node_cluster_elects_itself_and_commits() -> None:
    """§5.2: a candidate that has a majority becomes leader; alone, its own vote is
    the majority. It then commits its no-op and a proposal with nobody else."""
    h = Harness(1)
    h.tick(1, 2 * T)
    assert h[1].role is Role.LEADER and h[1].term == 1
    h.stabilize()
    idx = h.propose(1, b"x")[0]
    h.stabilize()
    assert [e.data for e in h.applied[1]] == [b"", b"x"]
    assert h[1].log.committed == idx


# ---------------------------------------------------------------------------
# RequestVote (§5.2, §5.4.1)
# ---------------------------------------------------------------------------
VOTER_LOG = entries_of([1, 1, 2])  # last term 2, last index 3


@pytest.mark.parametrize("pre_vote", [False, True])
@pytest.mark.parametrize(("last_term", "last_index", "granted"), [
    (1, 10, False),  # older last term loses even with a longer log
    (2, 2, False),   # same last term, shorter log
    (2, 3, True),    # same last term, same length
    (2, 4, True),    # same last term, longer
    (3, 1, True),    # newer last term wins even with a shorter log
])
def test_vote_granted_only_to_a_log_at_least_as_up_to_date(
        last_term: int, last_index: int, granted: bool, pre_vote: bool) -> None:
    """§5.4.1 election restriction: compare last terms first, then last indexes. The
    same rule decides PreVote (thesis §9.6), so a node that could not win never
    gets as far as bumping its term."""
    h = Harness(3, logs={1: VOTER_LOG}, hard_states={1: HardState(term=2)})
    h[1].step(vote_request(2, 1, 3, last_index, last_term, pre_vote=pre_vote))
    h.persist(1)
    [resp] = h.peek(RequestVoteResponse)
    assert resp.granted is granted and resp.pre_vote is pre_vote
    if not pre_vote:
        assert h.storage[1].hard_state.vote == (2 if granted else 0)


def test_one_vote_per_term() -> None:
    """§5.2: each server votes for at most one candidate in a given term
    (first-come-first-served); a repeated request from the same candidate is
    granted again (the reply may have been lost)."""
    h = Harness(3)
    h[1].step(vote_request(2, 1, 1, 0, 0))
    h[1].step(vote_request(3, 1, 1, 0, 0))
    h[1].step(vote_request(2, 1, 1, 0, 0))
    h.persist(1)
    replies = [(m.dst, m.granted) for m in h.peek(RequestVoteResponse)]
    assert replies == [(2, True), (3, False), (2, True)]
    assert h.storage[1].hard_state == HardState(term=1, vote=2, commit=0)


def test_vote_is_persisted_before_the_grant_is_sent() -> None:
    """§5.2 / Figure 2: votedFor is persistent state, updated on stable storage
    before responding. The grant is in the Ready that carries the vote, in
    messages_after_persist, never in the send-now messages."""
    core = boot(Config(id=1, rng=random.Random(1)), [1, 2, 3])
    core.step(vote_request(2, 1, 1, 0, 0))
    rd = core.ready()
    assert rd.hard_state == HardState(term=1, vote=2, commit=0)
    assert rd.must_sync
    assert rd.messages == []
    assert [type(m) for m in rd.messages_after_persist] == [RequestVoteResponse]
    assert rd.messages_after_persist[0].granted


@pytest.mark.parametrize("pre_vote", [False, True])
def test_candidate_sends_request_votes_only_after_persisting_its_term_and_vote(
        pre_vote: bool) -> None:
    """§5.2: a candidate increments its term and votes for itself; both are
    persistent, so its RequestVotes (which speak for that term) may leave only
    after the Ready that persists them is durable."""
    h = Harness(3, pre_vote=pre_vote)
    h[1].campaign()
    if pre_vote:
        h.persist(1)
        h.deliver()  # PreVotes
        h.persist_all()
        h.deliver()  # PreVote grants: node 1 now campaigns for real
    rd = h[1].ready()
    assert rd.hard_state is not None and (rd.hard_state.term, rd.hard_state.vote) == (1, 1)
    votes = [m for m in rd.messages_after_persist if isinstance(m, RequestVote)]
    assert sorted(m.dst for m in votes) == [2, 3]
    assert all(not m.pre_vote and m.term == 1 for m in votes)
    assert not [m for m in rd.messages if isinstance(m, RequestVote)]


def test_candidate_that_loses_the_vote_does_not_become_leader() -> None:
    """§5.2: a candidate needs votes from a majority; rejections from a majority end
    its campaign."""
    h = Harness(3, logs={2: entries_of([1]), 3: entries_of([1])},
                hard_states={i: HardState(term=1) for i in (1, 2, 3)}, pre_vote=False)
    h[1].campaign()
    h.stabilize()
    assert h[1].role is Role.FOLLOWER and h[1].term == 2
    assert not h.leaders()


# ---------------------------------------------------------------------------
# PreVote (thesis §9.6)
# ---------------------------------------------------------------------------
def test_pre_candidate_does_not_bump_its_term() -> None:
    """Thesis §9.6: a pre-candidate asks for votes in term+1 without changing its own
    term or vote: nothing to persist."""
    core = boot(Config(id=1, rng=random.Random(1)), [1, 2, 3])
    core.campaign()
    assert core.role is Role.PRE_CANDIDATE and core.term == 0 and core.vote == 0
    rd = core.ready()
    assert rd.hard_state is None
    assert {(m.pre_vote, m.term) for m in rd.messages} == {(True, 1)}


def test_isolated_node_that_keeps_timing_out_never_raises_its_term() -> None:
    """Thesis §9.6: under PreVote a partitioned server cannot win a pre-election, so
    its term stays put and it does not disrupt the cluster when it rejoins."""
    h = Harness(3)
    h.elect(1)
    term = h[1].term
    h.isolate(3)
    for _ in range(20 * T):
        h.tick([1, 2, 3])
        h.stabilize()
    assert h[3].term == term
    h.heal()
    for _ in range(3):
        h.tick([1, 2, 3])
        h.stabilize()
    assert h.leaders() == [1] and h[1].term == term and h[3].lead == 1


def test_without_pre_vote_an_isolated_node_does_raise_its_term() -> None:
    """The control for the PreVote test above: with PreVote off, the same isolated
    node keeps incrementing its term (§5.2) -- so the rule is what made the difference."""
    h = Harness(3, pre_vote=False)
    h.elect(1)
    term = h[1].term
    h.isolate(3)
    for _ in range(20 * T):
        h.tick([1, 2, 3])
        h.stabilize()
    assert h[3].term > term + 3


def test_pre_vote_grant_does_not_change_the_voters_term_or_vote() -> None:
    """Thesis §9.6: a PreVote binds nobody: the voter keeps term and vote."""
    h = Harness(3)
    h[1].step(vote_request(2, 1, 5, 0, 0, pre_vote=True))
    rd = h.persist(1)
    assert rd is not None and rd.hard_state is None
    assert h[1].term == 0 and h[1].vote == 0
    [resp] = h.peek(RequestVoteResponse)
    assert resp.granted and resp.pre_vote and resp.term == 5


# ---------------------------------------------------------------------------
# CheckQuorum and leader stickiness (thesis §6.2, §4.2.3, §9.6)
# ---------------------------------------------------------------------------
def test_check_quorum_leader_that_hears_from_no_quorum_steps_down() -> None:
    """Thesis §6.2: a leader that has not heard from a majority within an election
    timeout steps down, instead of accepting writes that can never commit."""
    h = Harness(3)
    h.elect(1)
    h.isolate(1)
    for _ in range(2 * T):  # one window may still see the election's replies
        h.tick(1)
        h.stabilize()
    assert h[1].role is Role.FOLLOWER and h[1].lead == 0


def test_check_quorum_connected_leader_keeps_leadership() -> None:
    """Thesis §6.2 (the converse): a leader whose followers answer stays leader."""
    h = Harness(3)
    h.elect(1)
    for _ in range(10 * T):
        h.tick(1)
        h.stabilize()
    assert h.leaders() == [1]


@pytest.mark.parametrize("pre_vote", [False, True])
def test_follower_that_heard_from_leader_ignores_higher_term_vote_request(pre_vote: bool) -> None:
    """Thesis §4.2.3: a server that heard from a current leader within the minimum
    election timeout ignores RequestVote (and PreVote) -- it neither answers nor
    adopts the higher term -- so a removed or partitioned server cannot disrupt."""
    h = Harness(3)
    h.elect(1)
    term = h[1].term
    h[2].step(vote_request(3, 2, term + 5, 100, term + 4, pre_vote=pre_vote))
    h.persist(2)
    assert h[2].term == term and h[2].lead == 1 and h[2].vote == 1
    assert not h.peek(RequestVoteResponse)


def test_follower_out_of_lease_grants_higher_term_vote() -> None:
    """Thesis §4.2.3 (the converse): once an election timeout passed without word from
    the leader, the request is considered and the term adopted."""
    h = Harness(3)
    h.elect(1)
    term = h[1].term
    h.tick(2, T)
    h.take()
    h[2].step(vote_request(3, 2, term + 5, 100, term + 4))
    h.persist(2)
    assert h[2].term == term + 5 and h[2].vote == 3
    assert [m.granted for m in h.peek(RequestVoteResponse, dst=3)] == [True]


def test_transfer_vote_request_bypasses_leader_stickiness() -> None:
    """Thesis §3.10: a campaign started by TimeoutNow is legitimate: its RequestVote
    carries `transfer` and passes the stickiness check of a follower in lease."""
    h = Harness(3)
    h.elect(1)
    term = h[1].term
    h[2].step(vote_request(3, 2, term + 1, h[1].log.last_index(), term, transfer=True))
    h.persist(2)
    assert h[2].term == term + 1 and h[2].vote == 3
    assert [m.granted for m in h.peek(RequestVoteResponse, dst=3)] == [True]


# ---------------------------------------------------------------------------
# Terms (§5.1)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("message", [
    AppendEntries(2, 1, 2, 0, 0, (), 0),
    Heartbeat(2, 1, 2, 0),
    RequestVote(2, 1, 2, 10, 2),
])
def test_stale_term_message_is_rejected_with_the_current_term(message: object) -> None:
    """§5.1: a request with a stale term is rejected, and the reply carries the
    receiver's current term so the sender updates itself."""
    h = Harness(3, hard_states={1: HardState(term=3)})
    h[1].step(message)  # type: ignore[arg-type]
    h.persist(1)
    [reply] = h.peek(src=1)
    assert isinstance(reply, (AppendEntriesResponse, RequestVoteResponse))
    assert reply.term == 3 and reply.dst == 2
    assert not getattr(reply, "success", False) and not getattr(reply, "granted", False)
    assert h[1].term == 3


def test_deposed_leader_learns_the_new_term_from_a_stale_reply_and_steps_down() -> None:
    """§5.1: an old leader that comes back sends appends in its old term; the reply
    carries the newer term, and the old leader reverts to follower."""
    h = Harness(3)
    h.elect(1)
    h.isolate(1)
    h.tick([2, 3], T)  # out of node 1's lease
    h.elect(2)
    assert h[2].term > h[1].term and h[1].role is Role.LEADER
    h.heal()
    h.tick(1)
    h.stabilize()
    assert h[1].role is Role.FOLLOWER and h[1].term == h[2].term
    assert h.leaders() == [2]


@pytest.mark.parametrize("role", [Role.LEADER, Role.CANDIDATE])
def test_message_with_higher_term_turns_leader_or_candidate_into_follower(role: Role) -> None:
    """§5.1: if a server learns of a larger term it updates its term and, if leader or
    candidate, reverts to follower."""
    h = Harness(3, pre_vote=False)
    if role is Role.LEADER:
        h.elect(1)
    else:
        h[1].campaign()
    assert h[1].role is role
    term = h[1].term
    h[1].step(Heartbeat(3, 1, term + 2, 0))
    assert h[1].role is Role.FOLLOWER and h[1].term == term + 2 and h[1].lead == 3
