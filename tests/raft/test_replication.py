"""Paper rules for log replication (§5.3) and commitment (§5.4.2)."""
from __future__ import annotations

from node.raft import (
    AppendEntries, AppendEntriesResponse, Entry, EntryKind, HardState, RequestVote,
    RequestVoteResponse, Role,
)
from node.raft.progress import ProgressState
from tests.raft.harness import Harness, entries_of, is_append_with_entries


def win_election_only(h: Harness, node_id: int) -> None:
    """Run `node_id`'s campaign, delivering vote traffic only: the new leader's first
    appends stay queued, its followers' progress untouched."""
    h[node_id].campaign()
    for _ in range(10):
        h.persist_all()
        h.deliver(lambda m: isinstance(m, (RequestVote, RequestVoteResponse)))
        if h[node_id].role is Role.LEADER:
            h.persist(node_id)
            return
    raise AssertionError(f"node {node_id} did not win: {h[node_id].status()}")


def follower_with(log: list[Entry], term: int, commit: int = 0) -> Harness:
    """A cluster whose node 1 holds `log` at `term`; node 2 plays the leader by hand."""
    return Harness(3, logs={1: log}, hard_states={1: HardState(term=term, commit=commit)})


# ---------------------------------------------------------------------------
# Follower side of AppendEntries (§5.3)
# ---------------------------------------------------------------------------
def test_append_rejected_unless_prev_index_and_term_match() -> None:
    """§5.3 consistency check: the follower refuses entries unless it holds an entry
    at prevLogIndex whose term is prevLogTerm."""
    h = follower_with(entries_of([1, 1, 2]), term=2)
    new = (Entry(2, 4, b"d"),)
    h[1].step(AppendEntries(2, 1, 2, 3, 1, new, 0))  # term differs at 3
    h[1].step(AppendEntries(2, 1, 2, 4, 2, new[:0], 0))  # nothing at 4
    assert h[1].log.last_index() == 3
    h[1].step(AppendEntries(2, 1, 2, 3, 2, new, 0))  # matches
    h.persist(1)
    replies = [(m.success, m.index) for m in h.peek(AppendEntriesResponse)]
    assert replies == [(False, 3), (False, 4), (True, 4)]
    assert h.storage[1].entries[-1] == new[0]


def test_conflicting_uncommitted_suffix_is_truncated() -> None:
    """§5.3: if an existing entry conflicts with a new one (same index, different
    term), delete it and all that follow, then append the new entries."""
    h = follower_with(entries_of([1, 1, 2, 2]), term=3, commit=1)
    h[1].step(AppendEntries(2, 1, 3, 2, 1, (Entry(3, 3, b"new"),), 1))
    rd = h.persist(1)
    assert rd is not None and rd.entries == [Entry(3, 3, b"new")]
    assert [e.term for e in h.storage[1].entries] == [1, 1, 3]
    assert h[1].log.last_index() == 3


def test_append_matching_existing_entries_does_not_truncate() -> None:
    """§5.3: only a *conflicting* entry truncates; an (old, reordered) append whose
    entries are already present leaves the longer log alone."""
    h = follower_with(entries_of([1, 1, 1, 1]), term=1)
    h[1].step(AppendEntries(2, 1, 1, 1, 1, (Entry(1, 2),), 0))
    h.persist(1)
    assert h[1].log.last_index() == 4
    assert [(m.success, m.index) for m in h.peek(AppendEntriesResponse)] == [(True, 2)]


def test_follower_commit_is_leader_commit_bounded_by_last_new_entry() -> None:
    """§5.3 / Figure 2: commitIndex = min(leaderCommit, index of last new entry). The
    follower's entries beyond what this append verified may be a deposed leader's
    (here entries 3-4 of term 2): they must not be committed."""
    h = follower_with(entries_of([1, 1, 2, 2]), term=3)
    h[1].step(AppendEntries(2, 1, 3, 1, 1, (Entry(1, 2),), 4))
    h.persist(1)
    assert h[1].log.committed == 2
    assert h.storage[1].hard_state.commit == 2
    assert [e.index for e in h.applied[1]] == [1, 2]


# ---------------------------------------------------------------------------
# Leader side: fast backtracking, probe/replicate, flow control
# ---------------------------------------------------------------------------
def test_fast_backtracking_takes_about_one_round_trip_per_term() -> None:
    """§5.3 (the optimization at the end of the section): with the follower's
    conflict hint the leader skips a whole term per rejection instead of one entry.
    The logs diverge over 7 terms and ~230 entries after index 2; repairing the
    follower must take at most one rejection per diverging term."""
    prefix = [1, 1]
    leader_log = entries_of(prefix + [2] * 30 + [4] * 30 + [6] * 30 + [8] * 30)
    follower_log = entries_of(prefix + [3] * 40 + [5] * 40 + [7] * 40)
    h = Harness(3, logs={1: leader_log, 2: follower_log, 3: leader_log},
                hard_states={1: HardState(term=8), 2: HardState(term=8), 3: HardState(term=8)})
    h[1].campaign()
    h.stabilize(max_rounds=1000)  # room for a per-entry repair, so the count decides
    assert h.leaders() == [1]
    rejections = [m for m in h.delivered
                  if isinstance(m, AppendEntriesResponse) and m.src == 2 and not m.success]
    diverging_terms = {2, 3, 4, 5, 6, 7, 8}
    assert 1 <= len(rejections) <= len(diverging_terms), [(m.index, m.hint_index) for m in rejections]
    assert h.storage[2].entries == h.storage[1].entries
    assert h[2].log.committed == h[1].log.last_index()


def test_new_follower_progress_probes_with_one_append_until_answered() -> None:
    """etcd's probe state (§5.3 "the leader decrements nextIndex and retries"): until
    the leader knows where the logs agree it keeps one AppendEntries outstanding,
    however many entries are proposed meanwhile."""
    h = Harness(3)
    win_election_only(h, 1)
    assert h.progress(1, 2).state is ProgressState.PROBE
    for payload in (b"a", b"b", b"c"):
        h.propose(1, payload)
        h.persist(1)
    assert len(h.peek(AppendEntries, dst=2)) == 1


def test_acknowledged_follower_switches_to_replicate_and_is_pipelined() -> None:
    """Replicate state: once an append is acknowledged the leader streams new entries
    without waiting for each answer (pipelining, thesis §10.2.1)."""
    h = Harness(3)
    win_election_only(h, 1)
    h.stabilize()
    assert h.progress(1, 2).state is ProgressState.REPLICATE
    for payload in (b"a", b"b", b"c"):
        h.propose(1, payload)
        h.persist(1)
    sent = [m for m in h.peek(AppendEntries, dst=2)]
    assert [[e.data for e in m.entries] for m in sent] == [[b"a"], [b"b"], [b"c"]]


def test_rejection_in_replicate_state_falls_back_to_probe() -> None:
    """After a rejection the leader no longer knows where the logs agree: it goes back
    to probing from just after the last acknowledged index, one append at a time
    (§5.3)."""
    h = Harness(3)
    h.elect(1)
    h.propose(1, b"a", b"b")
    h.stabilize()
    term, match = h[1].term, h.progress(1, 2).match
    assert h.progress(1, 2).state is ProgressState.REPLICATE and match == 3
    h[1].step(AppendEntriesResponse(2, 1, term, False, match + 2, match, term))
    assert h.progress(1, 2).state is ProgressState.PROBE
    assert h.progress(1, 2).next == match + 1
    for payload in (b"c", b"d"):
        h.propose(1, payload)
        h.persist(1)
    assert len(h.peek(AppendEntries, dst=2)) == 1


def test_inflight_window_bounds_unacknowledged_appends() -> None:
    """Flow control: with max_inflight_msgs = k, at most k AppendEntries carrying
    entries are unacknowledged per follower; each acknowledgement lets one more out."""
    k = 3
    h = Harness(3, max_inflight_msgs=k)
    h.elect(1)
    for n in range(10):
        h.propose(1, b"p%d" % n)
        h.persist(1)
    inflight = [m for m in h.peek(AppendEntries, dst=2) if m.entries]
    assert len(inflight) == k
    h.deliver(lambda m: m is inflight[0])
    h.persist(2)
    h.deliver(lambda m: isinstance(m, AppendEntriesResponse) and m.src == 2)
    h.persist(1)
    now = [m for m in h.peek(AppendEntries, dst=2) if m.entries]
    assert len(now) == k
    assert now[-1].entries[-1].index == h[1].log.last_index()


def test_max_size_per_msg_limits_each_append_but_sends_at_least_one_entry() -> None:
    """Flow control: an AppendEntries carries at most max_size_per_msg payload bytes,
    except that one entry larger than the limit still goes out alone."""
    limit = 250
    h = Harness(3, max_size_per_msg=limit)
    h.isolate(2)
    h.elect(1)
    h.propose(1, *[bytes([65 + n]) * 100 for n in range(10)])
    h.propose(1, b"Z" * 1000, b"y" * 100)
    h.stabilize()
    h.heal()
    for _ in range(20):
        h.tick(1)
        h.stabilize()
    appends = [m for m in h.delivered if is_append_with_entries(m) and m.dst == 2]
    for m in appends:
        size = sum(len(e.data) for e in m.entries)
        assert size <= limit or len(m.entries) == 1, m
    assert any(len(m.entries) >= 2 for m in appends)
    assert any(len(m.entries) == 1 and len(m.entries[0].data) == 1000 for m in appends)
    assert h.storage[2].entries == h.storage[1].entries


# ---------------------------------------------------------------------------
# Commitment (§5.4.2, Figure 8)
# ---------------------------------------------------------------------------
def test_new_leader_appends_a_noop_in_its_term() -> None:
    """§8 / §5.4.2: a new leader commits an entry of its own term at the start of its
    term (a no-op), which also commits everything before it."""
    h = Harness(3, logs={i: entries_of([1]) for i in (1, 2, 3)},
                hard_states={i: HardState(term=1) for i in (1, 2, 3)})
    leader = h.elect(1)
    last = h.storage[1].entries[-1]
    assert (last.index, last.term, last.kind) == (2, leader.term, EntryKind.NOOP)
    assert all(h.storage[i].entries[-1] == last for i in (2, 3))
    assert leader.log.committed == 2
    assert [e.index for e in h.applied[1]] == [1, 2]


def test_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    """§5.4.2 / Figure 8: a leader never commits an entry from a previous term by
    counting replicas, even when every node stores it; it commits it only
    indirectly, once an entry of its own term (the no-op) is on a majority."""
    old = Entry(1, 1, b"xx")
    h = Harness(3, logs={1: [old]}, hard_states={i: HardState(term=1) for i in (1, 2, 3)},
                max_size_per_msg=1)  # one entry per append: the old entry goes alone
    follower_has_old = lambda m: (  # noqa: E731
        isinstance(m, AppendEntries) and any(e.kind is EntryKind.NOOP for e in m.entries)
        and h[m.dst].log.last_index() >= 1)
    h[1].campaign()
    h.stabilize(drop=follower_has_old)
    leader = h[1]
    assert leader.role is Role.LEADER and leader.term == 2
    assert h.progress(1, 2).match == 1 and h.progress(1, 3).match == 1
    assert leader.log.committed == 0, "committed a term-1 entry by counting replicas"
    h.tick(1)  # a heartbeat round lets the no-op through
    h.stabilize()
    assert leader.log.committed == 2
    assert [e.index for e in h.applied[1]] == [1, 2]


def test_single_leader_commits_only_after_advance_reports_its_entry_stable() -> None:
    """Figure 2 / thesis §10.2.1: an entry is committed once stored on a majority --
    the leader's own copy counts only once durable, i.e. after advance()."""
    h = Harness(1)
    h.elect(1)
    idx = h.propose(1, b"x")[0]
    rd = h[1].ready()
    assert rd.entries and rd.entries[-1].index == idx
    assert h[1].log.committed < idx and all(e.index < idx for e in rd.committed_entries)
    h[1].advance(rd)
    assert h[1].log.committed == idx


def test_leader_does_not_count_itself_while_its_write_is_in_flight() -> None:
    """Thesis §10.2.1: the leader may send AppendEntries before its own write is
    durable, but must not count itself until it is. Here a follower's
    acknowledgement overtakes the leader's local write (as with an asynchronous
    disk): 1 replica of 3 is not a majority, so nothing commits until advance()."""
    h = Harness(3)
    h.elect(1)
    idx = h.propose(1, b"x")[0]
    rd = h[1].ready()
    assert any(isinstance(m, AppendEntries) for m in rd.messages), "appends may leave now"
    h.queue.extend(rd.messages)
    h.deliver(lambda m: m.dst == 2)
    h.persist(2)
    h.deliver(lambda m: m.dst == 1)  # the ack reaches the leader before its write ends
    assert h.progress(1, 2).match == idx
    assert h[1].log.committed < idx
    h[1].advance(rd)
    assert h[1].log.committed == idx


def test_learner_receives_the_log_but_never_counts_towards_commit() -> None:
    """Thesis §4.2.1 (non-voting members): a learner is replicated to like any
    follower, but an entry on the leader and the learner only is not committed."""
    h = Harness(3, learners=[4])
    h.elect(1)
    h.isolate(2, 3)
    idx = h.propose(1, b"x")[0]
    h.stabilize()
    assert h.progress(1, 4).match == idx
    assert h[1].log.committed < idx
    h.heal()
    h.tick(1)
    h.stabilize()
    assert h[1].log.committed == idx
    assert h.storage[4].entries == h.storage[1].entries
