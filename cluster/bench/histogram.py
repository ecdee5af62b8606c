"""A log-bucketed latency histogram in the HdrHistogram style, hand-written.

Values are non-negative integers (the bench records microseconds). A value `v`
falls in the bucket `(shift, mantissa)` with `shift = max(0, v.bit_length() - P)`
and `mantissa = v >> shift`: values below 2**P have a bucket of their own (exact);
above, each power of two is split into 2**(P-1) equal buckets, so a bucket's width
is at most 1/2**(P-1) of its lowest value. With P = 8 every reported value is within
0.79% of the true one, whatever the range (1 us .. hours), in a few hundred buckets.

Percentiles follow HdrHistogram: the value at percentile p is the bucket holding
the observation of rank `max(1, ceil(p/100 * n))` in sorted order, reported as the
*highest* value of that bucket (so a reported p99 never understates). The minimum
and maximum are kept exactly. Histograms merge by adding counts, which is how the
bench combines its worker processes; `to_dict`/`from_dict` carry them across.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

PRECISION_BITS = 8


def bucket_of(value: int, precision: int = PRECISION_BITS) -> tuple[int, int]:
    """The (shift, mantissa) bucket holding `value` (>= 0)."""
    if value < 0:
        raise ValueError(f"a histogram value must be >= 0, got {value}")
    shift = max(0, value.bit_length() - precision)
    return shift, value >> shift


def bucket_bounds(bucket: tuple[int, int]) -> tuple[int, int]:
    """The lowest and highest value of a bucket (both inclusive)."""
    shift, mantissa = bucket
    return mantissa << shift, ((mantissa + 1) << shift) - 1


def rank_at(percentile: float, count: int) -> int:
    """The 1-based rank, in sorted order, of the observation at `percentile`."""
    if not 0 <= percentile <= 100:
        raise ValueError(f"a percentile must be in [0, 100], got {percentile}")
    return max(1, math.ceil(percentile / 100 * count))


class Histogram:
    __slots__ = ("counts", "total", "min", "max", "sum")

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, int]] = Counter()
        self.total = 0
        self.min = 0
        self.max = 0
        self.sum = 0

    def record(self, value: int) -> None:
        value = int(value)
        self.counts[bucket_of(value)] += 1
        if not self.total or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += 1
        self.sum += value

    def record_all(self, values: Iterable[int]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: Histogram) -> None:
        if not other.total:
            return
        self.counts.update(other.counts)
        self.min = other.min if not self.total else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum

    @property
    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def value_at(self, percentile: float) -> int:
        """The value at `percentile` (0 when empty); never above the exact max."""
        if not self.total:
            return 0
        wanted = rank_at(percentile, self.total)
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= wanted:
                return min(bucket_bounds(bucket)[1], self.max)
        raise AssertionError("counts do not add up to total")  # an invariant, not an outcome

    def distribution(self) -> list[tuple[int, int, int]]:
        """(lowest, highest, count) per non-empty bucket, ascending: for plotting."""
        return [(*bucket_bounds(b), self.counts[b]) for b in sorted(self.counts)]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": [[s, m, c] for (s, m), c in sorted(self.counts.items())],
                "total": self.total, "min": self.min, "max": self.max, "sum": self.sum}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Histogram:
        hist = cls()
        hist.counts = Counter({(int(s), int(m)): int(c) for s, m, c in doc["counts"]})
        hist.total, hist.min, hist.max, hist.sum = doc["total"], doc["min"], doc["max"], doc["sum"]
        if sum(hist.counts.values()) != hist.total:
            raise ValueError("histogram counts do not add up to its total")
        return hist
