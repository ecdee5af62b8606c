"""When to restart a node that died: exponential backoff on crash loops.

A node that ran for at least `stable_after` seconds before dying is restarted
after `base` seconds; each further death within `stable_after` of its start
doubles the delay, up to `cap`. One kill (chaos, an operator, an OOM) costs a
fraction of a second; a node that cannot start (a corrupt disk, a port taken)
is retried every `cap` seconds instead of spinning. That includes a node that
fail-stops on a full or failing disk (node/storage DiskFault, exit status 1):
each restart dies again within seconds until space is freed, so the delay
doubles to `cap`, and the first restart after the operator frees space brings it
back within `cap` seconds. The same policy applies to adopted nodes (their
uptime counts from their real start).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    base: float = 0.2
    cap: float = 10.0
    stable_after: float = 10.0

    def quick_deaths(self, previous: int, uptime: float) -> int:
        """The crash-loop count after a death `uptime` seconds after start."""
        return previous + 1 if uptime < self.stable_after else 0

    def delay(self, quick_deaths: int) -> float:
        """Seconds to wait before the restart, given the crash-loop count."""
        return float(min(self.cap, self.base * 2 ** min(quick_deaths, 32)))
