"""--kill-leader: SIGKILL the leader at an interval during the run, through the
supervisor (`python -m supervisor kill leader`, run as a command: the supervisor
checks that the pid is its own node's and restarts it; `cluster` imports nothing
from it). Each kill's time is taken when that command returns, just after the
signal, on the clock of the run (seconds after t0)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

KILL_TIMEOUT = 15.0
LEADER_WAIT = 5.0


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
        for i in range(self.count):
            if self.stop.wait(max(0.0, self.t0 + (i + 1) * self.interval - time.monotonic())):
                return
            self.kills.append(self._kill_once())

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
