"""Proposal backpressure: a cap on uncommitted bytes (etcd's MaxUncommittedEntriesSize).

Not in the paper: a leader that cannot commit (lost quorum, slow followers) must
refuse new proposals with a clear reason rather than buffer them without bound.
"""
from __future__ import annotations

import pytest

from node.raft import ProposalDropped, UncommittedBytesExceeded
from tests.raft.harness import Harness

LIMIT = 100


def stalled_leader() -> Harness:
    """Leader 1 whose followers are unreachable: nothing it proposes can commit."""
    h = Harness(3, max_uncommitted_bytes=LIMIT)
    h.elect(1)
    h.isolate(2, 3)
    return h


def test_proposals_beyond_max_uncommitted_bytes_are_rejected() -> None:
    """Once the uncommitted payload would exceed the cap, a proposal is refused with
    UncommittedBytesExceeded (a ProposalDropped: safe to retry) and appends nothing."""
    h = stalled_leader()
    h.propose(1, b"a" * 40, b"b" * 40)
    last = h[1].log.last_index()
    with pytest.raises(UncommittedBytesExceeded) as err:
        h.propose(1, b"c" * 40)
    assert isinstance(err.value, ProposalDropped)
    assert "80" in str(err.value) and str(LIMIT) in str(err.value)
    assert h[1].log.last_index() == last
    h.propose(1, b"d" * 20)  # exactly at the cap still fits


def test_proposals_are_accepted_again_after_commit_and_apply() -> None:
    """The cap counts bytes proposed but not yet committed and applied: once the
    cluster catches up, proposals flow again."""
    h = stalled_leader()
    h.propose(1, b"a" * 60)
    with pytest.raises(UncommittedBytesExceeded):
        h.propose(1, b"b" * 60)
    h.heal()
    h.tick(1)
    h.stabilize()
    assert [e.data for e in h.applied[1]][-1] == b"a" * 60
    h.propose(1, b"b" * 60)


def test_single_oversize_entry_is_accepted_when_nothing_is_uncommitted() -> None:
    """An entry larger than the cap can still be proposed alone -- otherwise it could
    never be proposed at all -- but nothing else until it commits."""
    h = stalled_leader()
    h.propose(1, b"x" * (5 * LIMIT))
    with pytest.raises(UncommittedBytesExceeded):
        h.propose(1, b"y")


def test_zero_disables_the_limit() -> None:
    h = Harness(3, max_uncommitted_bytes=0)
    h.elect(1)
    h.isolate(2, 3)
    h.propose(1, *[b"z" * 1000 for _ in range(50)])
    assert h[1].log.last_index() == 51
