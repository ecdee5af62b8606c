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

Joint consensus (Raft §6, thesis §4.3; etcd-io/raft's confchange), for changing
several voters at once:
* ENTER_JOINT applies its changes to a copy of the configuration: the result's
  `voters` are the incoming set, its `voters_outgoing` the voters before. While
  joint, every election and every commit needs a majority of each set, so no
  decision can be taken by the new set alone nor by the old set alone.
* A voter made a learner (or demoted by a REMOVE-then-ADD_LEARNER) while it is
  still an outgoing voter goes to `learners_next`: it stays a voter of the outgoing
  set until the joint configuration is left (etcd's rule: a node is never both).
* LEAVE_JOINT drops the outgoing set and moves `learners_next` to the learners. It
  is the only change allowed while joint (one pending change at a time still holds:
  enter and leave are each one change); the leader proposes it by itself once the
  entering entry commits when `auto_leave` is set.

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
    `conf` (thesis §4.1: one server at a time; or a joint step). The lag check of a
    promotion needs the leader's progress: `Membership.check_proposal` does it."""
    if cc.kind is ConfChangeKind.ENTER_JOINT:
        return _enter_joint(conf, cc)
    if cc.kind is ConfChangeKind.LEAVE_JOINT:
        return _leave_joint(conf)
    if conf.joint:
        raise InvalidConfChange(f"cannot {cc.kind.name.lower().replace('_', '-')} node {cc.node_id}: "
                                "the configuration is joint; leave it first")
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


def _enter_joint(conf: ConfState, cc: ConfChange) -> ConfState:
    """etcd-io/raft's EnterJoint: the outgoing set is the voters now; each change is
    applied to the incoming set and the learners in order."""
    if conf.joint:
        raise InvalidConfChange("the configuration is already joint: leave it first")
    if not cc.changes:
        raise InvalidConfChange("a joint change needs at least one change")
    outgoing = set(conf.voters)
    incoming, learners, learners_next = set(conf.voters), set(conf.learners), set()
    seen: set[NodeId] = set()
    for ch in cc.changes:
        node = ch.node_id
        if node < 1:
            raise InvalidConfChange(f"node id must be >= 1, got {node}")
        if node in seen:
            raise InvalidConfChange(f"node {node} is named twice in one joint change")
        seen.add(node)
        member = node in incoming or node in learners
        match ch.kind:
            case ConfChangeKind.ADD_VOTER if member:
                raise InvalidConfChange(f"cannot add node {node}: already a member")
            case ConfChangeKind.ADD_LEARNER if node in learners:
                raise InvalidConfChange(f"cannot add node {node} as a learner: already one")
            case ConfChangeKind.PROMOTE if node not in learners:
                raise InvalidConfChange(f"cannot promote node {node}: not a learner")
            case ConfChangeKind.REMOVE | ConfChangeKind.UPDATE if not member:
                raise InvalidConfChange(f"cannot {ch.kind.name.lower()} node {node}: not a member")
            case ConfChangeKind.ADD_VOTER | ConfChangeKind.PROMOTE:
                learners.discard(node)
                incoming.add(node)
            case ConfChangeKind.ADD_LEARNER:  # a new member, or a voter demoted
                incoming.discard(node)
                learners.add(node)
            case ConfChangeKind.REMOVE:
                incoming.discard(node)
                learners.discard(node)
            case ConfChangeKind.UPDATE:
                pass
            case _:
                raise InvalidConfChange(f"{ch.kind.name} cannot be part of a joint change")
    if not incoming:
        raise InvalidConfChange("a joint change cannot remove every voter")
    if incoming == outgoing:
        # Nothing to decide jointly (e.g. learners only): use simple changes.
        raise InvalidConfChange("a joint change must change the voters (use single changes "
                                "for learners and updates)")
    # A voter becoming a learner stays an outgoing voter until the joint config is left.
    learners_next = {n for n in learners if n in outgoing}
    learners -= learners_next
    return ConfState(tuple(sorted(incoming)), tuple(sorted(learners)), tuple(sorted(outgoing)),
                     tuple(sorted(learners_next)), cc.auto_leave)


def _leave_joint(conf: ConfState) -> ConfState:
    """etcd-io/raft's LeaveJoint: the incoming voters alone; learners_next become
    learners."""
    if not conf.joint:
        raise InvalidConfChange("the configuration is not joint: nothing to leave")
    return _conf(set(conf.voters), set(conf.learners) | set(conf.learners_next))


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

    __slots__ = ("base", "conf", "index", "voters", "learners", "outgoing", "all_voters", "_source")

    def __init__(self, conf: ConfState) -> None:
        self.base = conf
        self.conf = conf
        self.index = Index(0)
        self._mirror(conf)
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
        self._mirror(conf)
        return True

    def _mirror(self, conf: ConfState) -> None:
        # `voters` is the incoming set (all of them in a simple configuration);
        # `outgoing` is empty unless joint; `learners` includes learners_next, which
        # are outgoing voters too -- they receive the log either way.
        self.voters: frozenset[NodeId] = frozenset(conf.voters)
        self.outgoing: frozenset[NodeId] = frozenset(conf.voters_outgoing)
        self.all_voters: frozenset[NodeId] = self.voters | self.outgoing
        self.learners: frozenset[NodeId] = frozenset(conf.learners)

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
        def key(c: ConfState) -> tuple[frozenset[NodeId], frozenset[NodeId], frozenset[NodeId],
                                       frozenset[NodeId], bool]:
            return (frozenset(c.voters), frozenset(c.learners), frozenset(c.voters_outgoing),
                    frozenset(c.learners_next), c.auto_leave)
        if key(meta.conf) != key(expected):
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
        promoted = [cc.node_id] if cc.kind is ConfChangeKind.PROMOTE else [
            ch.node_id for ch in cc.changes if ch.kind is ConfChangeKind.PROMOTE]
        for node in promoted:
            match = prs[node].match
            lag = log.last_index() - match
            if lag > max_learner_lag or match < self.index:
                # Catch up first (thesis §4.2.1). The learner must also hold the latest
                # (committed) conf entry, which names it: only then does it count itself
                # a member and vote, so the new voter set never waits forever for a vote
                # it cannot give.
                raise LearnerLagging(node, lag, max_learner_lag,
                                     self.index if match < self.index else 0)
        return ConfChange(cc.kind, cc.node_id, cc.context, result, cc.changes,
                          result.auto_leave if cc.kind is ConfChangeKind.ENTER_JOINT else cc.auto_leave)
