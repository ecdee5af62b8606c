"""The supervision loop: spawn every node, wait for a leader, restart what dies,
stop everything on SIGTERM/SIGINT.

Theory of operation. The supervisor is the only writer of the state file and the
parent of every node it started, so it learns of a death by reaping the child
(`poll`), with the exact exit status or signal. Nodes outlive a supervisor that is
killed (supervisor/spawn.py); a new supervisor in the same data directory adopts
the ones still running (`previous`: the state file the dead one left, matched by
pid, start time and command line), watches them by polling psutil (their exit
status is lost with their parent), and starts only the missing members. A dead
node is restarted after the backoff of `RestartPolicy`; the state file is rewritten on every change (spawn, death,
restart), so `status`, `kill` and `chaos` in other processes always see the
current pids. A background thread asks every node for its status once a second
(never the main loop: a paused node would stall restarts); the display shows it.
On SIGTERM, SIGINT or SIGHUP the loop ends, every node (adopted ones too) gets
SIGTERM, then SIGKILL after the grace period, the state file is removed and the
lock released: asking the supervisor to stop stops the cluster; killing it does not.

Membership (supervisor/roster.py): the nodes run are the roster's members, not just
the config's. `python -m supervisor add` / `remove` rewrite `members.json` and send
SIGUSR1; the loop then reconciles: it spawns members that are new (with `--join`) and
stops and forgets those that are gone.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

from cluster.discovery import ClusterState, Layout, NodeRecord
from cluster.spec import ClusterSpec
from supervisor.display import Display, etcd_faces
from supervisor.security import tls_paths
from supervisor.restarts import RestartPolicy
from supervisor.roster import RosterError, load_roster
from supervisor.spawn import Adopted, NodeProcess, as_psutil, describe_exit, exit_of, reap, spawn_node, terminate
from supervisor.statefile import adoptable, create_time, remove_state, write_state
from supervisor.status import NodeStatus, collect, leader_of

LOOP_INTERVAL = 0.1  # how often dead children are reaped and due restarts run
STATUS_INTERVAL = 1.0


@dataclass(slots=True)
class _Child:
    proc: NodeProcess | None = None
    started: float = 0.0  # monotonic
    restart_at: float | None = None  # monotonic, while in backoff
    quick_deaths: int = 0


@dataclass(slots=True)
class _Watch:
    """The status thread's latest view (read by the display and the main loop)."""

    statuses: list[NodeStatus] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Supervisor:
    def __init__(self, layout: Layout, spec: ClusterSpec, display: Display, *,
                 policy: RestartPolicy = RestartPolicy(), grace: float = 5.0,
                 previous: ClusterState | None = None) -> None:
        self.layout = layout
        self.spec = spec
        self.display = display
        self.policy = policy
        self.grace = grace
        members = load_roster(layout).current(spec)
        self.joins = {m.id: m for m in members if m.join is not None}
        self.children = {m.id: _Child() for m in members}
        me = os.getpid()
        keys = {m.id: m.curve_public for m in spec.members}  # members added later have none (yet)
        metrics = {m.id: m.metrics for m in spec.members}  # likewise
        ca, client_cert, client_key = tls_paths(spec)
        self.state = ClusterState(
            cluster_id=spec.cluster_id, config=str(layout.config), data_dir=str(layout.root),
            supervisor_pid=me, supervisor_create_time=create_time(me), started_at=time.time(),
            nodes=[NodeRecord(m.id, m.client, m.peer, grpc=m.grpc, gateway=m.gateway, curve_public=keys.get(m.id, ""),
                              metrics=metrics.get(m.id, ""))
                   for m in members], ca=ca, client_cert=client_cert, client_key=client_key)
        self.stopping = threading.Event()
        self.roster_changed = threading.Event()
        self.watch = _Watch()
        self._leader: tuple[int, int] | None = None  # (id, term) last announced
        self.strays: list[psutil.Process] = []  # live nodes of `previous` that are no longer members
        if previous is not None:
            self._adopt(previous)

    def _adopt(self, previous: ClusterState) -> None:
        """Take over the nodes a killed supervisor left running: their pids,
        restart counts and last exits carry over; their uptime counts from their
        real start, so the crash-loop backoff judges them fairly."""
        for node_id, proc in adoptable(previous, str(self.layout.config)).items():
            if node_id not in self.children:
                self.strays.append(proc)
                continue
            old = previous.node(node_id)
            record = self.state.node(node_id)
            record.pid, record.create_time, record.state = old.pid, old.create_time, "running"
            record.restarts, record.last_exit = old.restarts, old.last_exit
            child = self.children[node_id]
            child.proc = Adopted(proc)
            child.started = time.monotonic() - max(0.0, time.time() - old.create_time)

    # -- signals ---------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # HUP: the terminal closed
            signal.signal(signum, on_signal)
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: self.roster_changed.set())

    # -- the whole life ----------------------------------------------------------------

    def run(self, leader_timeout: float) -> int:
        """Start, supervise until told to stop, stop. The exit status of `up`."""
        adopted = {i: c.proc.pid for i, c in self.children.items() if c.proc is not None}
        missing = [i for i in self.children if i not in adopted]
        if adopted:
            listed = ", ".join(f"node {i} pid {pid}" for i, pid in adopted.items())
            self.display.event(f"adopting {len(adopted)} nodes still running from an earlier supervisor ({listed})")
        self.display.event(f"starting {len(missing)} nodes of cluster {self.spec.cluster_id} "
                           f"(data: {self.layout.root})")
        try:
            if self.strays:
                self.display.event(f"stopping nodes that are no longer members: pids {[p.pid for p in self.strays]}")
                terminate(self.strays, self.grace)
            for node_id in missing:
                self._spawn(node_id)
            self._save()
            leader = self._wait_for_leader(leader_timeout)
            if leader is None:
                if not self.stopping.is_set():
                    self.display.event(f"no leader after {leader_timeout:.0f} s: stopping "
                                       f"(see the node logs in {self.layout.root})")
                return 1
            self.state.ready = True
            self._save()
            self.display.ready(self.state, leader)
            watcher = threading.Thread(target=self._watch_loop, name="status", daemon=True)
            watcher.start()
            with self.display.live(self._latest):
                while not self.stopping.wait(LOOP_INTERVAL):
                    self.step(time.monotonic())
                    self._announce_leader_change()
            return 0
        finally:
            self.shutdown()

    def _wait_for_leader(self, timeout: float) -> NodeStatus | None:
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set() and time.monotonic() < deadline:
            self.step(time.monotonic())
            leader = leader_of(collect(self.state, timeout=0.3))
            if leader is not None:
                self._leader = (leader.id, leader.term or 0)
                return leader
            self.stopping.wait(LOOP_INTERVAL)
        return None

    # -- one turn --------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Reap dead nodes and schedule their restart; restart those whose backoff
        is over. Everything that changes is written to the state file."""
        changed = False
        if self.roster_changed.is_set():
            self.roster_changed.clear()
            changed = self._reconcile()
        for node_id, child in self.children.items():
            if child.proc is not None and (ended := exit_of(child.proc)) is not None:
                self._on_death(node_id, child, ended.code, now)
                changed = True
            elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                record = self.state.node(node_id)
                record.restarts += 1
                self._spawn(node_id)
                self.display.event(f"node {node_id}: restarted as pid {record.pid} (restart #{record.restarts})")
                changed = True
        if changed:
            self._save()

    def _on_death(self, node_id: int, child: _Child, code: int | None, now: float) -> None:
        uptime = now - child.started
        record = self.state.node(node_id)
        how = describe_exit(code, uptime)
        pid = record.pid
        child.proc = None
        child.quick_deaths = self.policy.quick_deaths(child.quick_deaths, uptime)
        delay = self.policy.delay(child.quick_deaths)
        child.restart_at = now + delay
        record.last_exit, record.state, record.pid, record.create_time = how, "backoff", 0, 0.0
        self.display.event(f"node {node_id}: pid {pid} {how}; restarting in {delay:.1f} s")
        if (code is None or code > 0) and (last := last_line(self.layout.node_log(node_id))):
            self.display.event(f"node {node_id}: its last log line: {last}")

    def _reconcile(self) -> bool:
        """Run exactly the roster's members: spawn the new, stop and forget the gone."""
        try:
            members = load_roster(self.layout).current(self.spec)
        except RosterError as error:
            self.display.event(f"roster not reloaded: {error}")
            return False
        wanted = {m.id: m for m in members}
        changed = False
        for node_id in [i for i in self.children if i not in wanted]:
            child = self.children.pop(node_id)
            self.state.nodes = [n for n in self.state.nodes if n.id != node_id]
            if child.proc is not None and (proc := as_psutil(child.proc)) is not None:
                terminate([proc], self.grace)
            if child.proc is not None:
                reap(child.proc)
            self.display.event(f"node {node_id}: removed from the cluster; stopped and forgotten")
            changed = True
        for node_id, member in wanted.items():
            if node_id in self.children:
                continue
            if member.join is not None:
                self.joins[node_id] = member
            self.children[node_id] = _Child()
            self.state.nodes.append(NodeRecord(node_id, member.client, member.peer,
                                               grpc=member.grpc, gateway=member.gateway))
            self._spawn(node_id)
            self.display.event(f"node {node_id}: new member, started as pid {self.state.node(node_id).pid} "
                               f"(client {member.client}, peer {member.peer}{etcd_faces(member.grpc, member.gateway)})")
            changed = True
        return changed

    def _spawn(self, node_id: int) -> None:
        child = self.children[node_id]
        child.proc = spawn_node(self.layout, node_id, self.joins.get(node_id))
        child.started = time.monotonic()
        child.restart_at = None
        record = self.state.node(node_id)
        record.pid, record.create_time, record.state = child.proc.pid, create_time(child.proc.pid), "running"

    # -- status ------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        while not self.stopping.is_set():
            statuses = collect(self._snapshot_state())
            with self.watch.lock:
                self.watch.statuses = statuses
            self.stopping.wait(STATUS_INTERVAL)

    def _snapshot_state(self) -> ClusterState:
        # The main thread mutates records; the watcher reads a copy.
        return ClusterState.from_json(self.state.to_json())

    def _latest(self) -> list[NodeStatus]:
        with self.watch.lock:
            return list(self.watch.statuses)

    def _announce_leader_change(self) -> None:
        leader = leader_of(self._latest())
        if leader is None:
            return
        now = (leader.id, leader.term or 0)
        if now != self._leader:
            self._leader = now
            self.display.event(f"leader: node {leader.id} (term {leader.term})")

    # -- the end -----------------------------------------------------------------------

    def shutdown(self) -> None:
        self.stopping.set()
        procs: list[psutil.Process] = []
        for child in self.children.values():
            if child.proc is not None and (proc := as_psutil(child.proc)) is not None:
                procs.append(proc)
        if procs:
            self.display.event(f"stopping {len(procs)} nodes (SIGTERM, SIGKILL after {self.grace:.0f} s)")
        killed = terminate(procs, self.grace)
        if killed:
            self.display.event(f"SIGKILLed after the grace period: pids {killed}")
        for child in self.children.values():
            if child.proc is not None:
                reap(child.proc)  # terminate waited already; this is immediate
                child.proc = None
        remove_state(self.layout)
        self.display.event("cluster stopped")

    def _save(self) -> None:
        write_state(self.layout, self.state)


def last_line(path: Path, max_bytes: int = 4096) -> str:
    """The last non-empty line of a log file (why a node refused to start)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
