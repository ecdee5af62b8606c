"""The persistence order: how one Raft `Ready` is handled, written once.

The node's actor (node/actor.py), the simulator (node/simulation/cluster.py) and
the test harnesses (tests/raft/harness.py, tests/scenarios/fabric.py) all call
`handle_ready`; each plugs in its own *ports* -- the real WAL, sockets and state
machine, or in-memory fakes. So the order the simulator proves is the order the
node runs (hashicorp/raft's LogStore/Transport/FSM interfaces; etcd-io/raft's
Ready contract; tikv/raft-rs's persisted messages).

The steps, numbered once here (node/raft/ready.py and docs/architecture.md refer
to this list):

1. **hooks**: the soft state (role, leader) and the membership: addresses from the
   conf-change entries about to be appended, and, when `conf` is set, a connection
   to every member of the configuration in effect (messages below may be addressed
   to a member this very Ready added);
2. **send** `messages`: they promise nothing about this node's disk -- a leader's
   AppendEntries leave before its own fsync, so the followers' disks work in
   parallel with the leader's (thesis §10.2.1; the core counts the leader towards a
   quorum only after `advance`);
3. **install** a received `snapshot`: the disk first (its WAL marker commits the
   already verified file), then the state machine takes its state (the node
   builds that state over earlier loop turns, before stepping the core with the
   snapshot: node/snapshot_install.py; here it is only swapped in);
4. **persist** `entries` (truncating the log from entries[0].index) and
   `hard_state` in one write, with one fsync iff `must_sync` (group commit);
5. **send** `messages_after_persist`: vote grants, append acknowledgements and
   every message said while the term or vote is not yet durable promise that
   step 4 is durable, so they go only now, and the core hears that the write is
   durable (`persisted`);
6. **apply** `committed_entries` in order (answering their clients), then the
   batch's after-work: `read_states`, reads whose index is now applied, replies;
7. **snapshot**: maybe *start* a snapshot of the state machine (the node writes it
   a few chunks per loop turn; the log is compacted once it is committed, after
   `advance`: the core must not change between `ready()` and `advance`);
8. **advance**: tell the core the Ready is handled (`accept`: its write is
   handed to the disk, durable or not).

With **asynchronous writes** (`ReadyPorts.writes`, node/wal_writer.py; etcd's
async storage writes), step 4 only queues the write for a writer thread and step
5 runs later, on the caller's thread, when that write is durable; the loop keeps
stepping the core meanwhile (ticks, heartbeats, acknowledgements, applying), so a
slow fdatasync delays acknowledgements but never silences the member. Writes end
in the order they were queued, so step 5 of each Ready still follows the write of
every earlier one. Nothing else touches the disk while writes are queued: the
disk drains the queue first (a snapshot install, a snapshot commit, closing).
The simulator runs both ways, its writes ending at random later times.

`between(step)`, when given, is called after each of steps 1-7 (with that step's
number): the simulator raises a crash there, so a node can die at every boundary
between two steps.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from node.raft import ConfState, Entry, HardState, Message, RaftCore, ReadState, Ready, Snapshot, SoftState


class Step(IntEnum):
    """The steps of `handle_ready`, by number (the module docstring says what each does)."""

    HOOKS = 1
    SEND = 2
    INSTALL = 3
    PERSIST = 4
    SEND_AFTER_PERSIST = 5
    APPLY = 6
    SNAPSHOT = 7
    ADVANCE = 8


class Peers(Protocol):
    """The network side: who the members are, and messages to them."""

    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        """Step 1: `appended` are about to be appended (conf changes carry addresses);
        `conf` is the configuration now in effect, when it changed."""

    def send(self, message: Message) -> None:
        """Steps 2 and 5: hand one message to the network (never blocks; a lost
        message is Raft's to retry)."""


class Disk(Protocol):
    """Stable storage: what survives a crash."""

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Step 3: make `snapshot` the durable base of the log (the log before and at
        its index is gone)."""

    def append(self, entries: list[Entry], hard_state: HardState | None, sync: bool) -> None:
        """Step 4: append `entries` (truncating from entries[0].index) and write
        `hard_state` in one write; durable on return iff `sync`."""


class Writes(Protocol):
    """Asynchronous step 4: a queue of writes that end, in order, on another thread."""

    def submit(self, rd: Ready, done: Callable[[], None]) -> None:
        """Queue `rd`'s write: its entries (truncating from entries[0].index) and hard
        state, one fsync iff `rd.must_sync`. `done()` runs on the caller's thread once
        the write is durable, after the `done` of every write queued before it."""


class Apply(Protocol):
    """The replicated state machine, and the clients waiting on it."""

    def restore(self, snapshot: Snapshot) -> None:
        """Step 3: take the installed snapshot's state."""

    def apply(self, entry: Entry) -> None:
        """Step 6: apply one committed entry (deterministically: every replica does the same)."""

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        """Step 6, after the batch (`committed` were just applied, maybe none):
        record `read_states`, serve every read whose index is applied, send the
        replies."""


class SnapshotHook(Protocol):
    def maybe_start(self) -> None:
        """Step 7: start a snapshot of the applied state if it is due."""


@dataclass(frozen=True, slots=True)
class ReadyPorts:
    """Everything `handle_ready` touches besides the core."""

    on_soft_state: Callable[[SoftState], None]
    peers: Peers
    disk: Disk
    apply: Apply
    snapshots: SnapshotHook
    #: asynchronous writes (step 4 queued, step 5 when durable); None: synchronous
    writes: Writes | None = None


def handle_ready(core: RaftCore, rd: Ready, ports: ReadyPorts,
                 between: Callable[[Step], None] | None = None) -> None:
    """Handle `rd` in the module docstring's numbered order, ending with `advance`."""
    # 1. hooks: soft state, then membership.
    if rd.soft_state is not None:
        ports.on_soft_state(rd.soft_state)
    peers = ports.peers
    if rd.entries or rd.conf is not None:
        peers.update_members(rd.entries, rd.conf)
    if between is not None:
        between(Step.HOOKS)
    # 2. messages that do not depend on this Ready being durable.
    send = peers.send
    for m in rd.messages:
        send(m)
    if between is not None:
        between(Step.SEND)
    # 3. a received snapshot: the disk commits it, then the state machine takes it.
    if rd.snapshot is not None:
        ports.disk.install_snapshot(rd.snapshot)
        ports.apply.restore(rd.snapshot)
    if between is not None:
        between(Step.INSTALL)
    # 4. entries + hard state in one write; one fsync iff must_sync.
    writes = ports.writes
    if writes is not None:
        if rd.entries or rd.hard_state is not None or rd.messages_after_persist:
            # Step 5 when the write is durable. A Ready with nothing to write still
            # queues: its acknowledgements may be of entries an earlier write carries.
            writes.submit(rd, lambda: persisted(core, rd, ports))
        if between is not None:
            between(Step.PERSIST)
            between(Step.SEND_AFTER_PERSIST)
    else:
        if rd.entries or rd.hard_state is not None:
            ports.disk.append(rd.entries, rd.hard_state, rd.must_sync)
        if between is not None:
            between(Step.PERSIST)
        # 5. what promises durability may go only now.
        persisted(core, rd, ports)
        if between is not None:
            between(Step.SEND_AFTER_PERSIST)
    # 6. apply committed entries, then serve reads and send replies.
    apply = ports.apply
    if rd.committed_entries:
        apply_one = apply.apply
        for entry in rd.committed_entries:
            apply_one(entry)
    apply.applied(rd.committed_entries, rd.read_states)
    if between is not None:
        between(Step.APPLY)
    # 7. maybe start a snapshot (compaction comes after `advance`).
    ports.snapshots.maybe_start()
    if between is not None:
        between(Step.SNAPSHOT)
    # 8. (`persisted` came in step 5, or comes when the queued write ends)
    core.accept(rd)


def persisted(core: RaftCore, rd: Ready, ports: ReadyPorts) -> None:
    """Step 5: `rd`'s write is durable: send what promised it, tell the core."""
    send = ports.peers.send
    for m in rd.messages_after_persist:
        send(m)
    core.persisted(rd)
