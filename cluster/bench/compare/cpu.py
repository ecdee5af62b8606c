"""The CPU a system's server processes spend while a workload is measured: every
member's user + system time (psutil), read at the start and at the end of the
measured window, so the table can show server CPU per op next to the load
generator's."""
from __future__ import annotations

import time

import psutil

#: Seconds a freshly started cluster is left alone before its idle CPU is read.
IDLE_SETTLE_S = 1.0


class ServerCpu:
    """`read()`: the CPU seconds the given processes have used so far (a process that
    has exited counts as 0 from then on: the figure is then an underestimate)."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.start: float | None = None
        self.used: float | None = None

    def read(self) -> float:
        total = 0.0
        for proc in self.procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def begin(self) -> None:
        self.start = self.read()

    def end(self) -> float | None:
        if self.start is not None and self.used is None:
            self.used = self.read() - self.start
        return self.used


def idle_cores(pids: list[int], seconds: float, settle: float = IDLE_SETTLE_S) -> float:
    """The cores `pids` use together while nobody asks them anything: their CPU
    over `seconds` (after `settle` seconds), / `seconds`. Issue 17: an idle jangada
    cluster must cost at most twice etcd's."""
    time.sleep(min(settle, seconds))
    cpu = ServerCpu(pids)
    cpu.begin()
    time.sleep(seconds)
    used = cpu.end()
    return (used or 0.0) / seconds
