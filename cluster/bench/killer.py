"""--kill-leader: SIGKILL the leader at an interval during the run, through the
supervisor (`python -m supervisor kill leader`, run as a command: the supervisor
checks that the pid is its own node's and restarts it; `cluster` imports nothing
from it). Each kill's time is taken when that command returns, just after the
signal, on the clock of the run (seconds after t0).

A kill waits until the cluster is healthy again (every member alive, answering,
and applied to within HEALTHY_LAG entries of the leader's commit), then the
interval: what is measured is how long a healthy cluster takes to fail over,
not a cluster still replaying its previous victim's log (with 3 members, killing
the leader while another member restarts leaves no quorum at all)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

KILL_TIMEOUT = 15.0
LEADER_WAIT = 5.0
HEALTHY_WAIT = 120.0
HEALTHY_LAG = 1000


@dataclass(frozen=True, slots=True)
class Kill:
    at: float
    ok: bool
    detail: str


@dataclass
class LeaderKiller:
    count: int
    interval: float
    t0: float
    stop: threading.Event = field(default_factory=threading.Event)
    kills: list[Kill] = field(default_factory=list)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="bench-killer", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        for _ in range(self.count):
            if not self._wait_healthy() or self.stop.wait(self.interval):
                return
            self.kills.append(self._kill_once())

    def _wait_healthy(self) -> bool:
        """Wait (bounded) until every member is up and caught up; False if the run
        stops first. A cluster that never gets healthy is killed anyway after
        HEALTHY_WAIT, and the report shows it as a long outage."""
        deadline = time.monotonic() + HEALTHY_WAIT
        while not self.stop.is_set() and time.monotonic() < deadline:
            if healthy(self._status()):
                return True
            self.stop.wait(0.2)
        return not self.stop.is_set()

    @staticmethod
    def _status() -> dict | None:
        try:
            done = subprocess.run([sys.executable, "-m", "supervisor", "status", "--json"], capture_output=True,
                                  text=True, timeout=KILL_TIMEOUT)
            return json.loads(done.stdout) if done.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError):
            return None

    def _kill_once(self) -> Kill:
        """Kill the leader, retrying while there is none yet (an election after the
        last kill still running), for at most LEADER_WAIT seconds."""
        deadline = time.monotonic() + LEADER_WAIT
        while True:
            try:
                done = subprocess.run([sys.executable, "-m", "supervisor", "kill", "leader"], capture_output=True,
                                      text=True, timeout=KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                return Kill(time.monotonic() - self.t0, False, "supervisor kill timed out")
            lines = (done.stdout + done.stderr).strip().splitlines()
            kill = Kill(time.monotonic() - self.t0, done.returncode == 0, lines[-1] if lines else "")
            if kill.ok or time.monotonic() > deadline or self.stop.is_set():
                return kill
            time.sleep(0.1)


def healthy(status: dict | None) -> bool:
    """Every member alive and answering, one leader, and every member applied to
    within HEALTHY_LAG entries of the leader's commit index."""
    if not status or not status.get("nodes"):
        return False
    nodes = status["nodes"]
    leaders = [n for n in nodes if n.get("role") == "leader"]
    if len(leaders) != 1 or not all(n.get("alive") and isinstance(n.get("applied_index"), int) for n in nodes):
        return False
    commit = leaders[0].get("commit_index") or 0
    return all(commit - n["applied_index"] <= HEALTHY_LAG for n in nodes)
