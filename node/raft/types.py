"""Values the Raft core takes and returns: ids, entries, hard state, snapshots.

Every value is a frozen, slotted dataclass: safe to share between the core, the
storage layer and the simulator without defensive copies.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NewType

#: A member's id (>= 1), a term number, a log position. Plain ints at run time: the
#: NewTypes only let mypy keep an index from being passed where a term is meant.
NodeId = NewType("NodeId", int)
Term = NewType("Term", int)
Index = NewType("Index", int)

#: "No node": used for "voted for nobody" and "leader unknown". Real ids are >= 1.
NONE: NodeId = NodeId(0)


class EntryKind(IntEnum):
    """What a log entry carries."""

    NORMAL = 0  # an opaque command for the state machine
    NOOP = 1  # appended by every new leader (Raft §5.4.2, §8): commits earlier terms' entries
    CONF_CHANGE = 2  # a membership change: data is encode_conf_change(...) (docs/raft-core.md)


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. Invariant: index >= 1, term >= 1."""

    term: Term
    index: Index
    data: bytes = b""
    kind: EntryKind = EntryKind.NORMAL


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before the node answers anyone (Raft Figure 2).

    `vote` is NONE when the node has not voted in `term`. `commit` is persisted so a
    restart can re-apply committed entries without waiting for a leader.
    """

    term: Term = Term(0)
    vote: NodeId = NONE
    commit: Index = Index(0)


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership configuration: voters decide elections and commitment;
    learners receive the log but never vote or count towards a quorum."""

    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()

    def __post_init__(self) -> None:
        if set(self.voters) & set(self.learners):
            raise ValueError(f"a node cannot be both voter and learner: {self}")


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Describes a snapshot: the state machine after applying entries 1..index."""

    index: Index = Index(0)
    term: Term = Term(0)
    conf: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot as the core sees it: metadata plus an opaque `data` handle.

    The core never looks inside `data`: the node puts a file reference there (the
    bytes are streamed by storage and transport), the simulator an in-memory copy.
    """

    meta: SnapshotMeta
    data: object = None


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read (ReadIndex, Raft thesis §6.4) that is safe to serve once
    the state machine has applied `index`. `ctx` is the caller's request id."""

    index: Index
    ctx: bytes


class ConfChangeKind(IntEnum):
    """One-server-at-a-time membership changes (thesis §4.1-4.3), with learners."""

    ADD_LEARNER = 1  # a new, non-voting member that receives the log
    PROMOTE = 2  # a caught-up learner becomes a voter
    REMOVE = 3  # a voter or learner leaves
    ADD_VOTER = 4  # a new member that votes at once (etcd's MemberAdd without --learner)
    UPDATE = 5  # a member's context (its addresses) changes; the configuration does not


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A membership change, the data of an EntryKind.CONF_CHANGE entry.

    `context` is opaque to the core (the node puts the member's addresses there).
    `result` is the membership once this change is in effect; the leader's core fills
    it in when it appends the entry, so every entry is self-describing: a node that
    joins with an empty configuration, or restarts, learns the whole membership from
    the latest conf-change entry it holds, not by replaying changes from a bootstrap
    configuration it may never have seen.
    """

    kind: ConfChangeKind
    node_id: NodeId
    context: bytes = b""
    result: ConfState | None = None


# version, kind, node id, context length | context | voter count, learner count | ids
_CC_HEAD = struct.Struct(">BBQI")
_CC_CONF = struct.Struct(">HH")
_CC_VERSION = 1
_NO_RESULT = 0xFFFF  # voter count meaning "no result" (a change not yet appended)


def encode_conf_change(cc: ConfChange) -> bytes:
    """The entry data for `cc` (stdlib struct, big-endian)."""
    head = _CC_HEAD.pack(_CC_VERSION, int(cc.kind), cc.node_id, len(cc.context))
    if cc.result is None:
        return head + cc.context + _CC_CONF.pack(_NO_RESULT, 0)
    ids = cc.result.voters + cc.result.learners
    conf = _CC_CONF.pack(len(cc.result.voters), len(cc.result.learners))
    return head + cc.context + conf + struct.pack(f">{len(ids)}Q", *ids)


def decode_conf_change(data: bytes) -> ConfChange:
    """Inverse of encode_conf_change; ValueError on anything else."""
    try:
        version, kind, node_id, n_ctx = _CC_HEAD.unpack_from(data, 0)
        if version != _CC_VERSION:
            raise ValueError(f"unknown conf change version {version}")
        if kind not in ConfChangeKind._value2member_map_:
            raise ValueError(f"unknown conf change kind {kind}")
        pos = _CC_HEAD.size
        context = bytes(data[pos:pos + n_ctx])
        if len(context) != n_ctx:
            raise ValueError("conf change context is truncated")
        pos += n_ctx
        n_voters, n_learners = _CC_CONF.unpack_from(data, pos)
        pos += _CC_CONF.size
        result = None
        if n_voters != _NO_RESULT:
            ids = struct.unpack_from(f">{n_voters + n_learners}Q", data, pos)
            pos += 8 * len(ids)
            result = ConfState(ids[:n_voters], ids[n_voters:])
        elif n_learners:
            raise ValueError("conf change without result lists learners")
    except struct.error as e:
        raise ValueError(f"malformed conf change: {e}") from None
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after a conf change")
    if node_id < 1:
        raise ValueError(f"conf change for node id {node_id} (ids are >= 1)")
    return ConfChange(ConfChangeKind(kind), node_id, context, result)
