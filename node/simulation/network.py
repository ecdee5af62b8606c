"""The simulated network: every message is delayed, and may be dropped, duplicated
or blocked by a partition. Delivery order is by (delivery tick, send sequence), so
random delays reorder messages."""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from node.raft import InstallSnapshot, Message


@dataclass(slots=True)
class NetworkFaults:
    drop: float = 0.0  # probability that a message is lost
    duplicate: float = 0.0  # probability that a message is delivered twice
    min_delay: int = 1  # ticks
    max_delay: int = 1  # ticks; > min_delay reorders messages
    # (src, dst) pairs that cannot talk: symmetric partitions block both directions.
    blocked: set[tuple[int, int]] = field(default_factory=set)
    # Extra delay for messages to or from a slow node.
    slow: dict[int, int] = field(default_factory=dict)


class SimNetwork:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.faults = NetworkFaults()
        self._queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        self.sent = 0
        self.dropped = 0
        # InstallSnapshots that never arrived: the real transport notices a failed
        # stream and the node calls report_snapshot(peer, False); so does the cluster.
        self.failed_snapshots: list[InstallSnapshot] = []

    def send(self, now: int, m: Message) -> None:
        self.sent += 1
        f = self.faults
        rng = self.rng
        if (m.src, m.dst) in f.blocked or (f.drop and rng.random() < f.drop):
            self._drop(m)
            return
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        for _ in range(copies):
            delay = rng.randint(f.min_delay, f.max_delay) if f.max_delay > f.min_delay else f.min_delay
            delay += f.slow.get(m.src, 0) + f.slow.get(m.dst, 0)
            self._seq += 1
            heapq.heappush(self._queue, (now + delay, self._seq, m))

    def due(self, now: int) -> list[Message]:
        """Messages whose delivery time has come, in delivery order. A partition that
        began while a message was in flight also blocks it."""
        out = []
        q = self._queue
        blocked = self.faults.blocked
        while q and q[0][0] <= now:
            m = heapq.heappop(q)[2]
            if (m.src, m.dst) in blocked:
                self._drop(m)
            else:
                out.append(m)
        return out

    def _drop(self, m: Message) -> None:
        self.dropped += 1
        if isinstance(m, InstallSnapshot):
            self.failed_snapshots.append(m)

    def purge(self, node_id: int) -> None:
        """Forget every message in flight from or to `node_id`: its old incarnation is
        gone before the id is reused (docs/raft-core.md, "Membership": reusing an id
        while the old incarnation's messages can still arrive is unsafe)."""
        keep = []
        for item in self._queue:
            m = item[2]
            if node_id in (m.src, m.dst):
                self._drop(m)
            else:
                keep.append(item)
        heapq.heapify(keep)
        self._queue = keep

    def heal(self) -> None:
        self.faults = NetworkFaults()

    def in_flight(self) -> int:
        return len(self._queue)
