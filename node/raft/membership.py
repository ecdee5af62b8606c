"""Membership changes, one server at a time (thesis §4.1-4.3), with learners.

Rules (docs/raft-core.md, "Membership"):
* A change adds a learner, promotes a learner to voter, or removes a member: the
  voter sets of the old and new configurations differ by at most one server, so any
  majority of one overlaps any majority of the other (thesis §4.1).
* The configuration in effect is the one in the latest CONF_CHANGE entry in the log,
  committed or not (thesis §4.1); below the log, the snapshot's (or, for a log that
  starts at index 1, the boot configuration). Truncating that entry reverts it.
* The leader appends a change only when the previous one is committed and it has
  committed an entry of its own term (Ongaro's 2015 raft-dev fix).

This module holds the pure rules; `RaftCore` calls them and owns the state.
"""
from __future__ import annotations

from .errors import InvalidConfChange
from .types import ConfChange, ConfChangeKind, ConfState


def _conf(voters: set[int], learners: set[int]) -> ConfState:
    return ConfState(tuple(sorted(voters)), tuple(sorted(learners)))


def check_conf_change(conf: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after `cc`, or InvalidConfChange when `cc` makes no sense in
    `conf`. The lag check of a promotion needs the leader's progress: RaftCore does it."""
    voters, learners = set(conf.voters), set(conf.learners)
    node = cc.node_id
    if node < 1:
        raise InvalidConfChange(f"node id must be >= 1, got {node}")
    match cc.kind:
        case ConfChangeKind.ADD_LEARNER:
            if node in voters or node in learners:
                role = "a voter" if node in voters else "a learner"
                raise InvalidConfChange(f"cannot add node {node} as a learner: already {role}")
            learners.add(node)
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


def describe_conf_change(cc: ConfChange) -> str:
    text = f"{cc.kind.name.lower().replace('_', '-')} {cc.node_id}"
    if cc.result is not None:
        text += f" -> {describe_conf(cc.result)}"
    return text


def describe_conf(conf: ConfState) -> str:
    text = f"voters={list(conf.voters)}"
    return text + (f" learners={list(conf.learners)}" if conf.learners else "")
