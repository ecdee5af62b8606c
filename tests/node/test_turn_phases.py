"""The long-turn breakdown (node/turn_phases.py): a manual clock, no processes."""
from __future__ import annotations

import logging

import pytest

from node.eventlog import LOGGER_NAME, EventLog
from node.ready_handler import Step
from node.turn_phases import TurnPhases


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _propagating(monkeypatch: pytest.MonkeyPatch) -> None:
    """caplog listens at the root: undo a `node.eventlog.configure()` an earlier
    test ran in this process (it stops the node logger's propagation)."""
    monkeypatch.setattr(logging.getLogger(LOGGER_NAME), "propagate", True)


def phases_with_log(caplog: pytest.LogCaptureFixture) -> tuple[TurnPhases, ManualClock, ManualClock]:
    clock, log_clock = ManualClock(), ManualClock()
    log = EventLog(lambda: "node=1", clock=log_clock)
    caplog.set_level(logging.INFO, logger=log.logger.name)
    return TurnPhases(log, budget_s=0.030, clock=clock), clock, log_clock


def turn(phases: TurnPhases, clock: ManualClock, steps: list[tuple[str | Step, float]]) -> None:
    phases.start()
    for name, seconds in steps:
        clock.now += seconds
        if isinstance(name, Step):
            phases.ready_step(name)
        else:
            phases.mark(name)


def test_a_turn_within_the_budget_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    phases, clock, _ = phases_with_log(caplog)
    turn(phases, clock, [("ticks", 0.001), (Step.APPLY, 0.02)])
    assert phases.finish(wall_s=0.021, cpu_s=0.021) is None
    assert phases.long_turns == 0 and not caplog.records


def test_a_long_turn_names_its_phases_largest_first_summing_repeats(caplog: pytest.LogCaptureFixture) -> None:
    """Two Readys in one turn: their apply steps add up under one name."""
    phases, clock, _ = phases_with_log(caplog)
    turn(phases, clock, [("ticks", 0.001), (Step.PERSIST, 0.004), (Step.APPLY, 0.010),
                         ("snapshot.chunks", 0.012), (Step.APPLY, 0.015)])
    line = phases.finish(wall_s=0.045, cpu_s=0.040)
    assert line is not None and phases.long_turns == 1
    assert line.startswith("long turn: 40.0 ms CPU, 45.0 ms wall: ready.apply 25.0 ms, snapshot.chunks 12.0 ms, "
                           "ready.persist 4.0 ms, ticks 1.0 ms")
    assert [r.getMessage() for r in caplog.records] == [f"node=1 {line}"]


def test_only_the_worst_long_turn_of_a_window_so_far_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A few lines per window at most, and a lesser turn never hides a worse one."""
    phases, clock, _ = phases_with_log(caplog)
    for seconds in (0.05, 0.04, 0.05, 0.07, 0.06):
        turn(phases, clock, [("peers", seconds)])
        phases.finish(seconds, seconds)
    assert phases.long_turns == 5
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == ["50.0 ms CPU, 50.0 ms wall", "70.0 ms CPU, 70.0 ms wall"]
    assert "(2 shorter long turns not logged)" in caplog.records[-1].getMessage()
    clock.now += 10.0  # the next window: its first long turn is logged again
    turn(phases, clock, [("peers", 0.04)])
    phases.finish(0.04, 0.04)
    assert len(caplog.records) == 3 and "(1 shorter long turns not logged)" in caplog.records[-1].getMessage()


def test_the_collectors_share_is_named(caplog: pytest.LogCaptureFixture) -> None:
    phases, clock, _ = phases_with_log(caplog)
    total = [1.0]
    phases.gc_total = lambda: total[0]
    phases.start()
    clock.now += 0.05
    total[0] += 0.02
    phases.mark("ready.apply")
    line = phases.finish(0.05, 0.05)
    assert line is not None and line.endswith("; collector passes 20.0 ms of it")


def test_a_turn_long_in_wall_time_only_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    """A turn that waited (an fsync, a busy CPU) past the wall budget is named even
    with little CPU; a lesser wall-long turn later in the window is not."""
    clock, log_clock = ManualClock(), ManualClock()
    log = EventLog(lambda: "node=1", clock=log_clock)
    caplog.set_level(logging.INFO, logger=log.logger.name)
    phases = TurnPhases(log, budget_s=0.030, clock=clock, wall_budget_s=0.100)
    turn(phases, clock, [("ticks", 0.001), (Step.PERSIST, 0.110)])
    line = phases.finish(wall_s=0.111, cpu_s=0.002)
    assert line is not None and line.startswith("long turn: 2.0 ms CPU, 111.0 ms wall: ready.persist 110.0 ms")
    turn(phases, clock, [(Step.PERSIST, 0.105)])
    assert phases.finish(wall_s=0.105, cpu_s=0.002) is None
    turn(phases, clock, [(Step.PERSIST, 0.090)])
    assert phases.finish(wall_s=0.090, cpu_s=0.002) is None and phases.long_turns == 2
    assert len(caplog.records) == 1
