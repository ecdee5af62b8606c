"""Real jangada clusters serving etcd's v3 API, for the tests of the etcd face.

`etcd_cluster` starts 3 `python -m node` processes with gRPC and gateway ports
(free loopback ports, data in tmp_path) and waits for a leader; teardown ends
every process by pid. `etcdctl` runs Debian's etcdctl 3.4 against given
endpoints (tests that need it skip when it is not installed; `.ci/run` installs
it)."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.localcluster import LocalCluster
from tests.clusters import cluster_maker
from tests.etcd.reference_etcd import ReferenceEtcd, reference_etcd

ETCDCTL = shutil.which("etcdctl")
TIMING: dict[str, Any] = {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000}


@contextmanager
def etcd_cluster_maker(root: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    with cluster_maker(root, request, etcd=True, timing=TIMING) as make:

        def make_etcd(size: int = 3, start: bool = True, **sections: dict[str, Any]) -> LocalCluster:
            cluster = make(size, start, **sections)
            if start:
                # A member's face is bound before its node answers anything: a status
                # answer from every member means every gRPC port is up (a leader alone
                # can be elected while the third process is still starting).
                for node_id in cluster.ids:
                    cluster.status_of(node_id)
                cluster.wait_for_leader()
            return cluster

        yield make_etcd


@pytest.fixture
def make_etcd_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    with etcd_cluster_maker(tmp_path, request) as make:
        yield make


@pytest.fixture(scope="module")
def shared_etcd_cluster(tmp_path_factory: pytest.TempPathFactory,
                        request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """One cluster for a whole test module, for tests that neither kill members nor
    change membership and keep to their own keys (a cluster start is ~3 s of the
    suite each time)."""
    with etcd_cluster_maker(tmp_path_factory.mktemp("shared-etcd"), request) as make:
        yield make()


@pytest.fixture
def etcd_cluster(make_etcd_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return make_etcd_cluster()


@pytest.fixture
def etcd_ref(tmp_path: Path) -> Iterator[ReferenceEtcd]:
    """A single-member etcd 3.4 to compare answers with (skipped without the binary)."""
    with reference_etcd(tmp_path) as ref:
        yield ref


def etcdctl(endpoints: str | list[str], *args: str, stdin: str | None = None, timeout: float = 30.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run etcdctl (API v3) against `endpoints`; raises on a non-zero exit when `check`."""
    if ETCDCTL is None:
        pytest.skip("etcdctl is not installed (Debian's etcd-client; .ci/run installs it)")
    if not isinstance(endpoints, str):
        endpoints = ",".join(endpoints)
    env = {**os.environ, "ETCDCTL_API": "3"}
    done = subprocess.run([ETCDCTL, f"--endpoints={endpoints}", "--dial-timeout=3s", "--command-timeout=10s",
                           *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done
