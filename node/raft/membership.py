"""Membership changes, one server at a time (thesis §4.1-4.3), with learners.

Rules (docs/raft-core.md, "Membership"):
* A change adds a learner, adds a voter, promotes a learner to voter, removes a
  member, or updates a member (its context only: the configuration stays): the
  voter sets of the old and new configurations differ by at most one server, so any
  majority of one overlaps any majority of the other (thesis §4.1). A voter added
  directly starts with an empty log, like any new follower (thesis §4.2.1 calls
  that an availability gap, not a safety one: the quorum grows at once, so until
  it catches up it is one more voter the others must wait for).
* The configuration in effect is the one in the latest CONF_CHANGE entry in the log,
  committed or not (thesis §4.1); below the log, the snapshot's (or, for a log that
  starts at index 1, the boot configuration). Truncating that entry reverts it.
* The leader appends a change only when the previous one is committed and it has
  committed an entry of its own term (Ongaro's 2015 raft-dev fix).
* A learner is promoted only once it has caught up (thesis §4.2.1) and holds the
  latest membership entry, which names it.

`check_conf_change` is the pure rule for one change; `Membership` is the state a
`RaftCore` holds: the configuration in effect, where it starts, and the checks a
leader runs before appending a change. The core keeps the per-member Progress in
step with it (leader-side replication state is the core's).
"""
from __future__ import annotations

from collections.abc import Mapping

from .errors import (
    ConfChangePending, InvalidConfChange, LeaderNotReady, LearnerLagging, LogCompacted,
)
from .log import RaftLog
from .progress import Progress
from .types import (
    ConfChange, ConfChangeKind, ConfState, Index, NodeId, SnapshotMeta, Term,
    decode_conf_change,
)


def _conf(voters: set[NodeId], learners: set[NodeId]) -> ConfState:
    return ConfState(tuple(sorted(voters)), tuple(sorted(learners)))


def check_conf_change(conf: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after `cc`, or InvalidConfChange when `cc` makes no sense in
    `conf` (thesis §4.1: one server at a time). The lag check of a promotion needs the
    leader's progress: `Membership.check_proposal` does it."""
    voters, learners = set(conf.voters), set(conf.learners)
    node = cc.node_id
    if node < 1:
        raise InvalidConfChange(f"node id must be >= 1, got {node}")
    match cc.kind:
        case ConfChangeKind.ADD_LEARNER | ConfChangeKind.ADD_VOTER:
            if node in voters or node in learners:
                role = "a voter" if node in voters else "a learner"
                what = "a learner" if cc.kind is ConfChangeKind.ADD_LEARNER else "a voter"
                raise InvalidConfChange(f"cannot add node {node} as {what}: already {role}")
            (learners if cc.kind is ConfChangeKind.ADD_LEARNER else voters).add(node)
        case ConfChangeKind.UPDATE:
            if node not in voters and node not in learners:
                raise InvalidConfChange(f"cannot update node {node}: not a member")
        case ConfChangeKind.PROMOTE:
            if node not in learners:
                role = "already a voter" if node in voters else "not a member"
                raise InvalidConfChange(f"cannot promote node {node}: {role} (add it as a "
                                        "learner first)")
            learners.discard(node)
            voters.add(node)
        case ConfChangeKind.REMOVE:
            if node not in voters and node not in learners:
                raise InvalidConfChange(f"cannot remove node {node}: not a member")
            if voters == {node}:
                raise InvalidConfChange(f"cannot remove node {node}: it is the last voter")
            voters.discard(node)
            learners.discard(node)
        case _:
            raise InvalidConfChange(f"unknown conf change kind {cc.kind!r}")
    return _conf(voters, learners)


def conf_of_entry(log: RaftLog, index: Index) -> ConfState:
    """The membership the CONF_CHANGE entry at `index` puts in effect: every conf
    entry carries the whole configuration (its `result`), so no replay is needed."""
    result = decode_conf_change(log.entry_at(index).data).result
    assert result is not None, f"conf change entry {index} carries no configuration"
    return result


class Membership:
    """The configuration in effect on one node, as a function of its log (thesis §4.1).

    Invariants:
    * `conf` is that of the latest CONF_CHANGE entry in the log, committed or not,
      else `base` (the snapshot's, or the boot configuration -- empty for a node
      joining an existing cluster); `voters`/`learners` mirror `conf` as sets.
    * `index` is where `conf` is in effect from: its entry's index, or the snapshot's
      for `base` (0 for a boot configuration). A change is pending while
      `index > log.committed`.
    """

    __slots__ = ("base", "conf", "index", "voters", "learners", "_source")

    def __init__(self, conf: ConfState) -> None:
        self.base = conf
        self.conf = conf
        self.index = Index(0)
        self.voters: frozenset[NodeId] = frozenset(conf.voters)
        self.learners: frozenset[NodeId] = frozenset(conf.learners)
        # (index, term) of the entry (or snapshot) `conf` was read from: refresh()
        # re-reads only when the log's latest conf entry is a different one.
        self._source: tuple[Index, Term] | None = None

    def refresh(self, log: RaftLog) -> bool:
        """Make the membership in effect that of the latest CONF_CHANGE entry in the
        log -- applied on append, reverted on truncation (thesis §4.1) -- or, with
        none, the one below the log. Returns whether the configuration changed."""
        if log.conf_indexes:
            index = log.conf_indexes[-1]
            source = (index, log.entry_at(index).term)
            if source == self._source:
                return False
            conf = conf_of_entry(log, index)
        else:
            # Below the log: in effect as of the snapshot (index 0 for a boot conf).
            source = (log.snapshot_index, log.snapshot_term)
            if source == self._source:
                return False
            conf = self.base
        self._source = source
        self.index = source[0]
        if conf == self.conf:
            return False
        self.conf = conf
        self.voters = frozenset(conf.voters)
        self.learners = frozenset(conf.learners)
        return True

    def rebase(self, conf: ConfState) -> None:
        """The log now starts at a snapshot whose membership is `conf` (compaction, or
        an installed snapshot): that is the configuration below the log. Call
        `refresh` next."""
        self.base = conf
        self._source = None

    def conf_at(self, log: RaftLog, index: Index) -> ConfState:
        """The membership in effect after entry `index`: what a snapshot taken at
        `index` must carry (Raft §7: "the latest configuration as of the last included
        index"). Raises LogCompacted below the snapshot."""
        if index < log.snapshot_index:
            raise LogCompacted(f"index {index} is compacted (snapshot at {log.snapshot_index})")
        for i in reversed(log.conf_indexes):
            if i <= index:
                return conf_of_entry(log, i)
        return self.base

    def check_snapshot(self, log: RaftLog, meta: SnapshotMeta) -> ConfState:
        """The membership at `meta.index`, which a snapshot taken there must carry:
        followers that install it adopt it (Raft §7). ValueError when it does not."""
        expected = self.conf_at(log, meta.index)
        if (set(meta.conf.voters), set(meta.conf.learners)) != (
                set(expected.voters), set(expected.learners)):
            raise ValueError(f"snapshot at {meta.index} carries conf {meta.conf}, but the "
                             f"membership there is {expected}: use core.conf_at(index)")
        return expected

    def check_proposal(self, cc: ConfChange, log: RaftLog, term: Term,
                       prs: Mapping[NodeId, Progress], max_learner_lag: int) -> ConfChange:
        """The change a leader of `term` may append for `cc`, its `result` filled in;
        or the typed refusal: ConfChangePending, LeaderNotReady, LearnerLagging (retry
        later), InvalidConfChange (makes no sense)."""
        if self.index > log.committed:
            # One change at a time (thesis §4.1): all logs then differ by at most one
            # pending change, so every configuration in effect anywhere is C or C±1.
            raise ConfChangePending(f"the change at index {self.index} is not committed "
                                    f"yet (commit index {log.committed})")
        if log.term_at(log.committed) != term:
            # Without this a change could be appended while an uncommitted change of an
            # earlier term is still in some logs: two disjoint majorities (raft-dev 2015).
            raise LeaderNotReady(f"term {term} has no committed entry yet "
                                 f"(commit index {log.committed})")
        result = check_conf_change(self.conf, cc)
        if cc.kind is ConfChangeKind.PROMOTE:
            match = prs[cc.node_id].match
            lag = log.last_index() - match
            if lag > max_learner_lag or match < self.index:
                # Catch up first (thesis §4.2.1). The learner must also hold the latest
                # (committed) conf entry, which names it: only then does it count itself
                # a member and vote, so the new voter set never waits forever for a vote
                # it cannot give.
                raise LearnerLagging(cc.node_id, lag, max_learner_lag,
                                     self.index if match < self.index else 0)
        return ConfChange(cc.kind, cc.node_id, cc.context, result)
