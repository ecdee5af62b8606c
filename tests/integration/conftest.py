"""Real node processes for the integration tests: every test gets its own cluster
on free loopback ports with data in tmp_path, and the finalizer ends every process
it started, by pid (SIGTERM, then SIGKILL after a grace period)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.localcluster import LocalCluster
from tests.clusters import cluster_maker

#: Small enough to make the snapshot paths run in a short test.
TEST_SECTIONS: dict[str, dict[str, Any]] = {
    "timing": {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000},
}


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    with cluster_maker(tmp_path, request, **TEST_SECTIONS) as make:
        yield make
