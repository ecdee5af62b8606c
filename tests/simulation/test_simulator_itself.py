"""The simulator must be deterministic, and its checks must be able to fail: we
plant classic Raft bugs in the core and demand that the simulator catches each.
(The Figure 8 commit rule needs one precise interleaving that random search rarely
hits; tests/scenarios/test_classic_traps.py plants that bug and catches it.)"""
from __future__ import annotations

import pytest

from node import actor, ready_handler
from node.raft import RaftCore
from node.raft.log import RaftLog
from node.ready_handler import Step
from node.simulation import SimulationFailure, run_seed
from node.simulation import cluster as cluster_module
from node.simulation.run import CRASH_POINTS_AFTER_PERSIST, CRASH_POINTS_BEFORE_PERSIST
from tests.raft import harness
from tests.scenarios import fabric


def test_same_seed_same_run() -> None:
    assert run_seed(7, 3, 800) == run_seed(7, 3, 800)
    assert run_seed(7, 3, 800) != run_seed(8, 3, 800)


def _first_failure(seeds: range, nodes: int = 5, ticks: int = 1500) -> SimulationFailure:
    for seed in seeds:
        try:
            run_seed(seed, nodes, ticks)
        except SimulationFailure as exc:
            return exc
    pytest.fail(f"the planted bug survived seeds {seeds.start}..{seeds.stop - 1}")


def test_catches_voting_without_election_restriction(monkeypatch: pytest.MonkeyPatch) -> None:
    """§5.4.1 removed: any candidate gets votes, so a leader may lack committed entries."""
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, i, t: True)
    failure = _first_failure(range(0, 100))
    assert "SIM_SEED=" in failure.replay and "--seed" in failure.replay
    assert any(rule in str(failure) for rule in (
        "Leader Completeness", "Log Matching", "State Machine Safety", "Committed entries agree",
        "Acknowledged writes", "overwriting committed"))


def test_catches_votes_that_are_not_persisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A vote grant sent before the vote is durable lets a restarted node vote twice."""
    from node.raft import core as core_module

    monkeypatch.setattr(core_module, "RESPONSES_AFTER_PERSIST", ())
    original_ready = RaftCore.ready

    def leaky_ready(self: RaftCore):  # type: ignore[no-untyped-def]
        rd = original_ready(self)
        rd.messages.extend(rd.messages_after_persist)
        rd.messages_after_persist = []
        return rd

    monkeypatch.setattr(RaftCore, "ready", leaky_ready)
    failure = _first_failure(range(0, 100))
    assert "replay:" in str(failure)


def test_every_boundary_between_ready_steps_is_a_crash_point() -> None:
    """The simulator can crash a node after each step of the shared handle_ready
    but the last (`advance`): between every two steps the node runs."""
    assert sorted(CRASH_POINTS_BEFORE_PERSIST + CRASH_POINTS_AFTER_PERSIST) == [
        step for step in Step if step is not Step.ADVANCE]


def test_each_crash_point_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every crash point actually fires for some seed: a crash there is not merely
    possible in the schedule, the Ready handling really stops at that boundary."""
    reached: set[Step] = set()

    class RecordedCrash(cluster_module.CrashInReady):
        def __init__(self, after: Step) -> None:
            super().__init__(after)
            reached.add(after)

    monkeypatch.setattr(cluster_module, "CrashInReady", RecordedCrash)
    wanted = set(CRASH_POINTS_BEFORE_PERSIST + CRASH_POINTS_AFTER_PERSIST)
    for seed in range(200):
        run_seed(seed, 3, 1000)
        if reached == wanted:
            break
    assert reached == wanted, f"never crashed after steps {sorted(wanted - reached)}"


def test_the_simulator_runs_the_nodes_ready_handler() -> None:
    """One persistence order: the simulator and the test harnesses call the very
    function the actor does (node/ready_handler.py), not a copy of it."""
    assert actor.handle_ready is ready_handler.handle_ready
    assert cluster_module.handle_ready is ready_handler.handle_ready
    assert harness.handle_ready is ready_handler.handle_ready
    assert fabric.handle_ready is ready_handler.handle_ready
