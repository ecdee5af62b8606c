"""Values the Raft core takes and returns: ids, entries, hard state, snapshots.

Every value is a frozen, slotted dataclass: safe to share between the core, the
storage layer and the simulator without defensive copies.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NewType, cast

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
    learners receive the log but never vote or count towards a quorum.

    Joint consensus (Raft §6, thesis §4.3; etcd-io/raft's ConfState): while
    `voters_outgoing` is non-empty the configuration is joint -- `voters` is the
    incoming set, `voters_outgoing` the old one, and every election and commit needs
    a majority of each. `learners_next` are outgoing voters that become learners
    when the joint configuration is left (a voter cannot be a learner at once);
    `auto_leave` says the leader leaves the joint configuration by itself once the
    entry entering it commits.
    """

    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()
    voters_outgoing: tuple[NodeId, ...] = ()
    learners_next: tuple[NodeId, ...] = ()
    auto_leave: bool = False

    def __post_init__(self) -> None:
        if set(self.voters) & set(self.learners):
            raise ValueError(f"a node cannot be both voter and learner: {self}")
        if set(self.voters_outgoing) & set(self.learners):
            raise ValueError(f"an outgoing voter cannot be a learner: {self}")
        if not set(self.learners_next) <= set(self.voters_outgoing) - set(self.voters):
            raise ValueError(f"learners_next must be outgoing-only voters: {self}")
        if not self.voters_outgoing and (self.learners_next or self.auto_leave):
            raise ValueError(f"learners_next and auto_leave need a joint configuration: {self}")

    @property
    def joint(self) -> bool:
        return bool(self.voters_outgoing)

    def all_voters(self) -> frozenset[NodeId]:
        """Every node that votes: both sets while joint."""
        return frozenset(self.voters) | frozenset(self.voters_outgoing)

    def ids(self) -> frozenset[NodeId]:
        """Every member: whoever votes, is a learner, or becomes one on leaving."""
        return self.all_voters() | frozenset(self.learners)

    def joint_fields(self) -> list[object]:
        """What storage and wire formats append after [voters, learners] for a joint
        configuration ([] for a simple one, so those stay byte for byte as before)."""
        if not self.joint:
            return []
        return [list(self.voters_outgoing), list(self.learners_next), self.auto_leave]

    @classmethod
    def from_fields(cls, voters: object, learners: object, joint: list[object] | tuple[object, ...] = ()
                    ) -> ConfState:
        """Inverse of ([voters, learners] + joint_fields()); ValueError when malformed."""
        def ids(value: object, what: str) -> tuple[NodeId, ...]:
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
                raise ValueError(f"{what} must be a list of ids >= 1, got {value!r}")
            return tuple(NodeId(v) for v in value)
        if not joint:
            return cls(ids(voters, "voters"), ids(learners, "learners"))
        if len(joint) != 3 or not isinstance(joint[2], bool):
            raise ValueError(f"joint fields must be [outgoing, learners_next, auto_leave], got {joint!r}")
        outgoing = ids(joint[0], "outgoing voters")
        if not outgoing:
            raise ValueError("a joint configuration needs outgoing voters")
        return cls(ids(voters, "voters"), ids(learners, "learners"), outgoing,
                   ids(joint[1], "learners_next"), joint[2])


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
    """Membership changes: one server at a time (thesis §4.1-4.3), with learners;
    or several at once through a joint configuration (ENTER_JOINT, LEAVE_JOINT)."""

    ADD_LEARNER = 1  # a new, non-voting member that receives the log
    PROMOTE = 2  # a caught-up learner becomes a voter
    REMOVE = 3  # a voter or learner leaves
    ADD_VOTER = 4  # a new member that votes at once (etcd's MemberAdd without --learner)
    UPDATE = 5  # a member's context (its addresses) changes; the configuration does not
    ENTER_JOINT = 6  # several changes at once (`changes`): enter the joint configuration
    LEAVE_JOINT = 7  # leave the joint configuration: the incoming voters alone decide


@dataclass(frozen=True, slots=True)
class ConfChangeSingle:
    """One of the changes an ENTER_JOINT makes: ADD_LEARNER, ADD_VOTER, PROMOTE,
    REMOVE or UPDATE of `node_id`, with its own context (a new member's addresses)."""

    kind: ConfChangeKind
    node_id: NodeId
    context: bytes = b""


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
    #: ENTER_JOINT only: the changes made at once, and whether the leader leaves the
    #: joint configuration by itself once this entry commits.
    changes: tuple[ConfChangeSingle, ...] = ()
    auto_leave: bool = True


def enter_joint(changes: tuple[ConfChangeSingle, ...] | list[ConfChangeSingle],
                auto_leave: bool = True) -> ConfChange:
    """An ENTER_JOINT change. Its `node_id` is the first change's (ids are >= 1 in
    every entry); the changes are what counts."""
    changes = tuple(changes)
    return ConfChange(ConfChangeKind.ENTER_JOINT, changes[0].node_id if changes else NodeId(0),
                      b"", None, changes, auto_leave)


def leave_joint(node_id: NodeId) -> ConfChange:
    """A LEAVE_JOINT change; `node_id` is the proposer's (informational)."""
    return ConfChange(ConfChangeKind.LEAVE_JOINT, node_id, auto_leave=False)


# version, kind, node id, context length | context | voter count, learner count | ids
_CC_HEAD = struct.Struct(">BBQI")
_CC_CONF = struct.Struct(">HH")
_CC_VERSION = 1
#: Version 2 (joint consensus) appends, after version 1's ids: outgoing count,
#: learners_next count, auto_leave | their ids | change count | per change: kind,
#: node id, context length, context. Written only for what version 1 cannot say
#: (ENTER_JOINT, LEAVE_JOINT, or a joint result), so simple changes stay byte for
#: byte what older nodes wrote; both versions decode (WALs and snapshots on disk).
_CC_VERSION_JOINT = 2
_CC_JOINT = struct.Struct(">HH?")
_CC_COUNT = struct.Struct(">H")
_CC_SINGLE = struct.Struct(">BQI")
_NO_RESULT = 0xFFFF  # voter count meaning "no result" (a change not yet appended)


def _needs_v2(cc: ConfChange) -> bool:
    return (cc.kind in (ConfChangeKind.ENTER_JOINT, ConfChangeKind.LEAVE_JOINT)
            or bool(cc.changes) or (cc.result is not None and cc.result.joint))


def encode_conf_change(cc: ConfChange) -> bytes:
    """The entry data for `cc` (stdlib struct, big-endian)."""
    v2 = _needs_v2(cc)
    head = _CC_HEAD.pack(_CC_VERSION_JOINT if v2 else _CC_VERSION, int(cc.kind), cc.node_id,
                         len(cc.context))
    if cc.result is None:
        out = head + cc.context + _CC_CONF.pack(_NO_RESULT, 0)
    else:
        ids = cc.result.voters + cc.result.learners
        conf = _CC_CONF.pack(len(cc.result.voters), len(cc.result.learners))
        out = head + cc.context + conf + struct.pack(f">{len(ids)}Q", *ids)
    if not v2:
        return out
    r = cc.result or ConfState()
    joint_ids = r.voters_outgoing + r.learners_next
    parts = [out, _CC_JOINT.pack(len(r.voters_outgoing), len(r.learners_next),
                                 r.auto_leave if cc.result is not None else cc.auto_leave),
             struct.pack(f">{len(joint_ids)}Q", *joint_ids), _CC_COUNT.pack(len(cc.changes))]
    for ch in cc.changes:
        parts += [_CC_SINGLE.pack(int(ch.kind), ch.node_id, len(ch.context)), ch.context]
    return b"".join(parts)


def decode_conf_change(data: bytes) -> ConfChange:
    """Inverse of encode_conf_change; ValueError on anything else."""
    try:
        version, kind, node_id, n_ctx = _CC_HEAD.unpack_from(data, 0)
        if version not in (_CC_VERSION, _CC_VERSION_JOINT):
            raise ValueError(f"unknown conf change version {version}")
        if kind not in ConfChangeKind._value2member_map_:
            raise ValueError(f"unknown conf change kind {kind}")
        if version == _CC_VERSION and kind in (ConfChangeKind.ENTER_JOINT, ConfChangeKind.LEAVE_JOINT):
            raise ValueError(f"conf change kind {kind} needs version {_CC_VERSION_JOINT}")
        pos = _CC_HEAD.size
        context = bytes(data[pos:pos + n_ctx])
        if len(context) != n_ctx:
            raise ValueError("conf change context is truncated")
        pos += n_ctx
        n_voters, n_learners = _CC_CONF.unpack_from(data, pos)
        pos += _CC_CONF.size
        voters: tuple[NodeId, ...] = ()
        learners: tuple[NodeId, ...] = ()
        if n_voters != _NO_RESULT:
            ids = cast(tuple[NodeId, ...], struct.unpack_from(f">{n_voters + n_learners}Q", data, pos))
            pos += 8 * len(ids)
            voters, learners = ids[:n_voters], ids[n_voters:]
        elif n_learners:
            raise ValueError("conf change without result lists learners")
        outgoing: tuple[NodeId, ...] = ()
        learners_next: tuple[NodeId, ...] = ()
        auto_leave = True
        changes: list[ConfChangeSingle] = []
        if version == _CC_VERSION_JOINT:
            n_out, n_next, auto_leave = _CC_JOINT.unpack_from(data, pos)
            pos += _CC_JOINT.size
            ids = cast(tuple[NodeId, ...], struct.unpack_from(f">{n_out + n_next}Q", data, pos))
            pos += 8 * len(ids)
            outgoing, learners_next = ids[:n_out], ids[n_out:]
            (n_changes,) = _CC_COUNT.unpack_from(data, pos)
            pos += _CC_COUNT.size
            for _ in range(n_changes):
                ch_kind, ch_node, ch_n_ctx = _CC_SINGLE.unpack_from(data, pos)
                pos += _CC_SINGLE.size
                ch_ctx = bytes(data[pos:pos + ch_n_ctx])
                if len(ch_ctx) != ch_n_ctx:
                    raise ValueError("conf change context is truncated")
                pos += ch_n_ctx
                if ch_kind not in _SINGLE_KINDS or ch_node < 1:
                    raise ValueError(f"bad change in a joint conf change: kind {ch_kind}, node {ch_node}")
                changes.append(ConfChangeSingle(ConfChangeKind(ch_kind), ch_node, ch_ctx))
        result = None
        if n_voters != _NO_RESULT:
            result = ConfState(voters, learners, outgoing, learners_next,
                               bool(auto_leave) and bool(outgoing))
        elif outgoing or learners_next:
            raise ValueError("conf change without result lists outgoing voters")
    except struct.error as e:
        raise ValueError(f"malformed conf change: {e}") from None
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after a conf change")
    if node_id < 1:
        raise ValueError(f"conf change for node id {node_id} (ids are >= 1)")
    return ConfChange(ConfChangeKind(kind), node_id, context, result, tuple(changes),
                      bool(auto_leave))


#: The kinds an ENTER_JOINT's changes may have.
_SINGLE_KINDS = frozenset({ConfChangeKind.ADD_LEARNER, ConfChangeKind.ADD_VOTER, ConfChangeKind.PROMOTE,
                           ConfChangeKind.REMOVE, ConfChangeKind.UPDATE})
