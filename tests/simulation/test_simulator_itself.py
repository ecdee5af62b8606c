"""The simulator must be deterministic, and its checks must be able to fail: we
plant classic Raft bugs in the core and demand that the simulator catches each.
(The Figure 8 commit rule needs one precise interleaving that random search rarely
hits; tests/scenarios/test_classic_traps.py plants that bug and catches it.)"""
from __future__ import annotations

import pytest

from node.raft import RaftCore
from node.raft.log import RaftLog
from node.simulation import SimulationFailure, run_seed


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
