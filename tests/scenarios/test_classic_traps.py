"""Scenario tests for the classic Raft traps, each driven message by message."""
from __future__ import annotations

from dataclasses import replace

import pytest

from node.raft import AppendEntries, AppendEntriesResponse, EntryKind, Message, RaftCore, Role
from node.raft.quorum import committed_index

from .fabric import Fabric, Filter, isolate

# Figure 7 of the Raft paper: the leader's log for term 8, and six possible followers.
FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIG7_FOLLOWERS))
def test_figure7_leader_repairs_any_divergent_follower(case: str) -> None:
    """§5.3: whatever the follower's log (missing, extra or conflicting entries), the
    leader's AppendEntries make it identical to the leader's; fast backtracking needs
    about one rejection per conflicting term, not one per entry."""
    f = Fabric(3, max_size_per_msg=1 << 20)
    f.load(1, FIG7_LEADER, term=7)
    f.load(2, FIG7_FOLLOWERS[case], term=7)
    f.load(3, FIG7_LEADER, term=7)
    rejections = []
    f.campaign(1, keep=lambda m: not (isinstance(m, AppendEntriesResponse) and not m.success
                                      and rejections.append(m)))
    assert f.leaders() == [1] and f.cores[1].term == 8
    f.propose(1, b"new")
    leader_terms = FIG7_LEADER + [8, 8]  # the no-op and the proposal
    assert f.terms(2) == leader_terms
    assert f.cores[2].log.committed == len(leader_terms)
    distinct_terms = len(set(FIG7_FOLLOWERS[case]) | set(FIG7_LEADER))
    assert len(rejections) <= distinct_terms, f"{len(rejections)} rejections for case {case}"


def _figure8_stage(unsafe: bool, monkeypatch: pytest.MonkeyPatch) -> Fabric:
    """Figure 8 (c): S1 leads term 4 and has replicated its term-2 entry at index 2 to
    a majority (S1, S2, S3), but nothing of term 4 yet."""
    if unsafe:
        def commit_by_counting(self: RaftCore) -> bool:
            ci = committed_index(self.voters, {v: self.prs[v].match for v in self.voters})
            if ci <= self.log.committed:
                return False
            self.log.commit_to(ci)
            return True
        monkeypatch.setattr(RaftCore, "_maybe_commit", commit_by_counting)
    f = Fabric(5, pre_vote=False, check_quorum=False, max_size_per_msg=1)
    f.load(1, [1, 2], term=3)
    f.load(2, [1, 2], term=3)
    f.load(3, [1], term=3)
    f.load(4, [1], term=3)
    f.load(5, [1, 3], term=3)

    def without_term4_entries(m: Message) -> bool | Message:
        if m.src == 5 or m.dst == 5:
            return False
        if isinstance(m, AppendEntries):
            return replace(m, entries=tuple(e for e in m.entries if e.term != 4))
        return True

    f.campaign(1, keep=without_term4_entries)
    assert f.leaders() == [1] and f.cores[1].term == 4
    assert f.terms(3) == [1, 2], "S3 received the term-2 entry"
    return f


def test_figure8_leader_does_not_commit_old_term_entries_by_counting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """§5.4.2: the term-2 entry sits on a majority, yet S1 must not commit it -- S5
    (last term 3) can still win an election and overwrite it, as it does here."""
    f = _figure8_stage(unsafe=False, monkeypatch=monkeypatch)
    assert f.cores[1].log.committed < 2
    f.crash(1)
    _campaign_until_leader(f, 5)
    assert f.cores[5].term == 5
    f.propose(5, b"after")
    assert all(f.terms(n)[1] == 3 for n in (2, 3, 4, 5)), "index 2 now holds S5's entry"


def test_figure8_counting_old_terms_would_lose_a_committed_entry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same stage with the commit rule removed: S1 commits and applies (2, term 2),
    then S5 overwrites index 2 everywhere -- the violation the rule prevents."""
    f = _figure8_stage(unsafe=True, monkeypatch=monkeypatch)
    assert f.cores[1].log.committed >= 2
    s1_applied = [(e.index, e.term) for e in f.applied[1]]
    assert (2, 2) in s1_applied
    f.crash(1)
    # S5 (last term 3) wins term 5 with S2, S3 and S4's votes -- it never had (2, 2):
    # a leader without a committed entry breaks Leader Completeness (§5.4).
    _campaign_until_leader(f, 5, keep=lambda m: not isinstance(m, AppendEntries))
    assert f.cores[5].log.term_at(2) == 3


def _campaign_until_leader(f: Fabric, node: int, tries: int = 3,
                           keep: Filter | None = None) -> None:
    for _ in range(tries):
        f.campaign(node, keep=keep)
        if f.leaders() == [node]:
            return
    raise AssertionError(f"node {node} did not win in {tries} campaigns")


def test_split_vote_resolves_by_randomized_timeouts() -> None:
    """§5.2: two candidates split the votes; nobody wins the term, and a later
    election with randomized timeouts produces exactly one leader."""
    f = Fabric(5, pre_vote=False)
    f.crash(5)
    f.cores[1].campaign()
    f.cores[2].campaign()
    f.flush(1)
    f.flush(2)
    split = {(1, 3), (2, 4), (3, 1), (4, 2)}
    f.deliver(keep=lambda m: (m.src, m.dst) in split)
    assert f.leaders() == []
    assert f.cores[1].role is Role.CANDIDATE and f.cores[2].role is Role.CANDIDATE
    for _ in range(100):
        f.tick()
        if f.leaders():
            break
    assert len(f.leaders()) == 1
    assert f.cores[f.leaders()[0]].term >= 2


def test_partitioned_old_leader_cannot_commit_and_rejoins_as_follower() -> None:
    """An isolated leader keeps accepting proposals locally but can never commit them;
    CheckQuorum makes it step down; after healing its uncommitted entries are replaced
    by the new leader's log."""
    f = Fabric(5)
    f.campaign(1)
    f.propose(1, b"committed")
    old_term = f.cores[1].term
    cut_off = isolate(1)
    stranded = f.cores[1].propose(b"stranded")
    f.flush(1)
    f.deliver(keep=cut_off)
    assert f.cores[1].log.committed < stranded
    for _ in range(60):
        f.tick(keep=cut_off)
    assert f.cores[1].role is not Role.LEADER, "CheckQuorum: the isolated leader stepped down"
    new_leaders = [n for n in f.leaders() if n != 1]
    assert len(new_leaders) == 1 and f.cores[new_leaders[0]].term > old_term
    f.propose(new_leaders[0], b"new")
    f.tick(5)
    assert f.cores[1].role is Role.FOLLOWER and f.cores[1].lead == new_leaders[0]
    data = [e.data for e in f.cores[1].log.entries]
    assert b"stranded" not in data and b"committed" in data and b"new" in data
    assert all(e.data != b"stranded" for n in f.voters for e in f.applied[n])


@pytest.mark.parametrize("pre_vote", [True, False])
def test_rejoining_partitioned_node_and_prevote(pre_vote: bool) -> None:
    """Thesis §9.6: a node cut off for many election timeouts rejoins. With PreVote its
    term never grew and the leader is undisturbed; without PreVote its inflated term
    forces the leader out -- the disruption PreVote exists to prevent."""
    f = Fabric(3, pre_vote=pre_vote)
    f.campaign(1)
    term = f.cores[1].term
    for _ in range(200):
        f.tick(keep=isolate(3))
    f.tick(30)
    if pre_vote:
        assert f.cores[3].term == term and f.leaders() == [1] and f.cores[1].term == term
    else:
        assert max(c.term for c in f.cores.values()) > term + 5


@pytest.mark.parametrize("n", [3, 5, 7])
def test_cluster_tolerates_a_minority_of_crashes_but_not_a_majority(n: int) -> None:
    f = Fabric(n)
    f.campaign(1)
    f.propose(1, b"before")
    minority = list(range(2, 2 + (n - 1) // 2))
    for node in minority:
        f.crash(node)
    index = f.propose(1, b"with-minority-down")
    assert f.cores[1].log.committed >= index
    f.crash(n)  # now a majority is down (or exactly half of the others)
    index = f.propose(1, b"without-quorum")
    f.tick(3)
    assert f.cores[1].log.committed < index
    for node in minority + [n]:
        f.restart(node)
    f.tick(60)
    (leader,) = f.leaders()
    last = f.cores[leader].log.last_index()
    assert all(c.log.committed == last for c in f.cores.values())
    assert all(e.kind is EntryKind.NOOP or e.data for e in f.cores[leader].log.entries)
