"""What the core hands its caller: the Ready batch (etcd-io/raft's design)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .messages import Message
from .types import ConfState, Entry, HardState, NodeId, ReadState, Snapshot, Term


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (never persisted)."""

    lead: NodeId
    role: Role
    term: Term


@dataclass(slots=True)
class Ready:
    """Everything the caller must do, in this order (docs/raft-core.md):

    0. if `conf` is set, the membership in effect changed: add/remove transport peers
       (messages below may be addressed to a member added by this very Ready);
    1. send `messages` (they do not depend on anything below being durable);
    2. persist: install `snapshot` if any, append `entries` (truncating the log from
       entries[0].index), write `hard_state` if any -- with one fsync when `must_sync`;
    3. send `messages_after_persist` (vote grants, append acknowledgements: they
       promise the receiver that step 2 is durable);
    4. apply `committed_entries` in order, then serve `read_states` whose index is
       applied;
    5. call `advance(ready)`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    messages_after_persist: list[Message] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    must_sync: bool = False
    conf: ConfState | None = None
