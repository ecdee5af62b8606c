"""Frames a node refuses to act on: counted by kind (the status's `dropped`) and
logged at a bounded rate (a remote party can trigger them at will)."""
from __future__ import annotations

from collections import Counter

from node.eventlog import EventLog


class DroppedFrames:
    def __init__(self, log: EventLog) -> None:
        self.counts: Counter[str] = Counter()
        self._log = log

    def drop(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        self._log.rate_limited(kind, f"dropped frame ({kind}): {detail} [{self.counts[kind]} so far]")
