"""The clusters a test makes, for the fixtures of tests/integration and tests/etcd:
each on free loopback ports with data under the test's tmp_path, every process ended
by pid when the test ends, and every member's log tail printed if the test or its set-up failed
(tests/conftest.py records the outcomes as `rep_setup`, `rep_call`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.localcluster import LocalCluster


@contextmanager
def cluster_maker(tmp_path: Path, request: pytest.FixtureRequest, etcd: bool = False,
                  **defaults: dict[str, Any]) -> Iterator[Callable[..., LocalCluster]]:
    """`make(size=3, start=True, etcd=None, fault_injection=False, metrics=False,
    **sections)`: a new cluster in its own directory; `sections` override
    `defaults` (config sections such as timing), `etcd` the maker's default
    (members with etcd faces); `fault_injection` lets its members accept
    drop-traffic; `metrics` gives them the metrics and health endpoint."""
    faces = etcd
    clusters: list[LocalCluster] = []

    def make(size: int = 3, start: bool = True, etcd: bool | None = None, fault_injection: bool = False,
             metrics: bool = False, **sections: dict[str, Any]) -> LocalCluster:
        root = tmp_path / f"cluster{len(clusters)}"
        root.mkdir()
        cluster = LocalCluster(root, size=size, etcd=faces if etcd is None else etcd,
                               fault_injection=fault_injection, metrics=metrics, **{**defaults, **sections})
        clusters.append(cluster)
        if start:
            cluster.start_all()
        return cluster

    try:
        yield make
    finally:
        failed = any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
                     for when in ("setup", "call"))  # a cluster that never came up too
        for cluster in clusters:
            cluster.close()
            if failed:
                print(cluster.log_tails())
