"""A tiny in-memory harness for the tier-1 paper-rule tests of the Raft core.

N `RaftCore`s, one FIFO of messages in flight, and a trivial "disk" per node: a
test drives time (`tick`), handles Ready batches (`persist`), and delivers messages
by hand -- all of them, a selection, or with some dropped -- so every rule can be
checked at the exact step where it applies. No sockets, no clock, no threads; the
only randomness is a seeded `random.Random` per core.

Every Ready handled here is also checked against the durability contract (see
`check_ready_contract`), so each test doubles as a contract test.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from node.raft import (
    AppendEntries, AppendEntriesResponse, Config, ConfState, Entry, HardState, Message,
    RaftCore, ReadState, Ready, RequestVote, RequestVoteResponse, Role, Snapshot,
)
from node.raft.progress import Progress
from node.ready_handler import ReadyPorts, handle_ready

MessagePredicate = Callable[[Message], bool]


@dataclass(slots=True)
class MemoryStorage:
    """What one node made durable: hard state, snapshot, log entries after it."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.entries = []

    def append(self, entries: Sequence[Entry], hard_state: HardState | None = None, sync: bool = False) -> None:
        if hard_state is not None:
            self.hard_state = hard_state
        if not entries:
            return
        first = entries[0].index
        self.entries = [e for e in self.entries if e.index < first] + list(entries)


class HarnessPorts:
    """`handle_ready`'s ports for one harness node: messages join the shared queue,
    committed entries and read states are recorded for the test to look at."""

    def __init__(self, queue: list[Message], applied: list[Entry], read_states: list[ReadState]) -> None:
        self.send = queue.append
        self.apply = applied.append
        self._read_states = read_states

    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        pass

    def restore(self, snapshot: Snapshot) -> None:
        pass

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        self._read_states.extend(read_states)

    def maybe_start(self) -> None:
        pass


def ready_ports(storage: MemoryStorage, ports: HarnessPorts) -> ReadyPorts:
    return ReadyPorts(lambda soft_state: None, peers=ports, disk=storage, apply=ports, snapshots=ports)


def check_ready_contract(rd: Ready, previous: HardState) -> None:
    """The Ready rules every handled batch must follow (tikv/raft-rs's persisted
    messages; ARCHITECTURE.md's numbered Ready handling)."""
    for m in rd.messages:
        assert not isinstance(m, (RequestVoteResponse, AppendEntriesResponse)), (
            f"{m} promises durable state but is in `messages` (send-now)")
    term_or_vote_changed = rd.hard_state is not None and (
        rd.hard_state.term, rd.hard_state.vote) != (previous.term, previous.vote)
    if term_or_vote_changed:
        assert not rd.messages, (
            f"Ready changes term/vote to {rd.hard_state} but sends {rd.messages} before persisting")
    if rd.entries or term_or_vote_changed or rd.snapshot is not None:
        assert rd.must_sync, f"must_sync is false for a Ready that persists {rd}"
    for a, b in zip(rd.entries, rd.entries[1:]):
        assert b.index == a.index + 1, f"unstable entries not contiguous: {a} then {b}"
    for a, b in zip(rd.committed_entries, rd.committed_entries[1:]):
        assert b.index == a.index + 1, f"committed entries not contiguous: {a} then {b}"


def make_config(node_id: int, seed: int = 1, **overrides: object) -> Config:
    """A Config with an rng derived from (seed, node id): deterministic per test."""
    return Config(id=node_id, rng=random.Random(seed * 1000 + node_id), **overrides)  # type: ignore[arg-type]


def entries_of(terms: Iterable[int], start: int = 1, data: bytes = b"") -> list[Entry]:
    """Log entries with the given terms at consecutive indexes from `start`."""
    return [Entry(t, start + k, data) for k, t in enumerate(terms)]


class Harness:
    """N cores wired through one message queue that the test delivers by hand."""

    def __init__(self, n: int = 3, *, learners: Sequence[int] = (), seed: int = 1,
                 logs: dict[int, Sequence[Entry]] | None = None,
                 hard_states: dict[int, HardState] | None = None,
                 **config: object) -> None:
        self.voters = tuple(range(1, n + 1))
        self.learners = tuple(learners)
        self.seed = seed
        self.config = config
        self.conf = ConfState(self.voters, self.learners)
        self.cores: dict[int, RaftCore] = {}
        self.storage: dict[int, MemoryStorage] = {}
        self.applied: dict[int, list[Entry]] = {}
        self.read_states: dict[int, list[ReadState]] = {}
        self.readies: dict[int, list[Ready]] = {}
        self.queue: list[Message] = []
        self.delivered: list[Message] = []
        self.dropped: list[Message] = []
        self.cut: set[int] = set()  # nodes isolated from everyone
        self.boot_conf: dict[int, ConfState] = {}  # what each node was booted with
        for node_id in self.voters + self.learners:
            st = MemoryStorage(
                hard_state=(hard_states or {}).get(node_id, HardState()),
                entries=list((logs or {}).get(node_id, ())))
            self.storage[node_id] = st
            self.applied[node_id] = []
            self.read_states[node_id] = []
            self.readies[node_id] = []
            self.boot_conf[node_id] = self.conf
            self.cores[node_id] = self._start(node_id)

    # -- nodes ---------------------------------------------------------------
    def _start(self, node_id: int) -> RaftCore:
        st = self.storage[node_id]
        return RaftCore(make_config(node_id, self.seed, **self.config), self.boot_conf[node_id],
                        hard_state=st.hard_state, snapshot=st.snapshot, entries=st.entries)

    def join(self, node_id: int) -> RaftCore:
        """Start a brand-new node with an empty disk and an EMPTY configuration: it
        learns the membership from the leader's log or snapshot."""
        self.storage[node_id] = MemoryStorage()
        self.applied[node_id] = []
        self.read_states[node_id] = []
        self.readies[node_id] = []
        self.boot_conf[node_id] = ConfState()
        self.cores[node_id] = self._start(node_id)
        return self.cores[node_id]

    def restart(self, node_id: int) -> RaftCore:
        """Crash `node_id` and start it again from what it persisted."""
        self.applied[node_id] = []
        self.cores[node_id] = self._start(node_id)
        return self.cores[node_id]

    def __getitem__(self, node_id: int) -> RaftCore:
        return self.cores[node_id]

    def progress(self, leader: int, peer: int) -> Progress:
        return self.cores[leader].prs[peer]

    def leaders(self) -> list[int]:
        return [i for i, c in self.cores.items() if c.role is Role.LEADER]

    # -- Ready handling ------------------------------------------------------
    def persist(self, node_id: int) -> Ready | None:
        """Handle one Ready of `node_id` the way the node's actor does, then advance.
        Messages (both kinds) join the queue."""
        core = self.cores[node_id]
        if not core.has_ready():
            return None
        rd = core.ready()
        st = self.storage[node_id]
        check_ready_contract(rd, st.hard_state)
        self.readies[node_id].append(rd)
        ports = HarnessPorts(self.queue, self.applied[node_id], self.read_states[node_id])
        handle_ready(core, rd, ready_ports(st, ports))
        return rd

    def persist_all(self) -> bool:
        """Handle one Ready of every node that has one; returns whether any had."""
        handled = [self.persist(node_id) for node_id in self.cores]
        return any(rd is not None for rd in handled)

    # -- network -------------------------------------------------------------
    def isolate(self, *node_ids: int) -> None:
        self.cut.update(node_ids)

    def heal(self) -> None:
        self.cut.clear()

    def _blocked(self, m: Message) -> bool:
        return m.src in self.cut or m.dst in self.cut

    def take(self, select: MessagePredicate | None = None) -> list[Message]:
        """Remove from the queue (without delivering) every message `select` matches."""
        keep, taken = [], []
        for m in self.queue:
            (taken if select is None or select(m) else keep).append(m)
        self.queue = keep
        return taken

    def peek(self, kind: type | tuple[type, ...] = object, *, src: int | None = None,
             dst: int | None = None) -> list[Any]:
        """The queued messages of `kind` (optionally from `src` / to `dst`); typed Any
        so tests can read the fields of the kind they asked for."""
        return [m for m in self.queue if isinstance(m, kind)
                and (src is None or m.src == src) and (dst is None or m.dst == dst)]

    def deliver(self, select: MessagePredicate | None = None,
                drop: MessagePredicate | None = None) -> list[Message]:
        """Deliver, in order, every queued message `select` matches (all by default);
        messages to or from an isolated node, or matching `drop`, are lost.
        Messages produced meanwhile wait for the next call."""
        batch = self.take(select)
        out = []
        for m in batch:
            if (self._blocked(m) or (drop is not None and drop(m))
                    or m.dst not in self.cores):  # to a node that is not running
                self.dropped.append(m)
                continue
            self.delivered.append(m)
            self.cores[m.dst].step(m)
            out.append(m)
        return out

    def stabilize(self, drop: MessagePredicate | None = None, max_rounds: int = 200) -> None:
        """Persist and deliver until nothing is left to do."""
        for _ in range(max_rounds):
            busy = self.persist_all()
            if not self.queue and not busy:
                return
            self.deliver(drop=drop)
        raise AssertionError(f"no quiescence after {max_rounds} rounds: {self.queue[:5]}")

    # -- time and common scripts --------------------------------------------
    def tick(self, node_ids: Iterable[int] | int, n: int = 1) -> None:
        ids = [node_ids] if isinstance(node_ids, int) else list(node_ids)
        for _ in range(n):
            for node_id in ids:
                self.cores[node_id].tick()

    def elect(self, node_id: int) -> RaftCore:
        """Campaign `node_id` and run the cluster until it is a settled leader."""
        self.cores[node_id].campaign()
        self.stabilize()
        core = self.cores[node_id]
        assert core.role is Role.LEADER, f"node {node_id} did not win: {core.status()}"
        return core

    def propose(self, node_id: int, *payloads: bytes) -> list[int]:
        return [self.cores[node_id].propose(p) for p in payloads]


def with_term(m: Message, term: int) -> Message:
    return replace(m, term=term)


def is_append_with_entries(m: Message) -> bool:
    return isinstance(m, AppendEntries) and bool(m.entries)


def vote_request(src: int, dst: int, term: int, last_index: int, last_term: int, *,
                 pre_vote: bool = False, transfer: bool = False) -> RequestVote:
    return RequestVote(src, dst, term, last_index, last_term, pre_vote, transfer)
