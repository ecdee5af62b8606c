"""What the loop measures for `/metrics`, kept as plain numbers on the loop's thread.

The node's loop must never wait on a scraper, and a scrape must never see a
half-updated counter. So the loop only adds to ints and bucket lists here (no
locks, no prometheus objects), and at most every `PUBLISH_SECONDS` `publish`
copies everything into a new, immutable `MetricsSnapshot` and swaps one reference
(`Board.current`). The HTTP thread (node/metrics_http.py) reads that reference;
an assignment is atomic in CPython, and nothing mutates a published snapshot.

Histograms follow etcd's buckets where etcd has the metric (WAL fsync and backend
commit: exponential from 1 ms, factor 2, 14 buckets).
"""
from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: How often the loop publishes a snapshot for the HTTP thread while it is read ...
PUBLISH_SECONDS = 0.1
#: ... that is, within this long of the last scrape or health check;
WATCHED_SECONDS = 30.0
#: otherwise this often (enough for /livez's STALE_SECONDS). Building one costs the
#: loop a few ms under load: at 10 a second it was ~10% of a busy leader's loop.
QUIET_PUBLISH_SECONDS = 1.0
#: etcd's warning threshold for one apply ("apply request took too long").
SLOW_APPLY_SECONDS = 0.1


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Prometheus's ExponentialBuckets: `count` upper bounds from `start`."""
    return tuple(start * factor ** i for i in range(count))


#: etcd's etcd_disk_wal_fsync_duration_seconds and backend commit buckets.
DISK_BUCKETS = exponential_buckets(0.001, 2, 14)
#: A loop turn's busy time: 50 us .. ~0.8 s.
TURN_BUCKETS = exponential_buckets(0.00005, 2, 15)
#: Entries per WAL write (group commit) and frames per drain.
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative bucket counts (one per bound, `+Inf` = `count`), the sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int


class Histogram:
    """A fixed-bucket histogram: `observe` is one bisect and two adds."""

    __slots__ = ("bounds", "_counts", "_sum", "_count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        assert list(bounds) == sorted(bounds), "bucket bounds must be increasing"
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self._sum += value
        self._count += 1

    def snapshot(self) -> HistogramSnapshot:
        cumulative: list[int] = []
        running = 0
        for n in self._counts[:-1]:
            running += n
            cumulative.append(running)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self._sum, self._count)


@dataclass(slots=True)
class Telemetry:
    """The loop's own measurements (the rest comes from the member status)."""

    loop_turn: Histogram = field(default_factory=lambda: Histogram(TURN_BUCKETS))
    wal_fsync: Histogram = field(default_factory=lambda: Histogram(DISK_BUCKETS))
    snapshot_commit: Histogram = field(default_factory=lambda: Histogram(DISK_BUCKETS))
    append_batch: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    leader_changes: int = 0
    slow_applies: int = 0
    _last_leader: int = -1

    def leader_seen(self, leader: int) -> None:
        """etcd's leader_changes_seen_total: every change to a known leader (the
        first leader a node learns of counts too, as in etcd)."""
        if leader and leader != self._last_leader:
            self.leader_changes += 1
        self._last_leader = leader

    def histograms(self) -> dict[str, HistogramSnapshot]:
        return {"loop_turn": self.loop_turn.snapshot(), "wal_fsync": self.wal_fsync.snapshot(),
                "snapshot_commit": self.snapshot_commit.snapshot(), "append_batch": self.append_batch.snapshot()}


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """One published reading: `status` is the member status dict
    (node/member_status.py), `counters` what it lacks, `alarms` the cluster's
    raised alarms as (member id, alarm name); `at` the loop clock's reading."""

    at: float
    status: Mapping[str, Any]
    counters: Mapping[str, float]
    histograms: Mapping[str, HistogramSnapshot]
    alarms: tuple[tuple[int, str], ...] = ()


class Board:
    """The one reference the loop swaps and the HTTP thread reads."""

    def __init__(self) -> None:
        self.current: MetricsSnapshot | None = None
        #: the clock's reading at the last request for it (the HTTP thread sets it)
        self.asked_at = float("-inf")

    def publish_interval(self, now: float) -> float:
        """Seconds until the loop's next publish, from `now`."""
        return PUBLISH_SECONDS if now - self.asked_at <= WATCHED_SECONDS else QUIET_PUBLISH_SECONDS
