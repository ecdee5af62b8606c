"""One seeded simulation run: random faults for a while, then heal and demand
liveness. Everything is derived from the seed, so a failure replays exactly."""
from __future__ import annotations

import random
from dataclasses import dataclass, replace

from node.raft import ConfChangeKind
from node.ready_handler import Step

from .cluster import SimCluster
from .invariants import InvariantViolation


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """How hostile one run is. Drawn from the seed by `FaultProfile.draw`."""

    drop: float
    duplicate: float
    max_delay: int
    partition_rate: float  # per tick, when no partition is active
    partition_ticks: tuple[int, int]
    crash_rate: float  # per tick
    down_ticks: tuple[int, int]
    slow_rate: float  # per tick
    write_rate: float  # new client ops per tick
    read_rate: float  # new linearizable reads per tick
    transfer_rate: float  # leadership transfers asked for, per tick
    heartbeat_ticks: int
    snapshot_every: int  # 0 = never snapshot
    max_size_per_msg: int
    membership_rate: float = 0.0  # membership changes attempted, per tick
    max_members: int = 7  # voters + learners
    promote_bias: float = 0.7  # chance to promote a learner rather than change more
    reuse_ids: bool = False  # re-add removed ids as fresh nodes (unsafe: docs/raft-core.md)
    add_voter_bias: float = 0.0  # chance that an addition is ADD_VOTER rather than ADD_LEARNER
    update_rate: float = 0.0  # chance that a change is an UPDATE of a member's context
    joint_bias: float = 0.0  # chance that a membership change is a multi-voter (joint) one
    explicit_leave: float = 0.0  # chance that a joint change leaves explicitly (no auto leave)

    @classmethod
    def draw(cls, rng: random.Random) -> FaultProfile:
        return cls(
            drop=rng.choice((0.0, 0.01, 0.05, 0.1, 0.2)),
            duplicate=rng.choice((0.0, 0.02, 0.1)),
            max_delay=rng.choice((1, 2, 3, 5, 8)),
            partition_rate=rng.choice((0.0, 0.005, 0.02)),
            partition_ticks=(10, rng.choice((40, 100, 300))),
            crash_rate=rng.choice((0.0, 0.002, 0.01)),
            down_ticks=(1, rng.choice((20, 100))),
            slow_rate=rng.choice((0.0, 0.003)),
            write_rate=rng.choice((0.1, 0.3, 1.0)),
            read_rate=rng.choice((0.0, 0.05, 0.2)),
            transfer_rate=rng.choice((0.0, 0.0, 0.005)),
            heartbeat_ticks=rng.choice((1, 2, 3)),
            snapshot_every=rng.choice((0, 5, 20, 100)),
            max_size_per_msg=rng.choice((8, 64, 1 << 20)),
        )


@dataclass(frozen=True, slots=True)
class SimResult:
    seed: int
    nodes: int
    ticks: int
    acked: int
    reads: int
    messages: int
    crashes: int
    heal_ticks: int  # ticks after healing until the cluster converged
    conf_changes: int = 0  # membership changes appended
    final_conf: str = ""
    joint_changes: int = 0  # ENTER_JOINT entries appended


class SimulationFailure(AssertionError):
    def __init__(self, seed: int, nodes: int, ticks: int, cause: BaseException, trace: str,
                 membership: bool = False, reuse_ids: bool = False, joint: bool = False) -> None:
        self.seed = seed
        self.replay = (f"SIM_SEED={seed} python -m node.simulation --seed {seed} "
                       f"--nodes {nodes} --ticks {ticks}" + (" --membership" if membership else "")
                       + (" --reuse-ids" if reuse_ids else "") + (" --joint" if joint else ""))
        super().__init__(f"seed {seed} ({nodes} nodes, {ticks} ticks) failed: {cause}\n"
                         f"replay: {self.replay}\nlast events:\n{trace}")


#: Where inside a Ready a node may crash: right after one of these steps of
#: node/ready_handler.py's `handle_ready` (every boundary between two steps).
CRASH_POINTS_BEFORE_PERSIST = (Step.HOOKS, Step.SEND, Step.INSTALL)
CRASH_POINTS_AFTER_PERSIST = (Step.PERSIST, Step.SEND_AFTER_PERSIST, Step.APPLY, Step.SNAPSHOT)

ELECTION_TICKS = 10
#: After healing, a leader must exist and all work must finish within this many ticks.
HEAL_BOUND = 40 * ELECTION_TICKS


def run_seed(seed: int, nodes: int = 3, ticks: int = 2000, membership: bool = False,
             reuse_ids: bool = False, joint: bool = False) -> SimResult:
    """Run one simulation; raises SimulationFailure naming the replay command. With
    `membership`, random membership changes join the faults (drawn from a separate
    generator, so the other seeds' schedules are unchanged). `joint` (implies
    `membership`) adds multi-voter changes through joint configurations and checks
    every leader commit against both majorities on the disks."""
    membership = membership or joint
    rng = random.Random(seed)
    profile = FaultProfile.draw(rng)
    if membership:
        mrng = random.Random(seed ^ 0x9E3779B97F4A7C15)
        profile = replace(profile, membership_rate=mrng.choice((0.005, 0.02, 0.05)),
                          max_members=mrng.choice((4, 5, 7)),
                          promote_bias=mrng.choice((0.2, 0.5, 0.8)), reuse_ids=reuse_ids,
                          add_voter_bias=mrng.choice((0.0, 0.3, 0.7)), update_rate=mrng.choice((0.0, 0.1, 0.3)))
    if joint:
        jrng = random.Random(seed ^ 0x4A4F494E54)
        profile = replace(profile, joint_bias=jrng.choice((0.5, 0.8, 1.0)),
                          explicit_leave=jrng.choice((0.0, 0.2, 0.5)),
                          membership_rate=jrng.choice((0.01, 0.03, 0.08)), max_members=9)
    # Committed entries per Ready (issue 20): one entry, a few, or every one a Ready
    # has -- drawn from its own generator, so the other draws of a seed are unchanged.
    apply_bound = random.Random(seed ^ 0x4150504C59).choice((1, 40, 1 << 20))
    # Asynchronous storage writes (the node's default: node/wal_writer.py) in three
    # seeds of four, synchronous in the rest; its own generator again.
    async_writes = random.Random(seed ^ 0x4153594E43).random() < 0.75
    # The commit-only AppendEntries lingers 0 (at once) to heartbeat_ticks ticks
    # (the node's default is 1: node/actor.py); its own generator again.
    commit_linger = random.Random(seed ^ 0x4C494E474552).randrange(profile.heartbeat_ticks + 1)
    cluster = SimCluster(nodes, seed=rng.getrandbits(64), election_ticks=ELECTION_TICKS,
                         heartbeat_ticks=profile.heartbeat_ticks,
                         snapshot_every=profile.snapshot_every,
                         max_size_per_msg=profile.max_size_per_msg,
                         max_committed_size_per_ready=apply_bound, async_writes=async_writes,
                         commit_linger_ticks=commit_linger)
    cluster.check_commit_quorum = joint
    try:
        chaos = _Chaos(cluster, profile, random.Random(rng.getrandbits(64)))
        for _ in range(ticks):
            chaos.step()
            cluster.tick()
        heal_ticks = _heal_and_converge(cluster, chaos)
        cluster.check_final()
    except (InvariantViolation, AssertionError) as exc:
        raise SimulationFailure(seed, nodes, ticks, exc, cluster.describe_trace(),
                                membership and not joint, reuse_ids, joint) from exc
    leader = cluster.leader()
    final = str(leader.core.conf) if leader is not None and leader.core is not None else ""
    return SimResult(seed, nodes, ticks, len(cluster.acked), cluster.reads_served,
                     cluster.net.sent, sum(n.restarts for n in cluster.nodes.values()), heal_ticks,
                     cluster.conf_changes, final, cluster.joint_changes)


def _heal_and_converge(cluster: SimCluster, chaos: _Chaos) -> int:
    cluster.net.heal()
    for node_id, node in cluster.nodes.items():
        node.crash_in_ready = None
        if node.core is None:
            cluster.start(node_id)
    # A leader may heal with a long uncommitted tail (clients kept proposing while it
    # could not reach a majority), replicated one small message per entry: allow one
    # more tick per entry of it.
    bound = HEAL_BOUND + max((n.core.log.last_index() - n.core.log.committed
                              for n in cluster.nodes.values() if n.core is not None), default=0)
    if chaos.p.membership_rate:
        # A member that joined late may need the whole log, one small message per
        # entry when snapshots are off: allow one more tick per entry.
        bound += max(n.disk.last_index() for n in cluster.nodes.values())
    for t in range(bound):
        leader = cluster.leader()
        if leader is not None and leader.core is not None and leader.core.conf.joint \
                and not leader.core.conf.auto_leave:
            cluster.leave_joint()  # an explicit leave the chaos phase left undone
        cluster.client_tick(retry_after=4 * ELECTION_TICKS)
        cluster.tick()
        if cluster.converged():
            return t
    leader = cluster.leader()
    raise InvariantViolation(
        f"Liveness: {bound} ticks after healing, leader={leader and leader.id}, "
        f"{cluster.pending_ops()} ops unacknowledged, members={cluster.members()}, applied="
        f"{ {i: n.sm.applied_index for i, n in cluster.nodes.items()} }")


@dataclass(slots=True)
class _JointPlan:
    add: list[int]  # learners still to add, one change each
    promote: list[int]  # then promoted in one joint step...
    remove: list[int]  # ...that also removes these voters
    auto_leave: bool


class _Chaos:
    """Injects faults and client load, one tick at a time."""

    def __init__(self, cluster: SimCluster, profile: FaultProfile, rng: random.Random) -> None:
        self.c = cluster
        self.p = profile
        self.rng = rng
        self.partition_until = -1
        self.restart_at: dict[int, int] = {}
        self.slow_until: dict[int, int] = {}
        # Which boundary inside a Ready a crash hits: its own generator, so the rest
        # of a seed's schedule does not depend on it.
        self.crash_point_rng = random.Random(cluster.seed ^ 0x5DEECE66D)
        # Joint mode: its own generator, and the multi-voter change under way (new
        # learners to add one at a time, then one joint step promoting them).
        self.jrng = random.Random(cluster.seed ^ 0x6A6F696E74)
        self.plan: _JointPlan | None = None
        f = cluster.net.faults
        f.drop, f.duplicate, f.max_delay = profile.drop, profile.duplicate, profile.max_delay

    def step(self) -> None:
        c, p, rng, now = self.c, self.p, self.rng, self.c.now
        faults = c.net.faults
        if self.partition_until == now:
            faults.blocked = set()
        if self.partition_until < now and p.partition_rate and rng.random() < p.partition_rate:
            faults.blocked = self._partition()
            self.partition_until = now + rng.randint(*p.partition_ticks)
        for node_id, at in list(self.restart_at.items()):
            if at <= now:
                del self.restart_at[node_id]
                if not c.nodes[node_id].alive:  # (a re-added id already runs afresh)
                    c.start(node_id)
        if p.crash_rate and rng.random() < p.crash_rate:
            self._crash()
        self._schedule_restarts()
        for node_id, until in list(self.slow_until.items()):
            if until <= now:
                del self.slow_until[node_id]
                faults.slow.pop(node_id, None)
        if p.slow_rate and rng.random() < p.slow_rate:
            node_id = rng.choice(self._ids())
            faults.slow[node_id] = rng.randint(2, 12)
            self.slow_until[node_id] = now + rng.randint(20, 200)
        if rng.random() < p.write_rate and c.pending_ops() < 20:
            c.new_op()
        c.client_tick(retry_after=4 * ELECTION_TICKS)
        if p.read_rate and rng.random() < p.read_rate:
            c.start_read(rng.choice(self._ids()))
        if p.transfer_rate and rng.random() < p.transfer_rate:
            c.transfer_leadership(rng.choice(self._ids()))
        if p.membership_rate and rng.random() < p.membership_rate:
            if p.joint_bias and self.jrng.random() < p.joint_bias:
                self._joint_change()
            else:
                self._membership_change()

    def _ids(self) -> list[int]:
        """Every node that exists (members, removed nodes still running, joiners)."""
        return sorted(self.c.nodes)

    def _membership_change(self) -> None:
        """Update a member's context, else promote a caught-up learner, else add a
        learner or a voter (a new id, or a removed one coming back as a fresh node with
        an empty disk), else remove a random member, the leader included. The core
        refuses what is not allowed right now. (The new kinds draw from the generator
        only when their rates are set, so other runs keep their schedules.)"""
        c, rng = self.c, self.rng
        leader = c.leader()
        if leader is None or leader.core is None:
            return
        conf = leader.core.conf
        members = conf.voters + conf.learners
        if self.p.update_rate and members and rng.random() < self.p.update_rate:
            c.conf_change(ConfChangeKind.UPDATE, rng.choice(members))
            return
        if conf.learners and rng.random() < self.p.promote_bias:
            c.conf_change(ConfChangeKind.PROMOTE, rng.choice(conf.learners))
            return
        if len(members) < self.p.max_members and rng.random() < 0.5:
            removed = [i for i in c.nodes if i not in members]
            if removed and rng.random() < 0.5 and self.p.reuse_ids:
                node_id = rng.choice(removed)
            else:
                node_id = c.next_id
                c.next_id += 1
            as_voter = bool(self.p.add_voter_bias) and rng.random() < self.p.add_voter_bias
            c.conf_change(ConfChangeKind.ADD_VOTER if as_voter else ConfChangeKind.ADD_LEARNER, node_id)
            return
        if len(conf.voters) > 2 or len(members) > len(conf.voters):
            victim = rng.choice(members)
            if victim in conf.voters and len(conf.voters) <= 2:
                return
            c.conf_change(ConfChangeKind.REMOVE, victim)

    def _joint_change(self) -> None:
        """Multi-voter changes (Raft §6): replace one or two voters, grow 3 -> 5,
        shrink 5 -> 3, move the whole cluster to new ids, or demote a voter -- the
        leader may be among those removed. New members join as learners and catch up
        first (the core refuses to promote a lagging one), or, sometimes, are added
        straight as voters in the joint step; a joint configuration without auto
        leave is left explicitly on a later draw."""
        c, rng = self.c, self.jrng
        leader = c.leader()
        if leader is None or leader.core is None:
            return
        conf = leader.core.conf
        if conf.joint:
            if not conf.auto_leave:
                c.leave_joint()
            return
        plan = self.plan
        if plan is not None:
            if plan.add:
                if c.conf_change(ConfChangeKind.ADD_LEARNER, plan.add[0]):
                    plan.add.pop(0)
                return
            if not set(plan.promote) <= set(conf.learners) or not set(plan.remove) <= set(conf.voters):
                self.plan = None  # another change got in the way: give up on this one
                return
            changes = ([(ConfChangeKind.PROMOTE, n) for n in plan.promote]
                       + [(ConfChangeKind.REMOVE, n) for n in plan.remove])
            if c.joint_change(changes, plan.auto_leave):
                self.plan = None
            return
        voters = list(conf.voters)
        kinds = ["replace1", "demote"]
        if len(voters) >= 3:
            kinds.append("replace2")
        if len(voters) == 3:
            kinds.append("grow")
        if len(voters) == 5:
            kinds.append("shrink")
        if len(voters) <= 5:
            kinds.append("move")
        kind = rng.choice(kinds)
        auto_leave = rng.random() >= self.p.explicit_leave
        if kind == "demote":
            if len(voters) >= 2:
                c.joint_change([(ConfChangeKind.ADD_LEARNER, rng.choice(voters))], auto_leave)
            return
        n_new, n_gone = {"replace1": (1, 1), "replace2": (2, 2), "grow": (2, 0), "shrink": (0, 2),
                         "move": (len(voters), len(voters))}[kind]
        gone = rng.sample(voters, n_gone)
        new = list(range(c.next_id, c.next_id + n_new))
        c.next_id += n_new
        if n_new == 0 or rng.random() < 0.3:
            # Straight in as voters: the joint step itself adds them (empty logs).
            c.joint_change([(ConfChangeKind.ADD_VOTER, n) for n in new]
                           + [(ConfChangeKind.REMOVE, n) for n in gone], auto_leave)
            return
        self.plan = _JointPlan(list(new), list(new), gone, auto_leave)

    def _partition(self) -> set[tuple[int, int]]:
        rng, ids = self.rng, self._ids()
        if len(ids) < 2:
            return set()  # nothing to cut in a one-node cluster
        rng.shuffle(ids)
        kind = rng.choice(("isolate", "split", "one-way", "bridge"))
        if kind == "isolate":
            side_a, side_b = ids[:1], ids[1:]
        elif kind == "split":
            cut = rng.randint(1, len(ids) - 1)
            side_a, side_b = ids[:cut], ids[cut:]
        elif kind == "one-way":  # a can hear b, b cannot hear a
            a, b = ids[0], ids[1]
            return {(a, b)}
        else:  # bridge: two halves that only ids[0] can reach both of
            rest = ids[1:]
            half = len(rest) // 2
            side_a, side_b = rest[:half], rest[half:]
        return {(a, b) for a in side_a for b in side_b} | {(b, a) for a in side_a for b in side_b}

    def _crash(self) -> None:
        c, rng = self.c, self.rng
        alive = [i for i, n in c.nodes.items() if n.alive]
        if not alive:
            return
        node_id = rng.choice(alive)
        how = rng.choice(("now", "before-persist", "after-persist"))
        if how == "now":
            c.crash(node_id)
            return
        points = CRASH_POINTS_BEFORE_PERSIST if how == "before-persist" else CRASH_POINTS_AFTER_PERSIST
        c.nodes[node_id].crash_in_ready = self.crash_point_rng.choice(points)  # dies inside its next Ready

    def _schedule_restarts(self) -> None:
        for node_id, node in self.c.nodes.items():
            if node.core is None and node_id not in self.restart_at:
                self.restart_at[node_id] = self.c.now + self.rng.randint(*self.p.down_ticks)
