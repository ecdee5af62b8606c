"""`down`, `kill`, `restart` and `logs`: acting on a running cluster from another
process, through the state file. Every signal goes to a pid the state file names
*and* whose start time matches (statefile.node_process), never to a name."""
from __future__ import annotations

import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from cluster.discovery import ClusterState, DiscoveryError, Layout, NodeRecord, read_state
from supervisor import netns
from supervisor.spawn import terminate
from supervisor.statefile import SupervisorLock, node_process, remove_state, supervisor_process
from supervisor.status import collect, leader_of


class ControlError(Exception):
    """An operation that cannot be done; `status` is the exit status (1 failed,
    2 usage: e.g. no such node id)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def load_state(layout: Layout) -> ClusterState:
    try:
        state = read_state(layout)
    except DiscoveryError as error:
        raise ControlError(str(error)) from None
    if state is None:
        raise ControlError(f"no cluster here: {layout.state} does not exist "
                           "(start one with `python -m supervisor up 3`)")
    return state


def find_node(state: ClusterState, which: str) -> NodeRecord:
    """A node by id, or `leader` for the current leader."""
    if which == "leader":
        leader = leader_of(collect(state))
        if leader is None:
            raise ControlError("no node claims to be the leader right now")
        return state.node(leader.id)
    try:
        return state.node(int(which))
    except (ValueError, KeyError):
        ids = ", ".join(str(n.id) for n in state.nodes)
        raise ControlError(f"no node {which!r} in this cluster (ids: {ids}, or `leader`)", 2) from None


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


# -- down --------------------------------------------------------------------------------


def down(layout: Layout, purge: bool, grace: float, out: TextIO) -> int:
    state = None
    try:
        state = read_state(layout)
    except DiscoveryError as error:
        print(f"ignoring an unreadable state file: {error}", file=out)
    if state is None:
        print(f"no cluster running in {layout.root}", file=out)
    else:
        _stop(layout, state, grace, out)
    _remove_network(layout, out)
    if purge:
        return _purge(layout, out)
    return 0


def _stop(layout: Layout, state: ClusterState, grace: float, out: TextIO) -> None:
    supervisor = supervisor_process(state)
    if supervisor is not None:
        print(f"stopping the supervisor (pid {supervisor.pid}) and its {len(state.nodes)} nodes", file=out)
        terminate([supervisor], grace + 15)  # it needs up to `grace` to stop its nodes
    leftovers = [p for n in state.nodes if (p := node_process(n, state)) is not None]
    if leftovers:
        print(f"stopping nodes left without a supervisor: pids {[p.pid for p in leftovers]}", file=out)
        terminate(leftovers, grace)
    remove_state(layout)
    print("cluster stopped", file=out)


def _remove_network(layout: Layout, out: TextIO) -> None:
    """A --netns cluster's namespaces, links and bridge (after its nodes stopped);
    the record stays, so the next `up` makes them again."""
    try:
        plan = netns.load(layout)
        if plan is not None:
            removed = netns.remove(plan)
            if removed:
                print(f"netns: removed {', '.join(removed)}", file=out)
    except netns.NetnsError as error:
        raise ControlError(str(error)) from None


_OURS = re.compile(r"^(cluster\.toml|keys|members\.json|netns\.json|supervisor\.(json|lock|log)|node-\d+(\.log)?|chaos-\d{8}T\d{6}Z|.*\.tmp)$")


def _purge(layout: Layout, out: TextIO) -> int:
    root = layout.root
    if not root.exists():
        return 0
    if SupervisorLock(layout).is_held_elsewhere():
        raise ControlError(f"a supervisor still holds {root}: not removing it")
    foreign = sorted(p.name for p in root.iterdir() if not _OURS.match(p.name))
    if foreign:
        raise ControlError(f"{root} contains files the supervisor did not create ({', '.join(foreign)}): "
                           "not removing it")
    shutil.rmtree(root)
    print(f"removed {root}", file=out)
    return 0


# -- kill / restart ----------------------------------------------------------------------


def kill(layout: Layout, which: str, sig: signal.Signals, out: TextIO) -> int:
    state = load_state(layout)
    record = find_node(state, which)
    proc = node_process(record, state)
    if proc is None:
        raise ControlError(f"node {record.id} is not running ({record.state}"
                           f"{': ' + record.last_exit if record.last_exit else ''})")
    proc.send_signal(sig)
    after = ("the supervisor will restart it" if supervisor_process(state) is not None
             else "no supervisor is running: it will not be restarted")
    print(f"sent {sig.name} to node {record.id} (pid {proc.pid}); {after}", file=out)
    return 0


def restart(layout: Layout, which: str, grace: float, timeout: float, out: TextIO) -> int:
    state = load_state(layout)
    if supervisor_process(state) is None:
        raise ControlError("no supervisor is running for this cluster: `python -m supervisor up` first")
    record = find_node(state, which)
    proc = node_process(record, state)
    old = record.pid
    if proc is not None:
        terminate([proc], grace)

    def restarted() -> bool:
        now = read_state(layout)
        if now is None:
            return False
        fresh = now.node(record.id)
        return fresh.pid not in (0, old) and node_process(fresh, now) is not None
    if not wait_until(restarted, timeout):
        raise ControlError(f"node {record.id} was not restarted within {timeout:.0f} s "
                           f"(see {layout.node_log(record.id)})")
    new = load_state(layout).node(record.id)
    print(f"node {record.id} restarted: pid {old or '-'} -> {new.pid}", file=out)
    return 0


# -- logs --------------------------------------------------------------------------------


def logs(layout: Layout, which: str, follow: bool, lines: int | None, out: TextIO = sys.stdout) -> int:
    try:
        node_id = int(which)
    except ValueError:
        raise ControlError(f"node id must be a number, got {which!r}", 2) from None
    path = layout.node_log(node_id)
    if not path.exists():
        raise ControlError(f"no log for node {node_id}: {path} does not exist")
    with path.open("r", errors="replace") as handle:
        text = handle.read()
        shown = text.splitlines(keepends=True)
        out.write("".join(shown[-lines:] if lines is not None else shown))
        out.flush()
        if follow:
            _follow(handle, out)
    return 0


def _follow(handle: TextIO, out: TextIO) -> None:
    """Print what is appended until Ctrl-C."""
    try:
        while True:
            chunk = handle.read()
            if chunk:
                out.write(chunk)
                out.flush()
            else:
                time.sleep(0.2)
    except KeyboardInterrupt:
        return

