"""The loop's stall recorder and the node process's collector policy
(node/loop_stalls.py, node/collector_policy.py): pure bookkeeping, a fake
collector, no processes and no sleeps."""
from __future__ import annotations

import gc
from typing import Any

import pytest

from node.collector_policy import MIDDLE_THRESHOLD, NEVER, YOUNG_THRESHOLD, CollectorPolicy
from node.loop_stalls import TURN_BOUNDS_MS, CollectorPauses, LoopStalls, stall_bound


def test_the_stall_bound_is_a_third_of_the_minimum_election_timeout() -> None:
    assert stall_bound(10, 30) == pytest.approx(0.1)
    assert stall_bound(50, 12) == pytest.approx(0.2)


def test_each_turn_lands_in_one_bucket_and_the_longest_is_kept() -> None:
    stalls = LoopStalls(bound_s=0.1)
    for ms in (0.2, 0.9, 3, 12, 99, 101, 2000):
        stalls.observe(ms / 1000, now=1.0)
    status = stalls.status()
    assert status["loop_turns"] == 7 and sum(status["loop_turn_histogram_ms"].values()) == 7
    assert status["loop_turn_histogram_ms"] == {"1": 2, "5": 1, "10": 0, "25": 1, "50": 0, "100": 1, "250": 1,
                                                "500": 0, "1000": 0, "+Inf": 1}
    assert list(status["loop_turn_histogram_ms"])[:-1] == [str(b) for b in TURN_BOUNDS_MS]
    assert status["loop_turn_max_ms"] == 2000.0 and status["loop_stalls"] == 2  # 101 ms and 2 s
    assert status["loop_stall_bound_ms"] == 100.0


def test_the_recent_maximum_forgets_a_stall_two_windows_later_the_overall_one_does_not() -> None:
    stalls = LoopStalls(bound_s=0.1, window_s=10.0)
    stalls.observe(0.5, now=0.0)
    stalls.observe(0.001, now=5.0)
    assert stalls.recent_max_s == 0.5
    stalls.observe(0.002, now=12.0)  # the next window: the previous one still counts
    assert stalls.recent_max_s == 0.5
    stalls.observe(0.003, now=25.0)  # two windows on
    assert stalls.recent_max_s == 0.003 and stalls.max_s == 0.5
    stalls.observe(0.004, now=100.0)  # after a long quiet gap nothing old is left
    assert stalls.recent_max_s == 0.004


def test_cpu_time_is_kept_apart_from_wall_time() -> None:
    stalls = LoopStalls(bound_s=0.1)
    stalls.observe(0.3, now=0.0, cpu_seconds=0.01)  # a turn that waited for a core
    stalls.observe(0.05, now=1.0, cpu_seconds=0.04)
    status = stalls.status()
    assert status["loop_turn_max_ms"] == 300.0 and status["loop_turn_cpu_max_ms"] == 40.0
    assert status["loop_turn_recent_cpu_max_ms"] == 40.0


def test_collector_pauses_are_counted_by_generation() -> None:
    ticks = iter([1.0, 1.004, 2.0, 2.25])
    cpu = iter([0.0, 0.003, 1.0, 1.05])
    pauses = CollectorPauses(clock=lambda: next(ticks), cpu_clock=lambda: next(cpu))
    pauses.on_collect("start", {"generation": 0})
    pauses.on_collect("stop", {"generation": 0})
    pauses.on_collect("start", {"generation": 2})
    pauses.on_collect("stop", {"generation": 2})
    status = pauses.status()
    assert status["gc_collections"] == [1, 0, 1]
    assert status["gc_pause_max_ms"] == [4.0, 0.0, 250.0]
    assert status["gc_pause_cpu_max_ms"] == [3.0, 0.0, 50.0]


def test_collector_pauses_attach_to_the_real_collector_and_detach() -> None:
    pauses = CollectorPauses()
    pauses.attach()
    try:
        gc.collect(0)
    finally:
        pauses.detach()
    assert pauses.count[0] >= 1 and pauses.on_collect not in gc.callbacks


class FakeCollector:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def collect(self, generation: int = 2) -> int:
        self.calls.append(("collect", generation))
        return 0

    def freeze(self) -> None:
        self.calls.append(("freeze", None))

    def get_freeze_count(self) -> int:
        self.calls.append(("get_freeze_count", None))
        return 100

    def get_objects(self, generation: int | None = None) -> list[object]:
        self.calls.append(("get_objects", generation))
        return [object()] * 5

    def set_threshold(self, *thresholds: int) -> None:
        self.calls.append(("set_threshold", thresholds))

    def disable(self) -> None:
        self.calls.append(("disable", None))

    def enable(self) -> None:
        self.calls.append(("enable", None))


def test_recovery_runs_without_collections_then_install_freezes_and_puts_the_full_pass_out_of_reach() -> None:
    fake = FakeCollector()
    policy = CollectorPolicy(gc_module=fake)
    policy.pause_for_recovery()
    policy.install()
    policy.uninstall()
    assert fake.calls == [("disable", None), ("freeze", None), ("get_freeze_count", None),
                          ("set_threshold", (YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NEVER)), ("enable", None)]
    assert policy.pauses.on_collect not in gc.callbacks


def test_the_loop_settles_at_most_once_per_interval_collecting_then_freezing() -> None:
    fake = FakeCollector()
    policy = CollectorPolicy(settle_s=2.0, gc_module=fake)
    ran = [policy.maybe_settle(t) for t in (100.0, 100.5, 101.9, 102.0, 103.0, 104.5)]
    assert ran == [True, False, False, True, False, True]
    assert fake.calls == [("collect", 2), ("get_objects", 2), ("freeze", None)] * 3
    assert policy.status()["gc_settles"] == 3
    assert policy.status()["gc_frozen_objects"] == 15  # counted before each freeze, never asked of CPython


def test_while_a_snapshot_install_builds_the_loop_settles_every_turn() -> None:
    """A follower building a received snapshot's state (node/snapshot_install.py)
    allocates a whole store in a few seconds: settled every turn, a pass examines
    one turn's allocations instead of two seconds' worth."""
    fake = FakeCollector()
    policy = CollectorPolicy(settle_s=2.0, gc_module=fake)
    ran = [policy.maybe_settle(t, every_turn=True) for t in (100.0, 100.01, 100.02)]
    assert ran == [True, True, True] and policy.status()["gc_settles"] == 3
    assert policy.maybe_settle(100.03) is False  # and back to the interval
