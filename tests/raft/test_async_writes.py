"""The core with asynchronous storage writes: `accept` a Ready at once, report its
write `persisted` later (node/raft/core.py's contract; etcd-io/raft's async
storage writes). What is handed out is not handed out again, what is not durable
counts for nothing, and nothing said in a term not yet durable leaves early."""
from __future__ import annotations

from node.raft import (
    AppendEntries, AppendEntriesResponse, Entry, Heartbeat, RaftCore, Ready, RequestVote, RequestVoteResponse, Role,
)
from node.raft.core import boot

from .harness import make_config


def elected_leader_of_three() -> RaftCore:
    """Node 1, leader of {1, 2, 3} in term 1 with every Ready so far durable."""
    core = boot(make_config(1), voters=(1, 2, 3))
    core.campaign()
    core.advance(core.ready())  # pre-vote round: nothing durable changes
    for voter in (2, 3):
        core.step(_vote_response(core, voter, pre=True))
    core.advance(core.ready())
    for voter in (2, 3):
        core.step(_vote_response(core, voter, pre=False))
    assert core.role is Role.LEADER
    core.advance(core.ready())
    return core


def _vote_response(core: RaftCore, voter: int, pre: bool) -> RequestVoteResponse:
    term = core.term + 1 if pre else core.term
    return RequestVoteResponse(voter, 1, term, True, pre)


def test_accepted_entries_are_not_handed_out_again_until_truncated() -> None:
    core = elected_leader_of_three()
    core.propose(b"a")
    first = core.ready()
    assert [e.data for e in first.entries] == [b"a"]
    core.accept(first)
    core.propose(b"b")
    second = core.ready()
    assert [e.data for e in second.entries] == [b"b"], "the in-flight entry was handed out twice"
    core.accept(second)
    assert core.log.stable_index < core.log.in_progress_index == core.log.last_index()


def test_the_leader_counts_itself_only_once_its_write_is_durable() -> None:
    """A 3-member leader with one follower's acknowledgement commits only when its
    own write is reported durable (thesis §10.2.1), whenever that is."""
    core = elected_leader_of_three()
    index = core.propose(b"a")
    rd = core.ready()
    core.accept(rd)
    core.step(AppendEntriesResponse(2, 1, core.term, True, index))
    assert core.log.committed < index, "committed without the leader's own durable copy"
    while core.has_ready():  # the loop goes on turning while the write is in flight
        core.accept(core.ready())
    core.persisted(rd)
    assert core.log.committed == index


def test_acknowledgements_wait_for_the_write_and_a_stale_write_marks_nothing_stable() -> None:
    """A follower's acknowledgement is in `messages_after_persist`; when a later
    Ready overwrote the in-flight entry, the earlier write ending does not make the
    new entry stable."""
    core = boot(make_config(2), voters=(1, 2, 3))
    core.step(AppendEntries(1, 2, 1, 0, 0, (Entry(1, 1, b"x"),), 0))
    old = core.ready()
    assert any(isinstance(m, AppendEntriesResponse) for m in old.messages_after_persist)
    assert not any(isinstance(m, AppendEntriesResponse) for m in old.messages)
    core.accept(old)
    # A new leader in term 2 replaces entry 1 before the first write ended.
    core.step(AppendEntries(3, 2, 2, 0, 0, (Entry(2, 1, b"y"),), 0))
    new = core.ready()
    assert [e.term for e in new.entries] == [2], "the overwritten entry must be written again"
    core.accept(new)
    core.persisted(old)
    assert core.log.stable_index == 0, "the stale write marked the new entry durable"
    core.persisted(new)
    assert core.log.stable_index == 1


def test_nothing_is_said_early_while_a_new_term_is_not_durable() -> None:
    """A lone voter elects itself at once; its term, vote and no-op are in flight.
    What it sends its learner in a later Ready (a proposal's AppendEntries) waits
    for that write too: were it sent, a crash losing the term would let the
    restarted leader write other entries at the same indexes in the same term,
    and the learner would hold a log that the leader's does not match."""
    core = boot(make_config(1), voters=(1,), learners=(2,))
    core.campaign()
    assert core.role is Role.LEADER
    first = core.ready()
    assert first.hard_state is not None and (first.hard_state.term, first.hard_state.vote) == (1, 1)
    assert not first.messages
    core.accept(first)
    for _ in range(core.cfg.heartbeat_ticks):
        core.tick()
    later = core.ready()
    assert later.hard_state is None
    assert not later.messages, f"{later.messages} left before term 1 was durable"
    assert any(isinstance(m, Heartbeat) for m in later.messages_after_persist)
    core.accept(later)
    core.persisted(first)
    core.persisted(later)
    assert (core.durable_term, core.durable_vote) == (1, 1)
    for _ in range(core.cfg.heartbeat_ticks):
        core.tick()
    assert any(isinstance(m, Heartbeat) for m in core.ready().messages), "a durable term's heartbeat waits"


def test_a_ready_after_the_durable_term_splits_its_messages_again() -> None:
    core = elected_leader_of_three()
    for follower in (2, 3):  # both acknowledge the leader's no-op: replicating
        core.step(AppendEntriesResponse(follower, 1, core.term, True, core.log.last_index()))
    core.advance(core.ready())
    core.propose(b"a")
    rd = core.ready()
    assert any(isinstance(m, AppendEntries) for m in rd.messages), (
        "a leader's AppendEntries wait although its term is durable")
    assert isinstance(rd, Ready)
