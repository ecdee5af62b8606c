"""Paper rules for membership changes: one server at a time, with learners
(thesis §4.1-4.3; docs/raft-core.md "Membership")."""
from __future__ import annotations

import pytest

from node.raft import (
    AppendEntries, ConfChange, ConfChangeKind, ConfChangePending, ConfState, EntryKind,
    Heartbeat, InstallSnapshot, InvalidConfChange, InvalidRequest, LeaderNotReady,
    LearnerLagging, NotLeader, RequestVote, RequestVoteResponse, Role, Snapshot, SnapshotMeta, TimeoutNow,
    decode_conf_change, encode_conf_change,
)
from node.raft.describe import describe_entry
from tests.raft.harness import Harness

T = 10
ADD, PROMOTE, REMOVE = ConfChangeKind.ADD_LEARNER, ConfChangeKind.PROMOTE, ConfChangeKind.REMOVE
ADD_VOTER, UPDATE = ConfChangeKind.ADD_VOTER, ConfChangeKind.UPDATE


def cc(kind: ConfChangeKind, node: int, context: bytes = b"") -> ConfChange:
    return ConfChange(kind, node, context)


def change(h: Harness, leader: int, kind: ConfChangeKind, node: int, context: bytes = b"") -> int:
    index = h[leader].propose_conf_change(cc(kind, node, context))
    h.stabilize()
    assert h[leader].log.committed >= index
    return index


def with_learner(n: int = 3, learner: int = 4, **config: object) -> Harness:
    """A cluster of `n` voters led by 1, plus `learner` joined as a fresh node."""
    h = Harness(n, election_ticks=T, **config)
    h.elect(1)
    h.join(learner)
    change(h, 1, ADD, learner)
    return h


# -- the entry codec ---------------------------------------------------------------
def test_conf_change_codec_round_trips_and_rejects_garbage() -> None:
    for c in (cc(ADD, 4, b"tcp://10.0.0.4:7000"), cc(REMOVE, 2**40), cc(UPDATE, 2, b"new"),
              ConfChange(ADD_VOTER, 4, b"ctx", ConfState((1, 2, 4), ())),
              ConfChange(PROMOTE, 4, b"", ConfState((1, 2, 4), (5,)))):
        assert decode_conf_change(encode_conf_change(c)) == c
    good = encode_conf_change(ConfChange(ADD, 4, b"ctx", ConfState((1,), (4,))))
    for garbage in (b"", b"\x00" * 3, good[:-1], good + b"x", b"\x09" + good[1:],
                    good[:1] + b"\x07" + good[2:]):
        with pytest.raises(ValueError):
            decode_conf_change(garbage)


# -- refusals ----------------------------------------------------------------------
def test_only_the_leader_accepts_a_change() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    with pytest.raises(NotLeader) as err:
        h[2].propose_conf_change(cc(ADD, 4))
    assert err.value.leader_hint == 1


def test_one_change_at_a_time() -> None:
    """Thesis §4.1: a leader appends a change only once the previous one committed."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.isolate(2, 3)
    index = h[1].propose_conf_change(cc(ADD, 4))
    h.stabilize()
    with pytest.raises(ConfChangePending, match=f"index {index} is not committed"):
        h[1].propose_conf_change(cc(ADD, 5))
    h.heal()
    h.tick(1, 2)  # heartbeats reach the followers, who then catch up
    h.stabilize()
    h[1].propose_conf_change(cc(ADD, 5))


def test_a_new_leader_commits_its_noop_before_a_change() -> None:
    """Ongaro's raft-dev fix (2015): until an entry of its term commits, a new leader
    may hold an uncommitted change of an earlier term it does not know is live."""
    h = Harness(3, election_ticks=T)
    h[1].campaign()
    for _ in range(4):  # win the election without letting the no-op commit
        h.persist_all()
        h.deliver(drop=lambda m: isinstance(m, AppendEntries))
    assert h[1].role is Role.LEADER and h[1].log.committed == 0
    with pytest.raises(LeaderNotReady, match="no committed entry"):
        h[1].propose_conf_change(cc(ADD, 4))
    h.tick(1, 1)
    h.stabilize()
    h[1].propose_conf_change(cc(ADD, 4))


@pytest.mark.parametrize("kind, node, why", [
    (ADD, 2, "already a voter"), (ADD, 4, "already a learner"),
    (PROMOTE, 2, "already a voter"), (PROMOTE, 9, "not a member"),
    (REMOVE, 9, "not a member"),
    (ADD_VOTER, 2, "cannot add node 2 as a voter: already a voter"),
    (ADD_VOTER, 4, "cannot add node 4 as a voter: already a learner"),
    (UPDATE, 9, "cannot update node 9: not a member"),
])
def test_changes_that_make_no_sense_are_refused(kind: ConfChangeKind, node: int,
                                                why: str) -> None:
    h = with_learner()
    with pytest.raises(InvalidConfChange, match=why):
        h[1].propose_conf_change(cc(kind, node))


def test_the_last_voter_cannot_be_removed() -> None:
    h = Harness(1, election_ticks=T)
    h.elect(1)
    with pytest.raises(InvalidConfChange, match="last voter"):
        h[1].propose_conf_change(cc(REMOVE, 1))


def test_a_lagging_learner_is_not_promoted() -> None:
    """Thesis §4.2.1: a new voter far behind would stall commitment while it catches up."""
    h = with_learner(max_learner_lag=5)
    h.isolate(4)
    h.propose(1, *[b"x%d" % i for i in range(8)])
    h.stabilize()
    with pytest.raises(LearnerLagging, match="lags the leader's log by 8 entries") as err:
        h[1].propose_conf_change(cc(PROMOTE, 4))
    assert (err.value.lag, err.value.limit) == (8, 5)
    assert h[1].status().learner_lag == {4: 8}
    h.heal()
    h.tick(1, 1)
    h.stabilize()
    assert h[1].status().learner_lag == {4: 0}
    change(h, 1, PROMOTE, 4)
    assert h[1].status().voters == (1, 2, 3, 4)


def test_promotion_waits_until_the_learner_holds_its_membership_entry() -> None:
    """However generous max_learner_lag is, a learner that has not received the
    entry naming it would not count itself a member, and so would refuse the votes
    its new voter set needs."""
    h = Harness(3, election_ticks=T, max_learner_lag=1000)
    h.elect(1)
    h.join(4)
    h.isolate(4)
    index = change(h, 1, ADD, 4)
    with pytest.raises(LearnerLagging, match=f"membership entry at index {index}"):
        h[1].propose_conf_change(cc(PROMOTE, 4))


def test_promotion_after_compaction_waits_for_the_snapshot() -> None:
    """Once the entry naming the learner is compacted away, the membership comes from
    the snapshot: the learner must hold at least that much. (The simulator found the
    promotion of an empty learner when this was missing, and the cluster then waited
    forever for the vote of a node that did not know it was a member.)"""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.join(4)
    h.isolate(4)
    change(h, 1, ADD, 4)
    h.propose(1, b"a", b"b")
    h.stabilize()
    leader = h[1]
    applied = leader.log.applied
    leader.compact(Snapshot(SnapshotMeta(applied, leader.log.term_at(applied),
                                         leader.conf_at(applied))))
    assert leader.conf_index == applied
    with pytest.raises(LearnerLagging, match=f"membership entry at index {applied}"):
        leader.propose_conf_change(cc(PROMOTE, 4))
    h.heal()
    h.tick(1, 1)
    h.stabilize()
    change(h, 1, PROMOTE, 4)


def test_a_joiner_that_knows_no_membership_votes_for_a_log_naming_it() -> None:
    """Only a candidate whose log adds it as a voter asks a joiner, and that voter
    set may have no quorum without it (thesis §4.2.1: new servers join with empty
    logs); one server at a time keeps its vote harmless (test_add_voter_* below)."""
    h = Harness(3, election_ticks=T)
    joiner = h.join(4)
    joiner.step(RequestVote(2, 4, 5, 1, 1, True, False))
    joiner.step(RequestVote(2, 4, 5, 1, 1, False, False))
    h.persist(4)
    answers = h.peek(RequestVoteResponse, src=4)
    assert len(answers) == 2 and all(a.granted for a in answers)
    assert joiner.vote == 2


def test_proposing_a_conf_change_entry_by_hand_is_refused() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    with pytest.raises(InvalidRequest, match="propose_conf_change"):
        h[1].propose(encode_conf_change(cc(ADD, 4)), EntryKind.CONF_CHANGE)


def test_leadership_cannot_go_to_a_learner_or_a_stranger() -> None:
    h = with_learner()
    with pytest.raises(InvalidRequest, match="a learner"):
        h[1].transfer_leadership(4)
    with pytest.raises(InvalidRequest, match="not a member"):
        h[1].transfer_leadership(9)


# -- learners ----------------------------------------------------------------------
def test_a_joiner_with_an_empty_configuration_never_campaigns() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    joiner = h.join(4)
    assert joiner.conf == ConfState()
    h.tick(4, 10 * T)
    h.stabilize()
    assert joiner.role is Role.FOLLOWER and joiner.term == 0
    assert not [m for m in h.delivered if m.src == 4]


def test_a_joiner_gets_the_whole_log_and_the_membership() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.propose(1, b"a", b"b")
    h.stabilize()
    h.join(4)
    change(h, 1, ADD, 4)
    h.tick(1, 1)
    h.stabilize()
    assert [e.index for e in h.applied[4]] == [e.index for e in h.applied[1]]
    assert h[4].conf == ConfState((1, 2, 3), (4,))
    assert h.readies[4][-1].conf is None and any(rd.conf == h[4].conf for rd in h.readies[4])
    h.tick(4, 10 * T)  # a learner never campaigns
    h.stabilize()
    assert h[4].role is Role.FOLLOWER and h.leaders() == [1]


def test_a_learner_does_not_count_for_commitment() -> None:
    h = with_learner()
    h.isolate(2, 3)
    (index,) = h.propose(1, b"x")
    h.stabilize()
    assert h[4].log.last_index() >= index, "the learner got the entry"
    assert h[1].log.committed < index, "leader + learner are not a majority of 3 voters"


def test_a_learner_vote_does_not_count() -> None:
    """Node 2 campaigns with only the learner and itself answering: no majority."""
    h = with_learner()
    h.isolate(1, 3)
    h.tick(2, 3 * T)
    h.stabilize()
    assert h[2].role is not Role.LEADER


def test_check_quorum_does_not_count_learners() -> None:
    h = with_learner()
    h.isolate(2, 3)
    for _ in range(2 * T):
        h.tick(1, 1)
        h.stabilize()
    assert h[1].role is Role.FOLLOWER


def test_a_promoted_learner_counts() -> None:
    h = with_learner()
    change(h, 1, PROMOTE, 4)
    h.isolate(3)
    (index,) = h.propose(1, b"x")
    h.stabilize()
    assert h[1].log.committed >= index  # 1, 2, 4 of 4 voters... a majority is 3
    h.isolate(2)
    (index,) = h.propose(1, b"y")
    h.stabilize()
    assert h[1].log.committed < index  # 1, 4 of 4 voters is not


# -- removal -----------------------------------------------------------------------
def test_removing_a_voter_shrinks_the_quorum_at_once() -> None:
    """The change is in effect on append: entries waiting for the removed voter's
    acknowledgement commit right away (thesis §4.1)."""
    h = Harness(4, election_ticks=T)
    h.elect(1)
    h.isolate(3, 4)
    (index,) = h.propose(1, b"x")
    h.stabilize()
    assert h[1].log.committed < index  # 2 of 4
    h[1].propose_conf_change(cc(REMOVE, 4))
    assert h[1].log.committed >= index  # 2 of 3
    assert 4 not in h[1].prs


def test_a_removed_leader_leads_until_the_change_commits_then_steps_down() -> None:
    """Thesis §4.2.2: it replicates the change without counting itself, then hands
    over and never campaigns again."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    index = h[1].propose_conf_change(cc(REMOVE, 1))
    assert h[1].role is Role.LEADER and 1 not in h[1].voters
    h.persist(1)
    assert h[1].log.committed < index, "the leader does not count itself"
    h.stabilize()
    assert h[1].role is Role.FOLLOWER
    assert any(isinstance(m, TimeoutNow) and m.src == 1 for m in h.delivered)
    new = h.leaders()
    assert len(new) == 1 and new[0] in (2, 3)
    h.tick(1, 10 * T)
    h.stabilize()
    assert h[1].role is Role.FOLLOWER and h.leaders() == new
    assert h[new[0]].log.committed >= index


def test_a_removed_node_that_keeps_running_does_not_disrupt() -> None:
    """Node 3 is removed while cut off: it never learns it, times out and pre-votes;
    no one grants, nobody's term moves (PreVote + leader stickiness, thesis §4.2.3)."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.isolate(3)
    change(h, 1, REMOVE, 3)
    term = h[1].term
    h.heal()
    for _ in range(5 * T):
        h.tick([1, 2, 3], 1)
        h.stabilize()
    assert any(isinstance(m, RequestVote) and m.src == 3 for m in h.delivered)
    assert h.leaders() == [1] and h[1].term == h[2].term == term


def test_a_node_with_a_stale_removal_of_itself_still_votes() -> None:
    """Liveness (simulator seed 5186 of --membership): node 3 holds its own removal,
    uncommitted, from a deposed leader; the cluster needs its vote to elect the
    leader that will truncate that entry."""
    h = Harness(3, election_ticks=T, check_quorum=False)
    h.elect(3)
    h.isolate(3)
    h[3].propose_conf_change(cc(REMOVE, 3))
    h.stabilize()
    assert h[3].conf == ConfState((1, 2)) and h[3].role is Role.LEADER
    h.elect(2)  # term 2, with 1: the removal never reached them
    h.heal()
    h.isolate(2)
    h.elect(1)  # term 3 needs 3's vote: 1 and 3 of voters (1, 2, 3)
    h.tick(1, 1)
    h.stabilize()
    assert h[3].conf == ConfState((1, 2, 3)), "the stale removal was truncated"


def test_a_removed_follower_is_no_longer_replicated_to() -> None:
    """The leader drops the removed member's progress when it appends the change, so
    the removed server may never see that entry (thesis §4.2.3): it is the previous
    test's PreVote + stickiness that keeps it harmless."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    index = change(h, 1, REMOVE, 3)
    h.tick(1, 3)
    h.stabilize()
    assert 3 not in h[1].prs and h[3].log.last_index() < index
    assert not [m for m in h.delivered if m.dst == 3 and m.src == 1
                and h.delivered.index(m) > 0 and isinstance(m, Heartbeat)
                and m.term == h[1].term and m.commit >= index]


# -- the configuration in effect ----------------------------------------------------
def test_a_truncated_change_reverts_the_configuration() -> None:
    """Thesis §4.1: the latest configuration in the log is in effect, committed or
    not, so losing the entry loses the change."""
    h = Harness(5, election_ticks=T, check_quorum=False)  # no stickiness: elect at will
    h.elect(1)
    h.isolate(3, 4, 5)
    h[1].propose_conf_change(cc(REMOVE, 5))
    h.stabilize()
    assert h[2].conf == ConfState((1, 2, 3, 4))
    h.heal()
    h.isolate(1)
    h.elect(3)  # with 4 and 5; 2 (longer log) does not vote for 3, but follows it
    new = 3
    h.tick(new, 1)
    h.stabilize()
    assert h[2].lead == new
    assert h[2].conf == ConfState((1, 2, 3, 4, 5))
    assert h.readies[2][-1].conf == ConfState((1, 2, 3, 4, 5)) or any(
        rd.conf == ConfState((1, 2, 3, 4, 5)) for rd in h.readies[2][-3:])
    assert not any(e.kind is EntryKind.CONF_CHANGE for e in h.storage[2].entries)


def test_ready_reports_each_change_once() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h[1].propose_conf_change(cc(ADD, 4))
    rd = h.persist(1)
    assert rd is not None and rd.conf == ConfState((1, 2, 3), (4,))
    h.stabilize()
    assert sum(r.conf is not None for r in h.readies[1]) == 1
    assert sum(r.conf is not None for r in h.readies[2]) == 1


def test_a_restart_recovers_the_configuration_from_the_log() -> None:
    h = with_learner()
    change(h, 1, PROMOTE, 4)
    h.tick(1, 1)
    h.stabilize()
    for node in (2, 4):  # booted with (1, 2, 3) and with nothing, respectively
        core = h.restart(node)
        assert core.conf == ConfState((1, 2, 3, 4)) and core.conf_index > 0
    assert h[4].status().voters == (1, 2, 3, 4)


def test_snapshot_carries_the_configuration_to_a_joiner() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    change(h, 1, ADD, 5)  # node 5 never runs: only its membership matters
    change(h, 1, REMOVE, 5)
    change(h, 1, ADD, 6)
    leader = h[1]
    applied = leader.log.applied
    with pytest.raises(ValueError, match="conf_at"):
        leader.compact(Snapshot(SnapshotMeta(applied, leader.log.term_at(applied),
                                             ConfState((1, 2, 3)))))
    assert leader.conf_at(applied) == ConfState((1, 2, 3), (6,))
    assert leader.conf_at(2) == ConfState((1, 2, 3), (5,))
    leader.compact(Snapshot(SnapshotMeta(applied, leader.log.term_at(applied),
                                         leader.conf_at(applied))))
    h.join(6)
    h.tick(1, 1)
    h.stabilize()
    assert any(isinstance(m, InstallSnapshot) and m.dst == 6 for m in h.delivered)
    assert h[6].conf == ConfState((1, 2, 3), (6,))
    assert h.restart(6).conf == ConfState((1, 2, 3), (6,))


def test_status_and_describe_show_the_membership() -> None:
    h = with_learner()
    st = h[1].status()
    assert (st.voters, st.learners, st.learner_match) == ((1, 2, 3), (4,), {4: st.last_index})
    entry = next(e for e in h[1].log.entries if e.kind is EntryKind.CONF_CHANGE)
    assert "conf add-learner 4 -> voters=[1, 2, 3] learners=[4]" in describe_entry(entry)
    assert not any(isinstance(m, Heartbeat) and m.dst == 9 for m in h.delivered)


# -- adding a voter directly (etcd's MemberAdd without --learner) -------------------
def test_add_voter_grows_the_voter_set_by_one_at_once() -> None:
    """The new voter counts from append on (thesis §4.1): with 4 voters a majority is
    3, and the new, empty follower gets the whole log like any other."""
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.propose(1, b"a")
    h.stabilize()
    h.join(4)
    index = h[1].propose_conf_change(cc(ADD_VOTER, 4, b"addresses"))
    assert h[1].conf == ConfState((1, 2, 3, 4), ())
    assert not h[1].prs[4].is_learner
    h.stabilize()
    assert h[1].log.committed >= index
    h.tick(1, 1)
    h.stabilize()
    assert h[4].conf == ConfState((1, 2, 3, 4), ())
    assert [e.index for e in h.applied[4]] == [e.index for e in h.applied[1]]
    assert decode_conf_change(h.applied[4][-1].data).context == b"addresses"
    h.isolate(2, 3)
    (x,) = h.propose(1, b"x")
    h.stabilize()
    assert h[1].log.committed < x  # 1 and 4 of 4 voters are not a majority
    h.heal()
    h.isolate(3)
    h.tick(1, 1)
    h.stabilize()
    assert h[1].log.committed >= x  # 1, 2 and 4 are


def test_add_voter_to_a_single_voter_waits_for_the_new_voter() -> None:
    """Adding a second voter to a one-voter cluster: nothing commits until the new
    member has the log, and after a crash of the old voter before the new one holds
    its membership entry, the old voter can still be elected with the joiner's vote."""
    h = Harness(1, election_ticks=T)
    h.elect(1)
    joiner = h.join(2)
    h.isolate(2)
    index = h[1].propose_conf_change(cc(ADD_VOTER, 2))
    h.stabilize()
    assert h[1].log.committed < index and joiner.conf == ConfState()
    h.restart(1)
    h.heal()
    h.tick(1, 3 * T)
    h.stabilize()
    assert h.leaders() == [1]
    assert h[1].log.committed >= index and h[2].conf == ConfState((1, 2), ())


def test_add_voter_follows_the_one_at_a_time_rule() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h.isolate(2, 3)
    index = h[1].propose_conf_change(cc(ADD_VOTER, 4))
    with pytest.raises(ConfChangePending, match=f"index {index}"):
        h[1].propose_conf_change(cc(ADD_VOTER, 5))
    with pytest.raises(ConfChangePending):
        h[1].propose_conf_change(cc(UPDATE, 2, b"new"))


# -- updating a member (etcd's MemberUpdate) ----------------------------------------
def test_update_leaves_the_configuration_and_carries_the_context() -> None:
    h = with_learner()
    before = h[1].conf
    readies_before = len(h.readies[2])
    index = change(h, 1, UPDATE, 4, b"new addresses")
    h.tick(1, 1)
    h.stabilize()
    assert h[1].conf == before and h[2].conf == before and h[1].conf_index == index
    entry = h.applied[2][-1]
    assert entry.kind is EntryKind.CONF_CHANGE and entry.index == index
    update = decode_conf_change(entry.data)
    assert (update.kind, update.node_id, update.context, update.result) == (UPDATE, 4, b"new addresses", before)
    assert all(rd.conf is None for rd in h.readies[2][readies_before:]), "no new configuration to report"
    change(h, 1, UPDATE, 1, b"the leader itself")
