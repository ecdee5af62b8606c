"""The supervisor's state file, its lock, and telling our processes from others.

Liveness of a supervisor is its flock on `supervisor.lock` (released by the kernel
however the process dies, so a crashed supervisor never blocks the next `up`). The
state file records pids with their psutil `create_time`: a pid is "ours" only if a
process with that pid exists *and* started at that time, so a pid reused by an
unrelated program is never signalled. The format itself is `cluster.discovery`.

Adoption (issue 18): nodes outlive a supervisor that was killed, and the next `up`
takes them over (`adoptable`) only if pid, start time and command line (`-m node
--id N --config <this data dir's config>`) all match the state file the dead
supervisor left: a node of another data directory, or a pid reused by anything
else, is never adopted.
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from cluster.discovery import ClusterState, DiscoveryError, Layout, NodeRecord, read_state

#: psutil's create_time is derived from boot time + start ticks: allow for rounding.
CREATE_TIME_SLACK = 0.5


class SupervisorRunning(Exception):
    """Another supervisor holds this data directory."""


def write_state(layout: Layout, state: ClusterState) -> None:
    """Atomically replace the state file (readers never see half a file)."""
    tmp = layout.state.with_name(f"{layout.state.name}.{os.getpid()}.tmp")
    tmp.write_text(state.to_json())
    tmp.replace(layout.state)


def remove_state(layout: Layout) -> None:
    layout.state.unlink(missing_ok=True)


def create_time(pid: int) -> float:
    """The start time of process `pid` (psutil), 0.0 if there is none."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0


def same_process(pid: int, started: float) -> psutil.Process | None:
    """The live process `pid` if it is the one that started at `started`, else None.
    A zombie (dead, not yet reaped) counts as gone."""
    if pid <= 0 or started <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) > CREATE_TIME_SLACK:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def node_process(record: NodeRecord, state: ClusterState) -> psutil.Process | None:
    """Node `record`'s process if it is one we started: same pid and start time, and
    its command line is `... -m node ... --id N`. Safe to signal."""
    proc = same_process(record.pid, record.create_time)
    if proc is None:
        return None
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return proc if is_node_command(cmdline, record.id) else None


def is_node_command(cmdline: list[str], node_id: int) -> bool:
    """Whether `cmdline` is `PYTHON -m node ... --id node_id ...`."""
    try:
        return (cmdline[cmdline.index("-m") + 1] == "node"
                and cmdline[cmdline.index("--id") + 1] == str(node_id))
    except (ValueError, IndexError):
        return False


def adoptable(state: ClusterState, config: str) -> dict[int, psutil.Process]:
    """The nodes of `state` still running that a new supervisor may take over:
    node id -> process. Empty while the state's own supervisor lives (they are
    its children, not orphans)."""
    if supervisor_process(state) is not None:
        return {}
    found = {}
    for record in state.nodes:
        proc = node_process(record, state)
        if proc is None:
            continue
        try:
            cmdline = proc.cmdline()
        except psutil.Error:
            continue
        if _argument(cmdline, "--config") == config:
            found[record.id] = proc
    return found


def _argument(cmdline: list[str], flag: str) -> str | None:
    try:
        return cmdline[cmdline.index(flag) + 1]
    except (ValueError, IndexError):
        return None


def supervisor_process(state: ClusterState) -> psutil.Process | None:
    return same_process(state.supervisor_pid, state.supervisor_create_time)


@dataclass(frozen=True, slots=True)
class Existing:
    """What a data directory holds before `up`."""

    state: ClusterState | None
    supervisor_alive: bool
    orphans: tuple[NodeRecord, ...]  # nodes still alive whose supervisor is gone


def inspect(layout: Layout) -> Existing:
    try:
        state = read_state(layout)
    except DiscoveryError:
        return Existing(None, False, ())  # unreadable: treated as stale
    if state is None:
        return Existing(None, False, ())
    alive = supervisor_process(state) is not None
    orphans = () if alive else tuple(n for n in state.nodes if node_process(n, state) is not None)
    return Existing(state, alive, orphans)


class SupervisorLock:
    """An exclusive, non-blocking flock on `supervisor.lock`, held for the
    supervisor's lifetime; the file also names the holder's pid for messages."""

    def __init__(self, layout: Layout) -> None:
        self.path: Path = layout.lock
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise SupervisorRunning(f"a supervisor (pid {holder}) is already running for {self.path.parent}") \
                from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def is_held_elsewhere(self) -> bool:
        """Whether some other process holds the lock right now (probe and release)."""
        try:
            self.acquire()
        except SupervisorRunning:
            return True
        self.release()
        return False
