"""Property tests: quorum math and the log's follower-side algorithms against
deliberately simple references (a list of terms, a brute-force search)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.raft import Entry, Snapshot, SnapshotMeta
from node.raft.log import RaftLog
from node.raft.quorum import VoteResult, committed_index, has_quorum, majority, vote_result

PROPS = settings(max_examples=300, deadline=None, derandomize=True)

voter_sets = st.sets(st.integers(1, 9), min_size=1, max_size=7)


# ---------------------------------------------------------------------------
# Quorum math (§5.2, §5.4.2)
# ---------------------------------------------------------------------------
@PROPS
@given(st.integers(1, 50))
def test_majority_is_the_smallest_count_above_half(n: int) -> None:
    m = majority(n)
    assert 2 * m > n and 2 * (m - 1) <= n


@PROPS
@given(voter_sets, st.dictionaries(st.integers(1, 12), st.integers(0, 20)))
def test_committed_index_is_the_largest_index_a_majority_holds(
        voters: set[int], match: dict[int, int]) -> None:
    """§5.3/§5.4.2: an index is replicated on a majority when more than half of the
    voters' match indexes reach it; non-voters never count, missing voters are 0."""
    def held_by_majority(i: int) -> bool:
        return 2 * sum(1 for v in voters if match.get(v, 0) >= i) > len(voters)

    expected = max(i for i in range(0, 21) if held_by_majority(i))
    assert committed_index(voters, match) == expected


@PROPS
@given(voter_sets, st.dictionaries(st.integers(1, 12), st.booleans()))
def test_vote_result_against_brute_force(voters: set[int], votes: dict[int, bool]) -> None:
    """§5.2: won with a majority of grants; lost when even all undecided voters
    granting could not make a majority; pending otherwise."""
    granted = {v for v in voters if votes.get(v) is True}
    undecided = {v for v in voters if v not in votes}
    if 2 * len(granted) > len(voters):
        expected = VoteResult.WON
    elif 2 * (len(granted) + len(undecided)) > len(voters):
        expected = VoteResult.PENDING
    else:
        expected = VoteResult.LOST
    assert vote_result(voters, votes) is expected


@PROPS
@given(voter_sets, st.sets(st.integers(1, 12)))
def test_has_quorum_against_brute_force(voters: set[int], active: set[int]) -> None:
    assert has_quorum(voters, active) == (2 * len(voters & active) > len(voters))


# ---------------------------------------------------------------------------
# The log, against a list of terms (index i has term terms[i - 1])
# ---------------------------------------------------------------------------
def term_of(terms: list[int], i: int) -> int:
    return terms[i - 1] if 1 <= i <= len(terms) else 0


def build(terms: list[int], snap: int, commit: int) -> RaftLog:
    snapshot = Snapshot(SnapshotMeta(snap, term_of(terms, snap))) if snap else None
    entries = [Entry(t, i, b"") for i, t in enumerate(terms, start=1) if i > snap]
    return RaftLog(snapshot, entries, commit)


def log_terms(log: RaftLog) -> list[int]:
    return [e.term for e in log.entries]


@st.composite
def raft_log_and_query(draw: st.DrawFn) -> tuple[list[int], int, int, int]:
    """A valid log (terms never decrease), a snapshot point, and a query (index, term)
    with index at or above the snapshot and term at least the snapshot's term -- the
    only queries Raft makes (everything up to the snapshot is committed and matches)."""
    terms = sorted(draw(st.lists(st.integers(1, 8), max_size=25)))
    snap = draw(st.integers(0, len(terms)))
    index = draw(st.integers(snap, len(terms) + 3))
    term = draw(st.integers(term_of(terms, snap), 10))
    return terms, snap, index, term


@PROPS
@given(raft_log_and_query())
def test_find_conflict_by_term_against_brute_force(case: tuple[list[int], int, int, int]) -> None:
    """§5.3 fast backtracking hint: the largest i <= index whose term is <= `term`
    (the snapshot point is the floor), so every entry in (i, index] has a larger term
    and cannot match any entry of term <= `term`."""
    terms, snap, index, term = case
    top = min(index, len(terms))
    expected = max(i for i in range(snap, top + 1) if i == snap or term_of(terms, i) <= term)
    got = build(terms, snap, snap).find_conflict_by_term(index, term)
    assert got == (expected, term_of(terms, expected))
    assert all(term_of(terms, i) > term for i in range(got[0] + 1, top + 1))


def reference_maybe_append(terms: list[int], commit: int, prev_index: int, prev_term: int,
                           leader_commit: int, new: list[int]) -> tuple[int | None, list[int], int]:
    """Figure 2, AppendEntries receiver, steps 2-5, on a plain list."""
    if prev_index > len(terms) or term_of(terms, prev_index) != prev_term:
        return None, terms, commit
    out = list(terms)
    for k, t in enumerate(new):
        i = prev_index + 1 + k
        if i <= len(out) and out[i - 1] == t:
            continue
        out = out[:i - 1] + new[k:]
        break
    last_new = prev_index + len(new)
    return last_new, out, max(commit, min(leader_commit, last_new))


@st.composite
def append_case(draw: st.DrawFn) -> dict[str, object]:
    """Follower and leader logs that share a committed prefix, and one AppendEntries
    cut from the leader's log (sometimes with a wrong prev_log_term), with
    prev_log_index at or above the snapshot (the core answers anything below its
    commit index before asking the log)."""
    prefix = sorted(draw(st.lists(st.integers(1, 4), max_size=10)))
    base = prefix[-1] if prefix else 1
    follower = prefix + sorted(draw(st.lists(st.integers(base, 8), max_size=10)))
    leader = prefix + sorted(draw(st.lists(st.integers(base, 8), max_size=10)))
    commit = draw(st.integers(0, len(prefix)))
    snap = draw(st.integers(0, commit))
    prev_index = draw(st.integers(snap, len(leader)))
    n = draw(st.integers(0, len(leader) - prev_index))
    prev_term = term_of(leader, prev_index)
    if draw(st.booleans()):
        prev_term = draw(st.integers(0, 9))  # usually wrong; 0 past the log never matches
    return dict(follower=follower, commit=commit, snap=snap, prev_index=prev_index,
                prev_term=prev_term, new=leader[prev_index:prev_index + n],
                leader_commit=draw(st.integers(0, len(leader))))


@PROPS
@given(append_case())
def test_maybe_append_against_a_list_reference(case: dict) -> None:  # type: ignore[type-arg]
    """§5.3 / Figure 2: reject on a prev mismatch; otherwise truncate at the first
    conflicting entry only, append what is new, and commit min(leaderCommit, last
    new index) -- never moving commit backwards."""
    follower, commit, snap = case["follower"], case["commit"], case["snap"]
    prev_index, prev_term, new = case["prev_index"], case["prev_term"], case["new"]
    log = build(follower, snap, commit)
    entries = [Entry(t, prev_index + 1 + k, b"") for k, t in enumerate(new)]
    got = log.maybe_append(prev_index, prev_term, case["leader_commit"], entries)
    want, want_terms, want_commit = reference_maybe_append(
        follower, commit, prev_index, prev_term, case["leader_commit"], new)
    assert got == want
    assert log_terms(log) == want_terms[snap:]
    assert log.last_index() == len(want_terms)
    assert log.committed == want_commit
