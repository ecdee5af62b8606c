"""Values the Raft core takes and returns: ids, entries, hard state, snapshots.

Every value is a frozen, slotted dataclass: safe to share between the core, the
storage layer and the simulator without defensive copies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NewType

NodeId = NewType("NodeId", int)
Term = NewType("Term", int)
Index = NewType("Index", int)

#: "No node": used for "voted for nobody" and "leader unknown". Real ids are >= 1.
NONE: NodeId = NodeId(0)


class EntryKind(IntEnum):
    """What a log entry carries."""

    NORMAL = 0  # an opaque command for the state machine
    NOOP = 1  # appended by every new leader (Raft §5.4.2, §8): commits earlier terms' entries
    CONF_CHANGE = 2  # a membership change (issue #9); opaque to the core for now


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. Invariant: index >= 1, term >= 1."""

    term: int
    index: int
    data: bytes = b""
    kind: EntryKind = EntryKind.NORMAL


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before the node answers anyone (Raft Figure 2).

    `vote` is NONE when the node has not voted in `term`. `commit` is persisted so a
    restart can re-apply committed entries without waiting for a leader.
    """

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership configuration: voters decide elections and commitment;
    learners receive the log but never vote or count towards a quorum."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if set(self.voters) & set(self.learners):
            raise ValueError(f"a node cannot be both voter and learner: {self}")


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Describes a snapshot: the state machine after applying entries 1..index."""

    index: int = 0
    term: int = 0
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

    index: int
    ctx: bytes
