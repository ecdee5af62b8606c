"""What the core hands its caller: the Ready batch (etcd-io/raft's design), and the
bookkeeping of the state it has reported so far."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .messages import Message
from .types import NONE, ConfState, Entry, HardState, Index, NodeId, ReadState, Snapshot, Term


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


class Reported:
    """What the caller has been handed in Ready batches (etcd's RawNode keeps the same,
    prevHardSt and prevSoftSt): a Ready carries hard state, soft state and membership
    only when they differ from the last ones reported, and `advance` records them."""

    __slots__ = ("hard_state", "soft_state", "conf")

    def __init__(self, hard_state: HardState, conf: ConfState) -> None:
        self.hard_state = hard_state
        self.soft_state = SoftState(NONE, Role.FOLLOWER, hard_state.term)
        self.conf = conf

    def fill(self, rd: Ready, term: Term, vote: NodeId, commit: Index, lead: NodeId,
             role: Role, conf: ConfState) -> bool:
        """Put in `rd` the membership, soft state and hard state that changed since
        the last report. Returns whether term or vote changed."""
        if conf is not self.conf:
            rd.conf = conf
        ss = self.soft_state
        if lead != ss.lead or role is not ss.role or term != ss.term:
            rd.soft_state = SoftState(lead, role, term)
        hs = self.hard_state
        term_or_vote_changed = term != hs.term or vote != hs.vote
        if term_or_vote_changed or commit != hs.commit:
            rd.hard_state = HardState(term, vote, commit)
        return term_or_vote_changed

    def acknowledge(self, rd: Ready) -> None:
        """The caller handled `rd` (advance)."""
        if rd.soft_state is not None:
            self.soft_state = rd.soft_state
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        if rd.conf is not None:
            self.conf = rd.conf
