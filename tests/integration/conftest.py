"""Real node processes for the integration tests: every test gets its own cluster
on free loopback ports with data in tmp_path, and the finalizer ends every process
it started, by pid (SIGTERM, then SIGKILL after a grace period)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.localcluster import LocalCluster

#: Small enough to make the snapshot paths run in a short test.
TEST_SECTIONS: dict[str, dict[str, Any]] = {
    "timing": {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000},
}


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    clusters: list[LocalCluster] = []

    def make(size: int = 3, start: bool = True, etcd: bool = False, **sections: dict[str, Any]) -> LocalCluster:
        merged = {**TEST_SECTIONS, **sections}
        root = tmp_path / f"cluster{len(clusters)}"
        root.mkdir()
        cluster = LocalCluster(root, size=size, etcd=etcd, **merged)
        clusters.append(cluster)
        if start:
            cluster.start_all()
        return cluster

    yield make
    failed = getattr(request.node, "rep_call", None)
    for cluster in clusters:
        cluster.close()
        if failed is not None and failed.failed:
            for node_id in cluster.spec.ids:
                print(f"----- node {node_id} log (tail) -----")
                print("\n".join(cluster.log_text(node_id).splitlines()[-40:]))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
