"""What a load thread counts, and how a load process merges its threads' counts.

Both kinds of load share it: `worker` (threads with a Client each) and `pipeline`
(one socket with many requests in flight) record into a `ThreadTally`; the
process sends the parent one `merge_tallies` dict; `report` reads the timeline at
`INTERVAL` resolution.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cluster.bench.histogram import Histogram

WRITE_KINDS = frozenset({"put", "cas-succeeded", "cas-failed"})
#: Throughput timeline resolution (seconds per bucket).
INTERVAL = 0.25


@dataclass
class ThreadTally:
    latency: Histogram = field(default_factory=Histogram)
    errors: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    timeline: Counter[int] = field(default_factory=Counter)
    completed: int = 0
    last: float = 0.0  # seconds after t0 of its last completion
    prefill_errors: int = 0
    setup_error: str = ""  # why this thread could not start measuring (the run is aborted)
    ok_write_times: list[float] | None = None  # --kill-leader: when each ok write completed (s after t0)
    #: --pipeline: each leader change it followed, seconds from the first lost request to the next answer
    interruptions: list[float] = field(default_factory=list)


def merge_tallies(index: int, tallies: list[ThreadTally], cpu_s: float = 0.0) -> dict[str, Any]:
    latency = Histogram()
    errors: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    timeline: Counter[int] = Counter()
    for tally in tallies:
        latency.merge(tally.latency)
        errors.update(tally.errors)
        kinds.update(tally.kinds)
        timeline.update(tally.timeline)
    return {"process": index, "latency": latency.to_dict(), "errors": dict(errors), "kinds": dict(kinds),
            "timeline": dict(timeline), "completed": sum(t.completed for t in tallies),
            "last": max((t.last for t in tallies), default=0.0),
            "prefill_errors": sum(t.prefill_errors for t in tallies), "cpu_s": cpu_s,
            "setup_error": next((t.setup_error for t in tallies if t.setup_error), ""),
            "ok_write_times": sorted(x for t in tallies for x in (t.ok_write_times or ())),
            "interruptions": [x for t in tallies for x in t.interruptions]}
