"""A member applies a committed backlog one bounded batch per loop turn (issue 20:
no stall longer than a third of the election timeout at any data size)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(120)

KEYS = 150


def test_a_restart_replays_its_log_one_bounded_batch_per_loop_turn(make_cluster: Callable[..., LocalCluster]) -> None:
    """With limits.max_apply_bytes = 1 every committed entry is a batch of its own:
    the restarted member's loop turns at least once per entry it replays (between
    them it polls its sockets: it answers the status requests below meanwhile),
    and ends with every write."""
    cluster = make_cluster(size=1, limits={"max_apply_bytes": 1})
    cluster.wait_for_leader()
    client = cluster.client()
    for i in range(KEYS):
        client.put(f"k/{i:04d}", str(i))
    applied = cluster.status_of(1)["applied_index"]
    cluster.stop(1)
    cluster.start(1)

    def replayed() -> dict[str, Any] | None:
        status = cluster.status_of(1)
        return status if status["applied_index"] >= applied else None

    status = wait_for(replayed, 60, "the restarted member to replay its log")
    replayed_entries = applied - status["snapshot_index"]
    assert replayed_entries >= KEYS
    assert status["loop_turns"] >= replayed_entries, status
    assert cluster.client().range(b"k/", prefix=True).count == KEYS
