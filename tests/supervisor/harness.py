"""Running the real commands as subprocesses in a tmp working directory, and ending
every process they started, by pid.

`Session.run(...)` runs `python -m supervisor|cluster ...` with cwd=tmp (no flags:
the commands must find the cluster themselves). After each command the session
records the supervisor's pid and every node pid from the state file (and the
pid in supervisor.lock, for a supervisor that never wrote a state file), each
with its start time. `close()` (the fixture's finalizer) SIGTERMs the recorded
supervisors and waits, then SIGTERMs the recorded nodes still running (a killed
supervisor leaves its nodes serving), waits, then SIGKILLs every recorded process
that is still the same process; nothing is found by name.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from cluster.discovery import ClusterState, Layout, read_state

T = TypeVar("T")
COMMAND_TIMEOUT = 90.0


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JANGADA_DATA_DIR", "JANGADA_ENDPOINTS"):
        env.pop(name, None)
    return env


class Session:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.layout = Layout(cwd / "jangada-data")
        self.tracked: dict[int, float] = {}  # pid -> create_time
        self.supervisors: set[int] = set()

    def run(self, package: str, *args: str, timeout: float = COMMAND_TIMEOUT,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([sys.executable, "-m", package, *args], cwd=self.cwd, env=clean_env(),
                                  capture_output=True, text=True, timeout=timeout, input=stdin)
        finally:
            self.track()

    def supervisor(self, *args: str, **kw: float) -> subprocess.CompletedProcess[str]:
        return self.run("supervisor", *args, **kw)  # type: ignore[arg-type]

    def cli(self, *args: str, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return self.run("cluster", *args, stdin=stdin, timeout=timeout)

    def popen(self, package: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", package, *args], cwd=self.cwd, env=clean_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._remember(proc.pid)
        return proc

    def state(self) -> ClusterState | None:
        return read_state(self.layout)

    def track(self) -> None:
        state = None
        try:
            state = self.state()
        except Exception:  # a half-written file is impossible (atomic rename) but be safe
            state = None
        if state is not None:
            self._remember(state.supervisor_pid, supervisor=True)
            for node in state.nodes:
                if node.pid:
                    self._remember(node.pid)
        try:
            holder = int(self.layout.lock.read_text().strip() or 0)
        except (OSError, ValueError):
            holder = 0
        if holder:
            self._remember(holder, supervisor=True)

    def _track_by_data_dir(self) -> None:
        """Our processes the state file does not name yet: an `up --detach` that
        timed out leaves its background supervisor starting, and it writes the state
        file only once the cluster is up -- after this session closed. Every such
        process names this session's own tmp data directory on its command line."""
        root = str(self.layout.root)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if any(root in arg for arg in cmdline):
                self._remember(proc.info["pid"], supervisor="supervisor" in cmdline)

    def _remember(self, pid: int, supervisor: bool = False) -> None:
        try:
            proc = psutil.Process(pid)
            created = proc.create_time()
            cmdline = proc.cmdline()
        except psutil.Error:
            return
        if pid == os.getpid() or not any("supervisor" in c or c == "node" or c == "cluster" for c in cmdline):
            return
        self.tracked.setdefault(pid, created)
        if supervisor:
            self.supervisors.add(pid)

    def alive(self) -> list[int]:
        return [pid for pid, created in self.tracked.items() if _same(pid, created) is not None]

    def close(self) -> None:
        """SIGTERM the supervisors (each stops its nodes) and wait for them; then
        SIGTERM what is left -- nodes outlive a supervisor that was killed -- and
        SIGKILL whatever still runs after that."""
        self.track()
        self._track_by_data_dir()
        self._terminate([pid for pid in self.supervisors if pid in self.tracked], 20)
        self._terminate(self.alive(), 10)
        for pid in self.alive():
            proc = _same(pid, self.tracked[pid])
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()


    def _terminate(self, pids: list[int], timeout: float) -> None:
        for pid in pids:
            proc = _same(pid, self.tracked[pid])
            if proc is not None:
                proc.send_signal(signal.SIGCONT)  # a node chaos paused
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_same(pid, self.tracked[pid]) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


def _same(pid: int, created: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - created) > 0.5 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None
