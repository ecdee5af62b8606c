"""What the core hands its caller: the Ready batch (etcd-io/raft's design)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .messages import Message
from .types import ConfState, Entry, HardState, ReadState, Snapshot


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (never persisted)."""

    lead: int
    role: Role
    term: int


@dataclass(slots=True)
class Ready:
    """Everything the caller must do, in this order -- the one numbering is
    node/ready_handler.py's `handle_ready`, which every caller uses:

    1. hooks: `soft_state`; membership: if `conf` is set, the membership in effect
       changed: add/remove transport peers (messages below may be addressed to a
       member added by this very Ready);
    2. send `messages` (they do not depend on anything below being durable);
    3. install `snapshot` if any;
    4. append `entries` (truncating the log from entries[0].index) and write
       `hard_state` if any -- with one fsync when `must_sync`;
    5. send `messages_after_persist` (vote grants, append acknowledgements: they
       promise the receiver that steps 3-4 are durable);
    6. apply `committed_entries` in order, then serve `read_states` whose index is
       applied;
    7. maybe start a snapshot (compact only after `advance`);
    8. call `advance(ready)`. Nothing else may be called on the core in between.
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
