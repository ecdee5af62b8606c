"""The simulated cluster: cores, disks, network, state machines and clients.

Every Ready goes through the node's own `handle_ready` (node/ready_handler.py),
with fake ports (`SimPorts`): the simulated disk, network and state machine, which
check Raft's invariants as the Ready's steps reach them. A crash can be injected
at every boundary between two of its steps (`SimNode.crash_in_ready`), so the
simulator proves exactly the order the node runs.
"""
from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from node.raft import (
    Config, ConfChange, ConfChangeKind, ConfChangeSingle, InstallSnapshot, enter_joint, leave_joint, ConfState, Entry, EntryKind, HardState,
    Message, ProposalDropped, RaftCore, RaftError, ReadState, Ready, Role, Snapshot, SnapshotMeta, SoftState,
    decode_conf_change,
)
from node.ready_handler import ReadyPorts, Step, handle_ready

from .disk import SimDisk
from .invariants import InvariantChecker
from .network import SimNetwork


@dataclass(slots=True)
class SimStateMachine:
    """A replicated set of client operations, applied at most once each (the node's
    exactly-once sessions play this role for real)."""

    applied_index: int = 0
    ops: list[bytes] = field(default_factory=list)
    op_set: set[bytes] = field(default_factory=set)

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied_index + 1, (
            f"applied {entry.index} after {self.applied_index}: gap or repeat")
        self.applied_index = entry.index
        if entry.kind is EntryKind.NORMAL and entry.data not in self.op_set:
            self.op_set.add(entry.data)
            self.ops.append(entry.data)

    def snapshot_data(self) -> tuple[int, tuple[bytes, ...]]:
        return (self.applied_index, tuple(self.ops))

    @classmethod
    def restore(cls, data: object) -> SimStateMachine:
        index, ops = data  # type: ignore[misc]
        return cls(index, list(ops), set(ops))


@dataclass(slots=True)
class ClientOp:
    op_id: bytes
    created: int
    proposed_at: int = -1
    proposal: tuple[int, int, int] | None = None  # (node, term, index)
    acked_at: int = -1


@dataclass(slots=True)
class ClientRead:
    ctx: bytes
    node: int
    acked_before: int  # how many writes were acknowledged when the read was invoked
    served: bool = False


class SimNode:
    def __init__(self, node_id: int, checker: InvariantChecker,
                 boot_conf: ConfState = ConfState()) -> None:
        self.id = node_id
        # What this node boots with: the initial voters, or nothing for a joiner.
        self.boot_conf = boot_conf
        self.reported_conf: ConfState | None = None  # the last Ready.conf, or core.conf at start
        self.applied_conf: ConfState | None = None  # membership as of the applied index
        self.disk = SimDisk(node_id, checker)
        self.core: RaftCore | None = None
        self.sm = SimStateMachine()
        self.read_states: list[ReadState] = []
        # Dies inside its next Ready, right after this step (node/ready_handler.py).
        self.crash_in_ready: Step | None = None
        self.snapshot_due: Snapshot | None = None  # taken in step 7, compacted after advance
        self.ports: ReadyPorts | None = None
        self.between: Callable[[Step], None] | None = None
        self.led_term = 0  # the term this incarnation last led in (Leader Append-Only)
        self.restarts = 0
        self.commit_checked = 0  # (joint mode) the leader commit index checked against the disks
        # Asynchronous writes queued and not yet durable, oldest first: (due tick,
        # Ready, its step 5, the term it was led in or 0). A crash makes some prefix
        # of them durable, silently.
        self.pending_writes: deque[tuple[int, Ready, Callable[[], None], int]] = deque()

    @property
    def alive(self) -> bool:
        return self.core is not None


class CrashInReady(Exception):
    """The simulated process dies between two steps of a Ready (not an error)."""

    def __init__(self, after: Step) -> None:
        super().__init__(f"crash after step {after}")
        self.after = after


class SimPorts:
    """`handle_ready`'s ports for one simulated node: its network, disk, state
    machine and snapshot hook, each checking the invariants its step can break."""

    __slots__ = ("cluster", "node")

    def __init__(self, cluster: SimCluster, node: SimNode) -> None:
        self.cluster = cluster
        self.node = node

    def ready_ports(self) -> ReadyPorts:
        return ReadyPorts(self.on_soft_state, peers=self, disk=self, apply=self, snapshots=self,
                          writes=self if self.cluster.async_writes else None)

    def between(self, step: Step) -> None:
        if step is self.node.crash_in_ready:
            raise CrashInReady(step)

    def on_soft_state(self, ss: SoftState) -> None:
        """Step 1: Election Safety is checked as a node becomes leader."""
        cluster = self.cluster
        cluster.trace.append((cluster.now, f"node {self.node.id} {ss.role.value} term {ss.term} lead {ss.lead}"))
        if ss.role is Role.LEADER:
            cluster.checker.election(self.node.id, ss.term)

    # -- Peers ---------------------------------------------------------------------
    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        if conf is not None:
            self.node.reported_conf = conf  # the node would add/remove transport peers here

    def send(self, message: Message) -> None:
        self.cluster.net.send(self.cluster.now, message)

    # -- Disk ----------------------------------------------------------------------
    def install_snapshot(self, snapshot: Snapshot) -> None:
        self.cluster.finish_writes(self.node, drain=False)  # as LocalDisk drains its writer first
        self.node.disk.install_snapshot(snapshot)

    def submit(self, rd: Ready, done: Callable[[], None]) -> None:
        """Asynchronous step 4: the write ends 0-3 ticks from now, after every write
        queued before it (node/wal_writer.py's order) -- or, half the time when
        none is in flight, at once inside `submit` (the writer's quiet-disk path)."""
        node, cluster = self.node, self.cluster
        core = node.core
        assert core is not None
        if not node.pending_writes and cluster.rng.random() < 0.5:
            if rd.entries or rd.hard_state is not None:
                self.append(rd.entries, rd.hard_state, rd.must_sync)
            done()
            return
        due = cluster.now + cluster.rng.randrange(4)
        if node.pending_writes:
            due = max(due, node.pending_writes[-1][0])
        node.pending_writes.append((due, rd, done, core.term if core.role is Role.LEADER else 0))

    def append(self, entries: list[Entry], hard_state: HardState | None, sync: bool,
               leader_checks: bool = True) -> None:
        """Step 4 on the simulated disk (every write here is durable at once), with
        the checks that need the leader's view: Leader Append-Only, and Leader
        Completeness once a new leader's first Ready is persisted (not for a write
        a crash left durable: its node has no view any more)."""
        node, checker = self.node, self.cluster.checker
        core = node.core
        disk = node.disk
        if core is None or not leader_checks:
            if entries:
                disk.append(entries)
            if hard_state is not None:
                disk.save_hard_state(hard_state)
            return
        if entries:
            if (core.role is Role.LEADER and node.led_term == core.term
                    and entries[0].index <= disk.last_index()):
                checker.fail("Leader Append-Only", f"leader {node.id} of term {core.term} "
                             f"overwrites its log from {entries[0].index}")
            disk.append(entries)
        if hard_state is not None:
            disk.save_hard_state(hard_state)
        if core.role is Role.LEADER and node.led_term != core.term:
            node.led_term = core.term
            checker.leader_completeness(node.id, core.term, disk.hash_at, disk.snapshot_index)

    # -- Apply ---------------------------------------------------------------------
    def restore(self, snapshot: Snapshot) -> None:
        self.node.sm = SimStateMachine.restore(snapshot.data)
        self.node.applied_conf = snapshot.meta.conf

    def apply(self, entry: Entry) -> None:
        """Step 6: State Machine Safety, one server at a time, then the client's ack."""
        node, cluster = self.node, self.cluster
        cluster.checker.applied(node.id, entry)
        if entry.kind is EntryKind.CONF_CHANGE:
            cluster.applied_conf_change(node, entry)
        node.sm.apply(entry)
        cluster.maybe_ack(node, entry)

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        """Step 6, after the batch: linearizable reads are checked as they are served."""
        node = self.node
        node.read_states.extend(read_states)
        if node.read_states:
            self.cluster.serve_reads(node)

    # -- Snapshot hook -------------------------------------------------------------
    def maybe_start(self) -> None:
        """Step 7: take the snapshot now (before `advance`, as the node starts its
        snapshot file); `SimCluster.drain` compacts with it after `advance`, as the
        node does once the file is committed."""
        node, every = self.node, self.cluster.snapshot_every
        core = node.core
        assert core is not None
        index = node.sm.applied_index
        if every and index - node.disk.snapshot_index >= every:
            meta = SnapshotMeta(index, core.log.term_at(index), core.conf_at(index))
            node.snapshot_due = Snapshot(meta, node.sm.snapshot_data())


class SimCluster:
    def __init__(self, n_nodes: int, seed: int, *, election_ticks: int = 10,
                 heartbeat_ticks: int = 2, snapshot_every: int = 0,
                 max_size_per_msg: int = 64, max_inflight: int = 4,
                 pre_vote: bool = True, check_quorum: bool = True,
                 max_committed_size_per_ready: int = 1 << 20, async_writes: bool = False,
                 commit_linger_ticks: int = 0) -> None:
        """`async_writes`: each Ready's write ends 0-3 ticks later, as with the node's
        writer thread (node/ready_handler.py), instead of at once. `commit_linger_ticks`:
        the cores' Config.commit_linger_ticks."""
        self.seed = seed
        self.async_writes = async_writes
        self.rng = random.Random(seed)
        self.net = SimNetwork(random.Random(self.rng.getrandbits(64)))
        self.checker = InvariantChecker()
        self.now = 0
        self.voters = tuple(range(1, n_nodes + 1))
        self.config_kw = dict(election_ticks=election_ticks, heartbeat_ticks=heartbeat_ticks,
                              max_size_per_msg=max_size_per_msg, max_inflight_msgs=max_inflight,
                              pre_vote=pre_vote, check_quorum=check_quorum,
                              max_committed_size_per_ready=max_committed_size_per_ready,
                              commit_linger_ticks=commit_linger_ticks)
        self.snapshot_every = snapshot_every
        initial = ConfState(self.voters)
        self.nodes = {i: SimNode(i, self.checker, initial) for i in self.voters}
        self.next_id = n_nodes + 1  # for nodes that join later
        self.conf_changes = 0  # membership changes appended
        self.ops: dict[bytes, ClientOp] = {}
        self.unacked: dict[bytes, ClientOp] = {}  # insertion-ordered: deterministic
        self.acked: list[bytes] = []
        self.reads: dict[bytes, ClientRead] = {}
        self.reads_served = 0
        self.trace: deque[tuple[int, str]] = deque(maxlen=60)
        self.crash_points_hit: Counter[Step] = Counter()  # crashes injected inside a Ready
        # Joint mode: after every event, a leader's newly committed index must be on the
        # disks of a majority of each voter set it uses (both while joint, Raft §6).
        self.check_commit_quorum = False
        self.joint_changes = 0  # ENTER_JOINT entries appended
        for i in self.voters:
            self.start(i)

    # -- lifecycle -------------------------------------------------------------
    def start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        assert node.core is None
        disk = node.disk
        cfg = Config(id=node_id, rng=random.Random(self.rng.getrandbits(64)), **self.config_kw)
        node.core = RaftCore(cfg, node.boot_conf, hard_state=disk.hard_state,
                             snapshot=disk.snapshot, entries=list(disk.entries))
        node.sm = (SimStateMachine.restore(disk.snapshot.data) if disk.snapshot
                   else SimStateMachine())
        node.reported_conf = node.core.conf
        node.applied_conf = disk.snapshot.meta.conf if disk.snapshot else node.boot_conf
        self._check_conf(node, node.core)
        node.read_states = []
        node.crash_in_ready = None
        node.snapshot_due = None
        ports = SimPorts(self, node)
        node.ports, node.between = ports.ready_ports(), ports.between
        node.led_term = 0
        node.commit_checked = 0
        self.trace.append((self.now, f"start {node_id} {disk.hard_state}"))
        self.drain(node)

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        pending, node.pending_writes = node.pending_writes, deque()
        if pending:
            # The writes in flight reach the disk or not, in order: some prefix of them
            # is durable (and nobody heard of it), the rest is lost.
            durable = self.rng.randrange(len(pending) + 1)
            ports = SimPorts(self, node)
            for _, rd, _, _ in list(pending)[:durable]:
                if rd.entries or rd.hard_state is not None:
                    ports.append(rd.entries, rd.hard_state, rd.must_sync, leader_checks=False)
            self.trace.append((self.now, f"crash {node_id}: {durable} of {len(pending)} writes in flight durable"))
        node.core = None
        node.restarts += 1
        self.trace.append((self.now, f"crash {node_id}"))

    # -- the event loop ----------------------------------------------------------
    def finish_writes(self, node: SimNode, until: int | None = None, drain: bool = True) -> None:
        """End `node`'s queued writes, in order: those due by `until`, or all of them
        (before anything else touches its disk). Each becomes durable, then its step
        5 runs (sends, `persisted`)."""
        pending = node.pending_writes
        ended = False
        while pending and node.core is not None and (until is None or pending[0][0] <= until):
            _, rd, done, led = pending.popleft()
            if rd.entries or rd.hard_state is not None:
                # The leader checks hold for a write of the leader's own Ready, in its term.
                own = led != 0 and led == node.core.term and node.core.role is Role.LEADER
                SimPorts(self, node).append(rd.entries, rd.hard_state, rd.must_sync, leader_checks=own)
            done()
            ended = True
        if ended and drain:
            self.drain(node)

    def tick(self) -> None:
        self.now += 1
        for node in self.nodes.values():
            if node.core is not None:
                self.finish_writes(node, self.now)
            if node.core is not None:
                node.core.tick()
                self.drain(node)
        for m in self.net.due(self.now):
            node = self.nodes.get(m.dst)
            if node is None:
                continue  # to an id that never ran (a learner added, its node not started)
            if node.core is not None:
                node.core.step(m)
                self.drain(node)
                if isinstance(m, InstallSnapshot):
                    self._report_snapshot(m, ok=True)
            elif isinstance(m, InstallSnapshot):
                self._report_snapshot(m, ok=False)
        failed, self.net.failed_snapshots = self.net.failed_snapshots, []
        for m in failed:
            self._report_snapshot(m, ok=False)
        for node in self.nodes.values():
            self.drain(node, whole=True)

    def _report_snapshot(self, m: InstallSnapshot, ok: bool) -> None:
        sender = self.nodes[m.src]
        if sender.core is not None:
            sender.core.report_snapshot(m.dst, ok)
            self.drain(sender)

    def drain(self, node: SimNode, *, whole: bool = False) -> None:
        """Handle `node`'s Readys. Unless `whole`, stop after a bounded batch of
        committed entries that left more behind, as the node's loop does
        (node/actor.py): the next event comes in between batches. `tick` ends by
        draining every node whole: a loop with a backlog turns without sleeping,
        many times per tick."""
        if self.check_commit_quorum and node.core is not None:
            self._check_commit_quorum(node, node.core)
        while node.core is not None and node.core.has_ready():
            core, ports = node.core, node.ports
            assert ports is not None
            rd = core.ready()
            try:
                handle_ready(core, rd, ports, node.between)
            except CrashInReady as crash:
                self.crash_points_hit[crash.after] += 1
                self.trace.append((self.now, f"crash {node.id} after step {crash.after.value} "
                                              f"({crash.after.name.lower()}) of a Ready"))
                self.crash(node.id)
                return
            # After `advance`: the core may change again.
            self._check_conf(node, core)
            if self.check_commit_quorum:
                self._check_commit_quorum(node, core)
            if node.snapshot_due is not None:
                snap, node.snapshot_due = node.snapshot_due, None
                self.finish_writes(node, drain=False)  # the node's snapshot commit drains its writer
                core.compact(snap)
                node.disk.compact(snap)
            if not whole and rd.committed_entries and core.log.has_next_committed_entries():
                return

    # -- membership (thesis §4.1-4.3) ---------------------------------------------
    def _check_conf(self, node: SimNode, core: RaftCore) -> None:
        """The membership in effect is the latest conf-change entry in the (durable)
        log, else the snapshot's; the Ready stream reported exactly that."""
        disk = node.disk
        if node.pending_writes:
            return  # the durable log lags the core's until its writes end
        expected = disk.latest_conf()
        if expected is None and disk.snapshot is None:
            expected = node.boot_conf
        if expected is not None and core.conf != expected:
            self.checker.fail("Configuration in effect", f"node {node.id} uses {core.conf}, "
                              f"its log says {expected}")
        if node.reported_conf != core.conf:
            self.checker.fail("Ready.conf", f"node {node.id} uses {core.conf}, its Readies "
                              f"reported {node.reported_conf}")

    def _check_commit_quorum(self, node: SimNode, core: RaftCore) -> None:
        """Joint consensus (Raft §6): a leader's newly committed entry is durable on
        a majority of its incoming voters AND, while joint, of its outgoing voters --
        counted on the simulated disks, not from the core's own bookkeeping. Checked
        after every event, before an automatic leave can change the configuration."""
        c = core.log.committed
        if core.role is not Role.LEADER:
            node.commit_checked = c  # what it learned as a follower: only its own commits count
            return
        if c <= node.commit_checked:
            return
        node.commit_checked = c
        term = core.log.term_at(c)
        conf = core.conf
        holders = set()
        for other in self.nodes.values():
            d = other.disk
            if d.snapshot_index >= c or (d.last_index() >= c and d.entries[c - d.snapshot_index - 1].term == term):
                holders.add(other.id)
        for name, voters in (("incoming", conf.voters), ("outgoing", conf.voters_outgoing)):
            if voters and len(holders & set(voters)) < len(voters) // 2 + 1:
                self.checker.fail("Joint quorum", f"leader {node.id} committed {c} (term {term}) "
                                  f"held by {sorted(holders)}: no majority of its {name} voters "
                                  f"{list(voters)} (conf {conf})")

    def applied_conf_change(self, node: SimNode, e: Entry) -> None:
        """One server at a time: consecutive configurations differ by one voter; an
        ADD_VOTER adds exactly its node to the voters, an UPDATE changes nothing."""
        cc = decode_conf_change(e.data)
        result = cc.result
        assert result is not None, f"conf change {e} without a configuration"
        old = node.applied_conf
        if cc.kind in (ConfChangeKind.ENTER_JOINT, ConfChangeKind.LEAVE_JOINT):
            self._check_joint_step(node, e, cc.kind, old, result)
        elif old is not None and (old.voters or old.learners):
            if old.joint:
                self.checker.fail("Leave joint first", f"node {node.id} applied {e.index}: "
                                  f"{cc.kind.name} while {old} is joint")
            diff = set(old.voters) ^ set(result.voters)
            if len(diff) > 1:
                self.checker.fail("One server at a time", f"node {node.id} applied {e.index}: "
                                  f"voters {old.voters} -> {result.voters}")
            if cc.kind is ConfChangeKind.ADD_VOTER and (diff != {cc.node_id} or cc.node_id in old.voters):
                self.checker.fail("ADD_VOTER adds one voter", f"node {node.id} applied {e.index}: "
                                  f"add {cc.node_id}: voters {old.voters} -> {result.voters}")
            if cc.kind is ConfChangeKind.UPDATE and (set(result.voters), set(result.learners)) != (
                    set(old.voters), set(old.learners)):
                self.checker.fail("UPDATE keeps the configuration", f"node {node.id} applied {e.index}: "
                                  f"update {cc.node_id}: {old} -> {result}")
        node.applied_conf = result

    def _check_joint_step(self, node: SimNode, e: Entry, kind: ConfChangeKind,
                          old: ConfState | None, new: ConfState) -> None:
        """etcd-io/raft's transitions: entering keeps the old voters as the outgoing
        set; leaving keeps the incoming voters and turns learners_next into learners."""
        if old is None or not (old.voters or old.learners):
            return  # a joiner that applies from a snapshot knows no earlier conf
        if kind is ConfChangeKind.ENTER_JOINT:
            ok = not old.joint and new.joint and set(new.voters_outgoing) == set(old.voters)
        else:
            ok = (old.joint and not new.joint and set(new.voters) == set(old.voters)
                  and set(new.learners) == set(old.learners) | set(old.learners_next))
        if not ok:
            self.checker.fail("Joint transition", f"node {node.id} applied {e.index} "
                              f"{kind.name}: {old} -> {new}")
        node.applied_conf = new

    def members(self) -> tuple[int, ...]:
        """Voters and learners as the current leader (else node 1's view) sees them."""
        leader = self.leader()
        core = leader.core if leader is not None else None
        if core is None:
            core = next((n.core for n in self.nodes.values() if n.core is not None), None)
        if core is None:
            return tuple(self.nodes)
        return tuple(sorted(core.conf.ids()))

    def conf_change(self, kind: ConfChangeKind, node_id: int) -> bool:
        """Ask the leader for a membership change; True when it was appended. Adding
        an id starts a brand-new node (empty disk, empty configuration) under it,
        replacing any removed node that still ran with that id."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return False
        core = leader.core
        try:
            core.propose_conf_change(ConfChange(kind, node_id, b"sim://%d/%d" % (node_id, self.now)))
        except RaftError:
            return False
        self.conf_changes += 1
        self.trace.append((self.now, f"conf {kind.name} {node_id} by {leader.id} -> {core.conf}"))
        if kind in (ConfChangeKind.ADD_LEARNER, ConfChangeKind.ADD_VOTER):
            old = self.nodes.get(node_id)
            if old is not None and old.core is not None:
                self.crash(node_id)
            self.net.purge(node_id)
            self.nodes[node_id] = SimNode(node_id, self.checker, ConfState())
            self.start(node_id)
        self.drain(leader)
        return True

    def joint_change(self, changes: list[tuple[ConfChangeKind, int]], auto_leave: bool) -> bool:
        """Ask the leader to change several members in one joint step; True when it
        was appended. Ids added (as voters or learners) start as brand-new nodes."""
        leader = self.leader()
        if leader is None or leader.core is None or not changes:
            return False
        core = leader.core
        cc = enter_joint([ConfChangeSingle(k, n, b"sim://%d/%d" % (n, self.now)) for k, n in changes],
                         auto_leave)
        try:
            core.propose_conf_change(cc)
        except RaftError:
            return False
        self.conf_changes += 1
        self.joint_changes += 1
        self.trace.append((self.now, f"enter-joint {[(k.name, n) for k, n in changes]} "
                                     f"auto={auto_leave} by {leader.id} -> {core.conf}"))
        for kind, node_id in changes:
            if kind is ConfChangeKind.ADD_VOTER or (kind is ConfChangeKind.ADD_LEARNER
                                                    and node_id not in self.nodes):
                self.net.purge(node_id)
                self.nodes[node_id] = SimNode(node_id, self.checker, ConfState())
                self.start(node_id)
        self.drain(leader)
        return True

    def leave_joint(self) -> bool:
        """Ask the leader to leave a joint configuration explicitly."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return False
        try:
            leader.core.propose_conf_change(leave_joint(leader.id))
        except RaftError:
            return False
        self.conf_changes += 1
        self.trace.append((self.now, f"leave-joint by {leader.id} -> {leader.core.conf}"))
        self.drain(leader)
        return True

    # -- clients -----------------------------------------------------------------
    def leader(self) -> SimNode | None:
        """The alive leader with the highest term, as a client would find it."""
        best = None
        for node in self.nodes.values():
            core = node.core
            if core is not None and core.role is Role.LEADER:
                if best is None or core.term > best.core.term:  # type: ignore[union-attr]
                    best = node
        return best

    def new_op(self) -> None:
        op_id = b"op%d" % len(self.ops)
        self.ops[op_id] = self.unacked[op_id] = ClientOp(op_id, self.now)

    def client_tick(self, retry_after: int) -> None:
        """(Re)propose every unacknowledged op whose last attempt is old enough."""
        leader = self.leader()
        if leader is None:
            return
        core = leader.core
        assert core is not None
        for op in self.unacked.values():
            if op.proposal is not None and self.now - op.proposed_at < retry_after:
                continue
            try:
                index = core.propose(op.op_id)
            except ProposalDropped:
                return
            op.proposal = (leader.id, core.term, index)
            op.proposed_at = self.now
        self.drain(leader)

    def maybe_ack(self, node: SimNode, e: Entry) -> None:
        op = self.ops.get(e.data) if e.kind is EntryKind.NORMAL else None
        if op is not None and op.acked_at < 0 and op.proposal == (node.id, e.term, e.index):
            op.acked_at = self.now
            self.acked.append(op.op_id)
            del self.unacked[op.op_id]

    def transfer_leadership(self, to: int) -> None:
        """Ask the current leader to hand over to `to` (thesis §3.10)."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return
        self.trace.append((self.now, f"transfer {leader.id} -> {to}"))
        try:
            leader.core.transfer_leadership(to)
        except RaftError:
            return  # a learner or a removed node: refused
        self.drain(leader)

    def start_read(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.core is None:
            return
        ctx = b"r%d" % len(self.reads)
        try:
            node.core.read_index(ctx)
        except RaftError:
            return
        self.reads[ctx] = ClientRead(ctx, node_id, len(self.acked))
        self.drain(node)

    def serve_reads(self, node: SimNode) -> None:
        keep = []
        for rs in node.read_states:
            if rs.index > node.sm.applied_index:
                keep.append(rs)
                continue
            read = self.reads.get(rs.ctx)
            if read is None or read.served or read.node != node.id:
                continue
            read.served = True
            self.reads_served += 1
            missing = [op for op in self.acked[:read.acked_before] if op not in node.sm.op_set]
            if missing:
                self.checker.fail("Linearizable read", f"read {rs.ctx!r} at node {node.id} "
                                  f"(index {rs.index}) misses acknowledged writes {missing[:3]}")
        node.read_states = keep

    # -- end-of-run checks ---------------------------------------------------------
    def pending_ops(self) -> int:
        return len(self.unacked)

    def converged(self) -> bool:
        """One leader, every node alive, every op acknowledged, and every node has
        applied the leader's whole log."""
        leader = self.leader()
        if leader is None or self.pending_ops():
            return False
        last = leader.core.log.last_index()  # type: ignore[union-attr]
        if leader.core.log.committed != last:  # type: ignore[union-attr]
            return False
        return all(self.nodes[i].core is not None and self.nodes[i].sm.applied_index == last
                   for i in self.members())

    def check_final(self) -> None:
        """Nothing acknowledged is lost: every member holds every acked op, once; a
        removed node holds a prefix of the same history."""
        members = self.members()
        first = self.nodes[members[0]].sm.ops
        for node in self.nodes.values():
            if node.id not in members:
                if node.sm.ops != first[:len(node.sm.ops)]:
                    self.checker.fail("State Machine Safety", f"removed node {node.id} "
                                      "applied a different history")
                continue
            missing = [op for op in self.acked if op not in node.sm.op_set]
            if missing:
                self.checker.fail("Acknowledged writes survive", f"node {node.id} lacks {missing[:5]}")
            if len(node.sm.ops) != len(node.sm.op_set):
                self.checker.fail("Exactly once", f"node {node.id} applied an op twice")
        for node_id in members:
            node = self.nodes[node_id]
            if node.sm.ops != first:
                self.checker.fail("State Machine Safety", f"node {node.id} applied ops in a "
                                  "different order")

    def describe_trace(self) -> str:
        return "\n".join(f"  t={t:>6} {what}" for t, what in self.trace)


