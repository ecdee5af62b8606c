"""`python -m supervisor chaos`: SIGKILL and SIGSTOP/SIGCONT nodes of the running
cluster at an interval, for a bounded duration, printing each event.

Safety. A process is touched only if the state file names its pid, its start time
matches (so a reused pid is never hit), its command line is `-m node --id N`, and
the supervisor that wrote that state file is alive (a node it adopted from a
killed supervisor is not its child, so the parent is not what is checked). Every SIGSTOP is followed by
a SIGCONT before chaos exits, however it exits (end of duration, Ctrl-C, error).
At most `max_faulty` nodes are dead or paused at once (default: a minority, so the
cluster stays available and a workload can keep writing).

`--supervisor` adds the supervisor itself to the victims: chaos SIGKILLs it (its
nodes keep serving, supervisor/spawn.py) and starts a new one, `python -m
supervisor up --detach`, which adopts the running nodes; until it is up, chaos
injects nothing else (no one would restart a killed node).

`--drop` isolates a node: it asks that node (the client protocol's drop-traffic
admin request) to drop every peer frame to and from all other members for
`--drop-for` seconds. The node lifts the fault by itself when the time is up, so
even a chaos process killed mid-run leaves no partition behind; chaos also lifts
any still in force when it ends. `split` (used by `chaos --check` on 5+ nodes)
does the same to a whole minority group at once, cutting it off from the
majority: a two-sided partition. Nodes refuse drop-traffic unless their config
enables fault injection (`[faults] injection = true`, which `python -m supervisor
up --fault-injection` writes), so `--drop` and `--check` first check that the
running cluster's config does (`require_fault_injection`); kills and pauses need
nothing from the nodes.

`--partition` (a cluster started with `up --netns`; supervisor/partitions.py)
makes the same two events real network faults instead: `drop` takes the node's
link down, `split` installs nftables DROP rules in the minority's namespaces, so
packets vanish silently and connections hang. They need nothing from the nodes
(no fault injection), and chaos heals them when due and however it ends; a chaos
process killed with SIGKILL leaves them until `down`, which deletes the
namespaces.

The choice of each event is a pure function of a seeded `random.Random` and the
cluster's status (`choose`), tested without processes.
"""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import TextIO

import psutil

from cluster.client import Client, ClientError
from cluster.discovery import ClusterState, Layout
from cluster.spec import SpecError, load_spec
from supervisor import netns
from supervisor.control import ControlError, load_state
from supervisor.display import timestamp
from supervisor.partitions import NetworkFaults
from supervisor.statefile import node_process, supervisor_process
from supervisor.status import NodeStatus, collect, leader_of

MAX_DURATION = 3600.0
FAULTY_ROLES = ("paused", "down", "isolated", "foreign", "unreachable")
INTERVAL_RANGE = (0.1, 60.0)
PAUSE_RANGE = (0.05, 30.0)


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    duration: float
    interval: float
    kill: bool = True
    pause: bool = False
    drop: bool = False  # isolate a node with the drop-traffic admin request
    drop_for: float = 1.0
    leader: bool = False  # aim at the leader (else a random node)
    leader_odds: float = 0.0  # with leader False: aim at the leader with this probability
    split: bool = False  # also split the cluster into the largest minority | a majority (drop-traffic)
    partition: bool = False  # drop and split as real network faults (an `up --netns` cluster)
    pause_for: float = 1.0
    max_faulty: int | None = None  # None: a minority of the cluster
    seed: int | None = None
    supervisor: bool = False  # also SIGKILL the supervisor (a new one adopts the nodes)

    def check(self) -> None:
        """ValueError naming the bad option."""
        if not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds, got {self.duration}")
        if not INTERVAL_RANGE[0] <= self.interval <= INTERVAL_RANGE[1]:
            raise ValueError(f"--interval must be in [{INTERVAL_RANGE[0]}, {INTERVAL_RANGE[1]}] seconds, "
                             f"got {self.interval}")
        if not PAUSE_RANGE[0] <= self.pause_for <= PAUSE_RANGE[1]:
            raise ValueError(f"--pause-for must be in [{PAUSE_RANGE[0]}, {PAUSE_RANGE[1]}] seconds")
        if not PAUSE_RANGE[0] <= self.drop_for <= PAUSE_RANGE[1]:
            raise ValueError(f"--drop-for must be in [{PAUSE_RANGE[0]}, {PAUSE_RANGE[1]}] seconds")
        if not (self.kill or self.pause or self.drop or self.supervisor):
            raise ValueError("nothing to do: enable --kill, --pause, --drop and/or --supervisor")
        if self.max_faulty is not None and self.max_faulty < 1:
            raise ValueError("--max-faulty must be >= 1")


def require_fault_injection(state: ClusterState, what: str) -> None:
    """ControlError unless the running cluster's config enables fault injection."""
    try:
        enabled = load_spec(state.config).faults.injection
    except (OSError, SpecError) as error:
        raise ControlError(f"cannot read the cluster's config {state.config}: {error}") from None
    if not enabled:
        raise ControlError(
            f"{what} needs fault injection (the drop-traffic request), which this cluster's config does not "
            f"enable ([faults] injection = true in {state.config}): start the cluster with "
            "`python -m supervisor up --fault-injection` (chaos without --drop only kills and pauses nodes, "
            "which needs no switch)")


@dataclass(frozen=True, slots=True)
class Event:
    action: str  # "kill" | "pause" | "drop" | "split" | "supervisor"
    node_id: int
    was_leader: bool
    group: tuple[int, ...] = ()  # split: the minority side (node_id among them)


def choose(rng: random.Random, statuses: list[NodeStatus], options: ChaosOptions) -> Event | str:
    """The next event, or the reason to skip this turn."""
    limit = options.max_faulty if options.max_faulty is not None else max(1, (len(statuses) - 1) // 2)
    faulty = [s for s in statuses if not s.alive or s.role in FAULTY_ROLES]
    if len(faulty) >= limit:
        return f"skipped: {len(faulty)} node(s) already down, paused, isolated or unreachable (limit {limit})"
    healthy = [s for s in statuses if s.alive and s.role not in FAULTY_ROLES]
    if not healthy:
        return "skipped: no live node"
    leader = leader_of(statuses)
    aim = options.leader or (options.leader_odds > 0 and rng.random() < options.leader_odds)
    if aim and leader is not None and leader in healthy:
        target = leader
    else:
        target = rng.choice(healthy)
    actions = [a for a, on in (("kill", options.kill), ("pause", options.pause), ("drop", options.drop)) if on]
    was_leader = leader is not None and target.id == leader.id
    minority = (len(statuses) - 1) // 2
    if options.split and minority >= 2 and len(faulty) + minority <= limit:
        actions.append("split")
    if options.supervisor:
        actions.append("supervisor")
    action = rng.choice(actions)
    if action != "split":
        return Event(action, target.id, was_leader)
    others = sorted(s.id for s in healthy if s.id != target.id)
    group = tuple(sorted([target.id, *rng.sample(others, min(len(others), minority - 1))]))
    return Event("split", target.id, was_leader, group)


class Chaos:
    def __init__(self, layout: Layout, options: ChaosOptions, out: TextIO) -> None:
        self.layout = layout
        self.options = options
        self.out = out
        # Always a known seed, printed, so a run's choices can be replayed.
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
        self.rng = random.Random(self.seed)
        self.paused: dict[int, tuple[psutil.Process, float]] = {}  # node id -> (process, resume at)
        self.isolated: dict[int, tuple[str, list[int], float]] = {}  # node id -> (client, peers, until)
        self.network: NetworkFaults | None = None  # --partition
        self.cut: dict[int, float] = {}  # --partition: node id -> heal at
        self.respawn: subprocess.Popen[str] | None = None  # `up --detach` after a supervisor kill

    def say(self, message: str) -> None:
        print(f"{timestamp()} chaos: {message}", file=self.out, flush=True)

    def run(self) -> int:
        state = load_state(self.layout)
        if supervisor_process(state) is None:
            raise ControlError("no supervisor is running for this cluster: chaos needs one to restart nodes")
        o = self.options
        if o.partition:
            self.network = network_faults(self.layout)
        elif o.drop or o.split:
            require_fault_injection(state, "chaos --drop")
        actions = "+".join(a for a, on in (("kill", o.kill), ("pause", o.pause), ("drop", o.drop),
                                           ("supervisor kills", o.supervisor)) if on)
        target = "the leader" if o.leader else "random nodes"
        self.say(f"for {o.duration:g} s, one event every {o.interval:g} s: {actions} {target} (seed {self.seed})")
        end = time.monotonic() + o.duration
        next_event = time.monotonic() + o.interval
        counts = {"kill": 0, "pause": 0, "drop": 0, "split": 0, "supervisor": 0}
        try:
            while (now := time.monotonic()) < end:
                self._resume_due(now)
                self._respawned()
                if now >= next_event:
                    counts_key = self._event()
                    if counts_key:
                        counts[counts_key] += 1
                    next_event = now + o.interval
                wake = min([next_event, end] + [at for _, at in self.paused.values()]
                           + [at for _, _, at in self.isolated.values()] + list(self.cut.values()))
                time.sleep(max(0.0, min(wake - time.monotonic(), 0.5)))
        except KeyboardInterrupt:
            self.say("interrupted")
        finally:
            self._resume_due(float("inf"))
            self._respawned(wait=True)
        splits = f", {counts['split']} splits" if o.split else ""
        supervisors = f", {counts['supervisor']} supervisor kills" if o.supervisor else ""
        self.say(f"done: {counts['kill']} kills, {counts['pause']} pauses, {counts['drop']} isolations"
                 f"{splits}{supervisors}")
        return 0

    def _event(self) -> str | None:
        if self.respawn is not None:
            self.say("skipped: a new supervisor is starting")
            return None
        state = load_state(self.layout)
        supervisor = supervisor_process(state)
        if supervisor is None:
            self.say("the supervisor is gone: stopping")
            raise KeyboardInterrupt
        statuses = collect(state, timeout=0.3)
        # a node we paused or isolated counts as faulty even if it answered a moment ago
        statuses = [replace(s, role="paused") if s.id in self.paused
                    else replace(s, role="isolated") if s.id in self.isolated or s.id in self.cut else s
                    for s in statuses]
        event = choose(self.rng, statuses, self.options)
        if isinstance(event, str):
            self.say(event)
            return None
        if event.action == "drop":
            return self._cut(event) if self.network else self._isolate(state, event)
        if event.action == "split":
            return self._cut_split(state, event) if self.network else self._split(state, event)
        if event.action == "supervisor":
            return self._kill_supervisor(supervisor)
        proc = node_process(state.node(event.node_id), state)
        if proc is None:
            self.say(f"skipped: node {event.node_id} is not running")
            return None
        role = " (leader)" if event.was_leader else ""
        try:  # psutil re-checks the process identity before signalling
            proc.send_signal(signal.SIGKILL if event.action == "kill" else signal.SIGSTOP)
        except psutil.NoSuchProcess:
            self.say(f"skipped: node {event.node_id} exited just now")
            return None
        if event.action == "kill":
            self.say(f"SIGKILL node {event.node_id}{role}, pid {proc.pid}")
        else:
            self.paused[event.node_id] = (proc, time.monotonic() + self.options.pause_for)
            self.say(f"SIGSTOP node {event.node_id}{role}, pid {proc.pid}, for {self.options.pause_for:g} s")
        return event.action

    def _kill_supervisor(self, supervisor: psutil.Process) -> str | None:
        """SIGKILL the supervisor (identity checked by psutil), wait until it is
        gone (its lock is free), then start a new one that adopts the nodes."""
        try:
            supervisor.kill()
            supervisor.wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            self.say(f"the supervisor (pid {supervisor.pid}) did not die within 10 s: stopping")
            raise KeyboardInterrupt from None
        self.say(f"SIGKILL supervisor, pid {supervisor.pid}; its nodes keep serving; starting a new one")
        self.respawn = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "up", "--detach", "--data-dir", str(self.layout.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=self.layout.root)
        return "supervisor"

    def _respawned(self, wait: bool = False) -> None:
        """Report the new supervisor once its `up --detach` returned (every node
        adopted or started, a leader); with `wait`, block until then (bounded)."""
        if self.respawn is None:
            return
        try:
            output, _ = self.respawn.communicate(timeout=90 if wait else 0.001)
        except subprocess.TimeoutExpired:
            if not wait:
                return
            self.respawn.kill()
            output, _ = self.respawn.communicate()
        code, self.respawn = self.respawn.returncode, None
        if code == 0:
            pid = supervisor_process(load_state(self.layout))
            self.say(f"SUPERVISOR back: pid {pid.pid if pid else '?'} adopted the running nodes")
            return
        self.say(f"a new supervisor did not start (status {code}): {output.strip()[-500:]}")
        if not wait:
            raise KeyboardInterrupt  # ends the run: nothing would restart a killed node

    def _isolate(self, state: ClusterState, event: Event) -> str | None:
        record = state.node(event.node_id)
        peers = [n.id for n in state.nodes if n.id != event.node_id]
        if not peers:
            self.say("skipped: a one-node cluster has no traffic to drop")
            return None
        seconds = self.options.drop_for
        try:
            _drop_traffic(record.client, peers, seconds)
        except ClientError as error:
            self.say(f"skipped: node {event.node_id} did not take the drop-traffic request ({error})")
            return None
        self.isolated[event.node_id] = (record.client, peers, time.monotonic() + seconds)
        role = " (leader)" if event.was_leader else ""
        self.say(f"DROP node {event.node_id}{role}: all traffic with nodes {peers} for {seconds:g} s")
        return "drop"

    def _split(self, state: ClusterState, event: Event) -> str | None:
        """Partition: every node of the minority `group` drops all traffic with the
        rest (both directions), so the majority side can elect and commit alone."""
        rest = [n.id for n in state.nodes if n.id not in event.group]
        seconds = self.options.drop_for
        done = []
        for node_id in event.group:
            record = state.node(node_id)
            try:
                _drop_traffic(record.client, rest, seconds)
            except ClientError as error:
                self.say(f"node {node_id} did not take the drop-traffic request ({error})")
                continue
            self.isolated[node_id] = (record.client, rest, time.monotonic() + seconds)
            done.append(node_id)
        if not done:
            return None
        role = " (leader among them)" if event.was_leader else ""
        self.say(f"SPLIT nodes {list(event.group)}{role} | {rest} for {seconds:g} s")
        return "split"

    def _cut(self, event: Event) -> str | None:
        assert self.network is not None
        seconds = self.options.drop_for
        try:
            self.network.cut(event.node_id)
        except netns.NetnsError as error:
            self.say(f"skipped: could not cut node {event.node_id}'s link ({error})")
            return None
        self.cut[event.node_id] = time.monotonic() + seconds
        role = " (leader)" if event.was_leader else ""
        self.say(f"DROP node {event.node_id}{role}: its link is down (packets vanish) for {seconds:g} s")
        return "drop"

    def _cut_split(self, state: ClusterState, event: Event) -> str | None:
        assert self.network is not None
        rest = [n.id for n in state.nodes if n.id not in event.group]
        seconds = self.options.drop_for
        try:
            self.network.isolate(list(event.group), rest)
        except (netns.NetnsError, netns.NetnsUnavailable) as error:
            self.say(f"skipped: could not split {list(event.group)} | {rest} ({error})")
            for node_id in event.group:  # whatever half of it was made
                self.network.heal(node_id)
            return None
        until = time.monotonic() + seconds
        self.cut.update({node_id: until for node_id in event.group})
        role = " (leader among them)" if event.was_leader else ""
        self.say(f"SPLIT nodes {list(event.group)}{role} | {rest} for {seconds:g} s: nft drops every packet between")
        return "split"

    def _resume_due(self, now: float) -> None:
        for node_id, at in list(self.cut.items()):
            if at <= now and self.network is not None:
                del self.cut[node_id]
                try:
                    self.network.heal(node_id)
                    self.say(f"HEAL node {node_id}: its network is whole again")
                except netns.NetnsError as error:
                    self.say(f"node {node_id}: could not heal its network ({error}); `down` removes it")
        for node_id, (client, peers, at) in list(self.isolated.items()):
            if at <= now:
                del self.isolated[node_id]
                if now != float("inf"):  # the node lifted it itself
                    self.say(f"HEAL node {node_id}: traffic flows again")
                    continue
                try:
                    _drop_traffic(client, peers, 0.0)
                    self.say(f"HEAL node {node_id}: lifted early")
                except ClientError as error:
                    self.say(f"node {node_id}: could not lift early ({error}); it lifts itself when due")
        for node_id, (proc, at) in list(self.paused.items()):
            if at <= now:
                del self.paused[node_id]
                try:  # psutil refuses to signal a pid that now names another process
                    proc.send_signal(signal.SIGCONT)
                except psutil.NoSuchProcess:
                    continue
                self.say(f"SIGCONT node {node_id}, pid {proc.pid}")


def network_faults(layout: Layout) -> NetworkFaults:
    """`--partition`'s executor, for the cluster's recorded --netns plan."""
    try:
        plan = netns.load(layout)
        netns.require()
    except (netns.NetnsError, netns.NetnsUnavailable) as error:
        raise ControlError(f"chaos --partition: {error}") from None
    if plan is None:
        raise ControlError("chaos --partition cuts real links: it needs a cluster started with "
                           "`python -m supervisor up --netns` (use --drop for simulated partitions)")
    return NetworkFaults(plan)


def _drop_traffic(endpoint: str, peers: list[int], seconds: float) -> None:
    client = Client([endpoint], timeout=1.0, attempt_timeout=1.0)
    try:
        client.drop_traffic(endpoint, peers, seconds, "both")
    finally:
        client.close()
