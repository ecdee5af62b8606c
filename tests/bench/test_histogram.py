"""The latency histogram against a sorted-list reference: every percentile lands in
the bucket of the exact answer (so within 1/2**(P-1) of it), min/max/count are
exact, and merging equals recording everything in one histogram."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from cluster.bench.histogram import PRECISION_BITS, Histogram, bucket_bounds, bucket_of, rank_at

values = st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300)
percentiles = st.floats(min_value=0, max_value=100, allow_nan=False)


def reference(sorted_values: list[int], percentile: float) -> int:
    """HdrHistogram's definition, on the exact data: the value of rank ceil(p% of n)."""
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@given(values, percentiles)
@settings(max_examples=300, deadline=None)
def test_a_percentile_is_the_highest_value_of_the_exact_answers_bucket(data: list[int], p: float) -> None:
    hist = Histogram()
    hist.record_all(data)
    exact = reference(sorted(data), p)
    got = hist.value_at(p)
    assert bucket_of(got) == bucket_of(exact)
    assert exact <= got <= min(bucket_bounds(bucket_of(exact))[1], max(data))
    assert got - exact <= exact / 2 ** (PRECISION_BITS - 1)


@given(st.integers(min_value=0, max_value=2**62))
def test_a_value_lies_within_its_bucket_whose_width_is_bounded(value: int) -> None:
    low, high = bucket_bounds(bucket_of(value))
    assert low <= value <= high
    assert high - low + 1 <= max(1, low / 2 ** (PRECISION_BITS - 1))


def test_small_values_are_exact() -> None:
    for value in range(2 ** PRECISION_BITS):
        assert bucket_bounds(bucket_of(value)) == (value, value)


@given(values)
def test_count_min_max_and_mean_are_exact(data: list[int]) -> None:
    hist = Histogram()
    hist.record_all(data)
    assert (hist.total, hist.min, hist.max) == (len(data), min(data), max(data))
    assert hist.mean == pytest.approx(sum(data) / len(data))
    assert hist.value_at(100) == max(data)
    assert bucket_of(hist.value_at(0)) == bucket_of(min(data))


@given(values, values, percentiles)
@settings(deadline=None)
def test_merging_equals_recording_everything_in_one(a: list[int], b: list[int], p: float) -> None:
    left, right, both = Histogram(), Histogram(), Histogram()
    left.record_all(a)
    right.record_all(b)
    both.record_all(a + b)
    left.merge(right)
    assert left.to_dict() == both.to_dict()
    assert left.value_at(p) == both.value_at(p)


@given(values)
def test_the_dict_form_round_trips(data: list[int]) -> None:
    hist = Histogram()
    hist.record_all(data)
    again = Histogram.from_dict(hist.to_dict())
    assert again.to_dict() == hist.to_dict()
    assert [again.value_at(p) for p in (50, 99, 99.9)] == [hist.value_at(p) for p in (50, 99, 99.9)]


def test_an_empty_histogram_reports_zero_and_bad_input_is_refused() -> None:
    hist = Histogram()
    assert hist.value_at(99) == 0 and hist.mean == 0.0
    with pytest.raises(ValueError):
        hist.record(-1)
    with pytest.raises(ValueError):
        rank_at(101, 10)
    doc = Histogram().to_dict()
    doc["total"] = 3
    with pytest.raises(ValueError):
        Histogram.from_dict(doc)
